// One S7 measurement in its own process (so peak RSS is this snapshot's): a RUN touching 10 files, then a snapshot.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { parseArgs } from '../lib/args.mjs';
import { loadDist } from '../lib/dist.mjs';
import { prng } from '../lib/random.mjs';

const options = parseArgs(process.argv.slice(2), { rootfs: '', method: 'redo', files: 100000, seed: 1, run: 0 });
const snapshot = loadDist('packages/builder/dist/snapshot/index.js');
const { rootfsPath } = await import('../scenarios/s7-snapshot.mjs');

// The RUN: rewrite 10 existing files with new content (new size, so every mode sees the change).
const random = prng(options.seed, `s7-run-${options.run}`);
const touched = new Set();
while (touched.size < 10) touched.add(rootfsPath(random.int(0, options.files - 1)));
const runStep = (root) => {
  for (const relative of touched) writeFileSync(`${root}/${relative}`, `changed by run ${options.run} ${'x'.repeat(random.int(1, 200))}\n`);
};

const result = { method: options.method };
let entries;
if (options.method === 'overlay') {
  const workspace = await snapshot.prepareOverlay(options.rootfs);
  const overlayOptions = `lowerdir=${workspace.rootfs},upperdir=${workspace.upperDir},workdir=${workspace.workDir},redirect_dir=nofollow,index=off,metacopy=off`;
  let started = performance.now();
  execFileSync('mount', ['-t', 'overlay', '-o', overlayOptions, 'tessera-bench', workspace.mergedDir]);
  runStep(workspace.mergedDir);
  execFileSync('umount', [workspace.mergedDir]);
  result.runMs = performance.now() - started;
  started = performance.now();
  entries = await snapshot.finishOverlay(workspace);
  result.snapshotMs = performance.now() - started;
} else {
  let started = performance.now();
  const before = await snapshot.scanTree(options.rootfs, { mode: options.method });
  result.beforeScanMs = performance.now() - started;
  runStep(options.rootfs);
  started = performance.now();
  const after = await snapshot.scanTree(options.rootfs, { mode: options.method });
  entries = snapshot.diffTree(before, after);
  result.snapshotMs = performance.now() - started;
  result.scanned = after.entries.size;
}
// The check: the layer holds exactly the 10 rewritten files (plus their parent directories).
const files = entries.filter((entry) => entry.type === 'file').map((entry) => entry.path).sort();
const expected = [...touched].sort();
if (files.join('\n') !== expected.join('\n')) {
  console.error(`snapshot files differ from the RUN's changes:\n got ${files.join(', ')}\n expected ${expected.join(', ')}`);
  process.exit(2);
}
result.entries = entries.length;
console.log(JSON.stringify(result));
