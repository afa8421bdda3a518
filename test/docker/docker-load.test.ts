import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error plain ESM helper shared with the benchmarks
import { startDockerd } from '../../tools/bench/lib/dockerd.mjs';
import { runCommand } from '../../tools/images/index';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

interface Dockerd {
  docker(args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  stop(): Promise<void>;
}

let dockerd: Dockerd;
let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tessera-docker-load-'));
  dockerd = (await startDockerd()) as Dockerd;
}, 60_000);

afterAll(async () => {
  await dockerd?.stop();
  await rm(work, { recursive: true, force: true });
}, 60_000);

describe('docker load of a --tar-path archive (Debian docker.io, dockerd started by hand)', () => {
  it('loads, and docker run prints the expected output', async () => {
    await runCommand('bash', ['examples/hello/setup.sh'], { cwd: repoRoot });
    const archive = join(work, 'hello.tar');
    await runCommand(
      process.execPath,
      ['packages/builder/bin/tessera.js', 'build', '--context', 'examples/hello', '--no-push', '--tar-path', archive, '--destination', 'tessera.test/hello:1'],
      { cwd: repoRoot },
    );
    const load = await dockerd.docker(['load', '-i', archive]);
    expect(load.code, load.stderr).toBe(0);
    expect(load.stdout).toContain('tessera.test/hello:1');
    const run = await dockerd.docker(['run', '--rm', '--network', 'none', 'tessera.test/hello:1']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe('HELLO, TESSERA from Linux\n');
  }, 120_000);
});
