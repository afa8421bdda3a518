import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { uniqueRepository } from './registry-helpers';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../..', import.meta.url));
const distIndex = `${root}packages/oci/dist/index.js`;

describe('large blobs', () => {
  beforeAll(async () => {
    // The child process runs the built package, so build it first (tsc -b is incremental).
    await run(`${root}node_modules/.bin/tsc`, ['-b', 'packages/oci'], { cwd: root }).catch((e: { stdout?: string }) => {
      // Errors elsewhere in the package still emit; the check below says whether the client is there.
      console.warn(`tsc -b packages/oci reported errors:\n${e.stdout ?? ''}`);
    });
    expect(existsSync(distIndex)).toBe(true);
  }, 120_000);

  it('pushes a 320 MB blob with bounded memory', async () => {
    const host = inject('registryHost');
    const repository = uniqueRepository('large');
    const { stdout } = await run(process.execPath, [fileURLToPath(new URL('./registry-large-push.mjs', import.meta.url)), distIndex, host, repository, '320'], {
      timeout: 240_000,
    });
    const result = JSON.parse(stdout) as { digest: string; size: number; seconds: number; maxRssMb: number };
    expect(result.size).toBe(320 << 20);
    expect(result.maxRssMb).toBeLessThan(200);
  }, 300_000);
});
