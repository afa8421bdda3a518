import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { pullAndUnpack, pushBusyboxBase, runCommand } from '../../tools/images/index';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
let work: string;
let host: string;
let ref: string;

const DOCKERFILE = [
  'ARG BASE',
  'FROM $BASE',
  // A deleted file, a deleted directory tree, and a directory replaced wholesale.
  'RUN rm /bin/vi && rm -rf /root && rm -rf /home/app && mkdir -p /home/app && echo new > /home/app/only-this',
].join('\n');

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tessera-whiteouts-'));
  host = inject('registryHost');
  const base = (await pushBusyboxBase(host, 'whiteouts/busybox')).reference;
  const context = join(work, 'ctx');
  await mkdir(context);
  await writeFile(join(context, 'Dockerfile'), DOCKERFILE);
  ref = `${host}/whiteouts/image:1`;
  await runCommand(process.execPath, [
    join(repoRoot, 'packages/builder/bin/tessera.js'),
    'build',
    '--context',
    context,
    '--destination',
    ref,
    '--insecure-registry',
    host,
    '--build-arg',
    `BASE=${base}`,
  ]);
});

afterAll(() => rm(work, { recursive: true, force: true }));

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

describe('whiteouts from a RUN that deletes base files', () => {
  it('umoci applies them', async () => {
    const image = await pullAndUnpack(ref);
    try {
      expect(await exists(join(image.rootfs, 'bin/vi'))).toBe(false);
      expect(await exists(join(image.rootfs, 'bin/sh'))).toBe(true);
      expect(await exists(join(image.rootfs, 'root'))).toBe(false);
      expect(await readdir(join(image.rootfs, 'home/app'))).toEqual(['only-this']);
    } finally {
      await image.remove();
    }
  });

  it('buildah applies them', async () => {
    const root = join(work, 'buildah-root');
    const runroot = join(work, 'buildah-runroot');
    const buildah = (...args: string[]) => runCommand('buildah', ['--root', root, '--runroot', runroot, '--storage-driver', 'vfs', ...args]);
    try {
      const container = (await buildah('from', '--tls-verify=false', `docker://${ref}`)).stdout.trim();
      const mount = (await buildah('mount', container)).stdout.trim();
      expect(await exists(join(mount, 'bin/vi'))).toBe(false);
      expect(await exists(join(mount, 'bin/sh'))).toBe(true);
      expect(await exists(join(mount, 'root'))).toBe(false);
      expect(await readdir(join(mount, 'home/app'))).toEqual(['only-this']);
      await buildah('umount', container);
      await buildah('rm', container);
    } finally {
      await runCommand('sh', ['-c', `grep -o ' ${root}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l`]).catch(() => undefined);
    }
  });
});
