import { afterAll, describe, expect, inject, it } from 'vitest';
import {
  NODE_PATH_IN_IMAGE,
  pullAndUnpack,
  pushNodeRuntimeBase,
  runInRootfs,
  sharedLibraries,
  skopeoInspect,
  type UnpackedImage,
} from '../../tools/images/index';

const registryHost = inject('registryHost');
const unpacked: UnpackedImage[] = [];

afterAll(async () => {
  await Promise.all(unpacked.map((image) => image.remove()));
});

describe('node runtime base image', () => {
  it('lists the libraries node links, including the ELF interpreter', async () => {
    const libraries = await sharedLibraries(process.execPath);
    expect(libraries.some((path) => /\/libc\.so\.6$/.test(path))).toBe(true);
    expect(libraries.some((path) => /\/ld-linux[^/]*\.so\.\d$/.test(path))).toBe(true);
    expect(libraries.every((path) => path.startsWith('/'))).toBe(true);
  });

  it.each(['oci', 'docker'] as const)('runs node and a shell from the unpacked %s image', async (format) => {
    const pushed = await pushNodeRuntimeBase(registryHost, `images/node-runtime-${format}`, { format });
    const config = await skopeoInspect(pushed.reference, 'config');
    expect(config.config.Cmd).toEqual(['node']);

    const image = await pullAndUnpack(pushed.digestReference);
    unpacked.push(image);
    const env = image.process.env ?? [];
    const version = await runInRootfs(image.rootfs, [NODE_PATH_IN_IMAGE, '-p', 'process.version'], { env });
    expect(version.stdout.trim()).toBe(process.version);
    // node found through the image's PATH, run from busybox's shell, with a working directory.
    const fromShell = await runInRootfs(
      image.rootfs,
      ['/bin/sh', '-c', 'node -e "console.log(require(\'node:os\').userInfo().uid, process.cwd(), 6 * 7)"'],
      { env, cwd: '/tmp' },
    );
    expect(fromShell.stdout).toBe('0 /tmp 42\n');
  });
});
