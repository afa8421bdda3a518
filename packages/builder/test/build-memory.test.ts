import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureCliBuilt, repoRoot, run } from './cli-helpers';

let work: string;

beforeAll(async () => {
  await ensureCliBuilt();
  work = await mkdtemp(join(tmpdir(), 'tessera-memory-'));
});

afterAll(() => rm(work, { recursive: true, force: true }));

describe('memory', () => {
  it('builds a 2 GB layer with peak RSS under 300 MB (layers stream, never sit in memory)', async () => {
    const context = join(work, 'ctx');
    await run('mkdir', ['-p', context]);
    // Sparse, so the test costs no disk; every byte still goes through tar, hashing and gzip.
    await writeFile(join(context, 'big.bin'), '');
    await truncate(join(context, 'big.bin'), 2 * 1024 ** 3);
    await writeFile(join(context, 'Dockerfile'), 'FROM scratch\nCOPY big.bin /big.bin\n');
    const script = `
      const { buildImage, defaultBuildOptions } = require(${JSON.stringify(join(repoRoot, 'packages/builder/dist/index.js'))});
      buildImage(defaultBuildOptions({ context: ${JSON.stringify(context)}, noPush: true, ociLayoutPath: ${JSON.stringify(join(work, 'layout'))}, log: () => {} }))
        .then(() => console.log(JSON.stringify({ maxRssKiB: process.resourceUsage().maxRSS })));
    `;
    const { stdout } = await run(process.execPath, ['-e', script], { maxBuffer: 1 << 20 });
    const { maxRssKiB } = JSON.parse(stdout.trim().split('\n').at(-1)!) as { maxRssKiB: number };
    console.log(`peak RSS building a 2 GB layer: ${Math.round(maxRssKiB / 1024)} MB`);
    expect(maxRssKiB / 1024).toBeLessThan(300);
    const { stdout: index } = await run('cat', [join(work, 'layout/index.json')]);
    expect(JSON.parse(index).manifests).toHaveLength(1);
  }, 180_000);
});
