import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { pushBusyboxBase } from '../../../tools/images/index';
import { ensureCliBuilt, repoRoot, run, writeContext } from './cli-helpers';

let work: string;
let base: string;
let host: string;

beforeAll(async () => {
  await ensureCliBuilt();
  work = await mkdtemp(join(tmpdir(), 'tessera-cancel-'));
  host = inject('registryHost');
  base = (await pushBusyboxBase(host, 'cancel/busybox')).reference;
});

afterAll(() => rm(work, { recursive: true, force: true }));

/** Processes whose command line carries the marker (the RUN's own sleepers). */
async function processesWith(marker: string): Promise<string[]> {
  const { stdout } = await run('ps', ['-eo', 'pid,args']);
  return stdout.split('\n').filter((line) => line.includes(marker) && !line.includes('ps -eo'));
}

describe('cancelling tessera build', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`${signal} stops the build and leaves no RUN process behind`, async () => {
      const marker = `tessera-cancel-${signal}-${Date.now()}`;
      // Durations no other process on the machine is likely to sleep for, so pgrep finds only these.
      const seconds = 30_000 + Math.floor(Math.random() * 60_000);
      const sleepers = `sleep (${seconds}|${seconds + 1})$`;
      const dir = await writeContext(work, { Dockerfile: `ARG BASE\nFROM $BASE\nRUN sleep ${seconds} & sleep ${seconds + 1} & echo started-${marker}; wait\n` });
      const child = spawn(
        process.execPath,
        [join(repoRoot, 'packages/builder/bin/tessera.js'), 'build', '--context', dir, '--no-push', '--insecure-registry', host, '--build-arg', `BASE=${base}`],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let output = '';
      child.stderr.on('data', (d: Buffer) => (output += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
      const deadline = Date.now() + 30_000;
      // The RUN's own output (prefixed `| `), not the log line that echoes the instruction.
      while (!output.includes(`| started-${marker}`) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(output).toContain(`| started-${marker}`);
      // The sleepers run inside the sandbox: visible by their arguments.
      expect((await run('pgrep', ['-f', sleepers])).stdout.trim()).not.toBe('');
      child.kill(signal);
      const code = await exited;
      expect(code).not.toBe(0);
      const settle = Date.now() + 5_000;
      let left = await processesWith(`started-${marker}`);
      while (left.length && Date.now() < settle) {
        await new Promise((r) => setTimeout(r, 100));
        left = await processesWith(`started-${marker}`);
      }
      expect(left).toEqual([]);
      expect(await run('pgrep', ['-f', sleepers]).then(() => 'running', () => 'none')).toBe('none');
    }, 60_000);
  }
});
