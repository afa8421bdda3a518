import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runCommand, runInRootfs } from '../../tools/images/index';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

describe("the README's single-Dockerfile example: npm run example", () => {
  it('builds the bundled example into an OCI layout with no registry, and the image runs', async () => {
    await runCommand('npm', ['run', '--silent', 'example'], { cwd: repoRoot });
    const work = await mkdtemp(join(tmpdir(), 'tessera-example-'));
    try {
      const bundle = join(work, 'bundle');
      await runCommand('umoci', ['unpack', '--image', `${join(repoRoot, 'dist/hello-image')}:latest`, bundle]);
      const spec = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8')) as { process: { args: string[]; env: string[]; cwd: string } };
      const run = await runInRootfs(join(bundle, 'rootfs'), spec.process.args, { env: spec.process.env, cwd: spec.process.cwd });
      expect(run.stdout).toBe('HELLO, TESSERA from Linux\n');
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
});
