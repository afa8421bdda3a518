import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runInSandbox } from '../src/sandbox/index';
import { diffTree, scanTree, withOverlay } from '../src/snapshot/index';
import { BASE_ENV, makeBusyboxRootfs } from './sandbox-fixtures';

const FILES = 100_000;
const CHANGE = 'for i in 0 1 2 3 4 5 6 7 8 9; do echo changed > /data/d$i/f$i; done';
const IGNORE = ['/proc', '/dev'];

/** Timings are printed for the report, not asserted: they depend on the machine. */
describe(`snapshot cost for a 10-file change in a rootfs of ${FILES} files`, () => {
  let rootfs: string;
  beforeAll(() => {
    rootfs = makeBusyboxRootfs(mkdtempSync(path.join(tmpdir(), 'tessera-snapshot-perf-')));
    for (let dir = 0; dir < FILES / 1000; dir++) {
      mkdirSync(path.join(rootfs, 'data', `d${dir}`), { recursive: true });
      for (let file = 0; file < 1000; file++) writeFileSync(path.join(rootfs, 'data', `d${dir}`, `f${file}`), `${dir}/${file}`);
    }
  }, 300_000);
  afterAll(() => rmSync(path.dirname(rootfs), { recursive: true, force: true }));

  const run = (overlay?: Parameters<typeof runInSandbox>[0]['overlay']) =>
    runInSandbox({ rootfs, argv: ['/bin/sh', '-c', CHANGE], env: BASE_ENV, cwd: '/', uid: 0, gid: 0, network: 'none', isolation: 'auto', overlay });

  it('redo walk', async () => {
    let started = Date.now();
    const before = await scanTree(rootfs, { mode: 'redo', ignore: IGNORE });
    const scanMs = Date.now() - started;
    expect((await run()).exitCode).toBe(0);
    started = Date.now();
    const entries = diffTree(before, await scanTree(rootfs, { mode: 'redo', ignore: IGNORE }));
    const afterMs = Date.now() - started;
    console.log(`redo walk: before-scan ${scanMs} ms, after-scan+diff ${afterMs} ms, ${before.entries.size} paths, ${entries.length} entries`);
    expect(entries.filter((entry) => entry.type === 'file')).toHaveLength(10);
  }, 300_000);

  it('overlay upper dir', async () => {
    const started = Date.now();
    let runMs = 0;
    const { entries } = await withOverlay(
      rootfs,
      async (overlay) => {
        const runStarted = Date.now();
        expect((await run(overlay)).exitCode).toBe(0);
        runMs = Date.now() - runStarted;
      },
      { ignore: IGNORE },
    );
    const total = Date.now() - started;
    console.log(`overlay: snapshot (prepare + read upper + apply) ${total - runMs} ms, RUN ${runMs} ms, ${entries.length} entries`);
    expect(entries.filter((entry) => entry.type === 'file')).toHaveLength(10);
  }, 300_000);
});
