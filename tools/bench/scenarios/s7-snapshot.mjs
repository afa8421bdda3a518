import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadDist } from '../lib/dist.mjs';
import { runWorker } from '../lib/measure.mjs';
import { prng } from '../lib/random.mjs';
import { markdownTable, printTable } from '../lib/report.mjs';
import { median, mib, ratio } from '../lib/stats.mjs';

const FILES_PER_DIRECTORY = 100;
const worker = fileURLToPath(new URL('../workers/snapshot.mjs', import.meta.url));

/** Where small file number `index` lives: 100 files per directory, directories two levels deep. */
export function rootfsPath(index) {
  const dir = Math.floor(index / FILES_PER_DIRECTORY);
  return `usr/share/pkg${String(Math.floor(dir / 20)).padStart(3, '0')}/d${String(dir % 20).padStart(2, '0')}/f${String(index % FILES_PER_DIRECTORY).padStart(2, '0')}.txt`;
}

async function ensureRootfs(workDir, seed, fileCount) {
  const rootfs = join(workDir, `s7-rootfs-seed${seed}-files${fileCount}`);
  const marker = `${rootfs}.done`;
  if (existsSync(marker)) return rootfs;
  await rm(rootfs, { recursive: true, force: true });
  const random = prng(seed, 's7-rootfs');
  for (let index = 0; index < fileCount; index++) {
    const relative = rootfsPath(index);
    if (index % FILES_PER_DIRECTORY === 0) await mkdir(join(rootfs, relative, '..'), { recursive: true });
    await writeFile(join(rootfs, relative), `file ${index}\n${'.'.repeat(random.int(50, 3000))}\n`);
  }
  await writeFile(marker, '');
  return rootfs;
}

const ms = (value) => (value === undefined ? '–' : value.toFixed(0));

export const s7 = {
  id: 'S7',
  title: 'S7: snapshot after a RUN that touches 10 files in a 100,000-file rootfs',
  async run({ options, log }) {
    const fileCount = Math.round(100_000 * options.scale);
    const rootfs = await ensureRootfs(options['work-dir'], options.seed, fileCount);
    const { chooseSnapshotter } = loadDist('packages/builder/dist/snapshot/index.js');
    const choice = await chooseSnapshotter({ mode: 'redo', overlayAllowed: process.getuid?.() === 0 });
    log(`S7: rootfs ${rootfs} (${fileCount} files); chooseSnapshotter here: ${choice.kind} (${choice.reason})`);
    const methods = ['redo', 'full', ...(choice.kind === 'overlay' ? ['overlay'] : [])];
    const samples = Object.fromEntries(methods.map((method) => [method, []]));
    for (let runIndex = 0; runIndex < options.runs; runIndex++) {
      for (const method of methods) {
        const args = ['--rootfs', rootfs, '--method', method, '--files', String(fileCount), '--seed', String(options.seed), '--run', String(runIndex)];
        const { output, maxRssKiB } = await runWorker(worker, args);
        samples[method].push({ ...output, rssKiB: maxRssKiB });
        log(`S7 run ${runIndex + 1}/${options.runs} ${method}: snapshot ${ms(output.snapshotMs)} ms, ${output.entries} entries, peak RSS ${mib(maxRssKiB * 1024)} MiB`);
      }
    }
    const summary = Object.fromEntries(
      methods.map((method) => {
        const list = samples[method];
        const pick = (key) => (list[0][key] === undefined ? undefined : median(list.map((s) => s[key])));
        return [method, { snapshotMs: pick('snapshotMs'), beforeScanMs: pick('beforeScanMs'), runMs: pick('runMs'), rssKiB: pick('rssKiB'), entries: list[0].entries, all: list.map((s) => s.snapshotMs.toFixed(0)).join(', ') }];
      }),
    );
    const labels = { redo: 'walk, redo (stat metadata)', full: 'walk, full (content hash)', overlay: 'overlay upper dir' };
    const headers = ['snapshotter', 'snapshot ms (median)', 'runs (ms)', 'vs redo walk', 'scan before RUN ms', 'layer entries', 'peak RSS MiB'];
    const rows = methods.map((method) => {
      const s = summary[method];
      return [labels[method], ms(s.snapshotMs), s.all, ratio(s.snapshotMs, summary.redo.snapshotMs), ms(s.beforeScanMs), s.entries, mib(s.rssKiB * 1024)];
    });
    printTable(headers, rows);
    const markdown = [
      `## ${this.title}`,
      '',
      `A generated rootfs of ${fileCount.toLocaleString('en')} small files (50 B–3 KB, 100 per directory) stands in for an unpacked base. The "RUN" rewrites 10 of them (chosen by seed and run). The snapshot time is what comes after the RUN: for a walk, a second \`scanTree\` plus \`diffTree\`; for the overlay, \`finishOverlay\` (read the upper dir, build entries, move the changes into the rootfs). The walk's first scan, made before the RUN, is shown separately. Each measurement runs in its own Node process (its peak RSS is its own), calling the built \`packages/builder/dist/snapshot\` functions directly; the directory tree is in the kernel's caches (warm). A run counts only if the snapshot's file entries are exactly the 10 rewritten files.`,
      '',
      markdownTable(headers, rows),
      '',
      `\`chooseSnapshotter\` on this machine picks: **${choice.kind}** — ${choice.reason}.`,
      '',
      'Command: `npm run bench -- --scenario S7 --runs 3` (worker: `tools/bench/workers/snapshot.mjs`).',
    ].join('\n');
    return { markdown, summary };
  },
};
