import { lstat, mkdtemp, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import {
  APP_UID,
  buildBusyboxLayout,
  pushLayoutImage,
  busyboxAppletPaths,
  pullAndUnpack,
  pushBusyboxBase,
  runInRootfs,
  skopeoInspect,
  type UnpackedImage,
} from '../../tools/images/index';

const registryHost = inject('registryHost');
const unpacked: UnpackedImage[] = [];

afterAll(async () => {
  await Promise.all(unpacked.map((image) => image.remove()));
});

async function unpack(reference: string): Promise<UnpackedImage> {
  const image = await pullAndUnpack(reference);
  unpacked.push(image);
  return image;
}

describe('busybox base image', () => {
  it('pushes with OCI media types and runs a shell from the unpacked rootfs', async () => {
    const pushed = await pushBusyboxBase(registryHost, 'images/busybox-oci', { format: 'oci' });
    expect(pushed.reference).toBe(`${registryHost}/images/busybox-oci:latest`);
    expect(pushed.digest).toMatch(/^sha256:[0-9a-f]{64}$/);

    const manifest = await skopeoInspect(pushed.reference, 'raw');
    expect(manifest.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(manifest.layers).toHaveLength(1);
    expect(manifest.layers[0].mediaType).toBe('application/vnd.oci.image.layer.v1.tar+gzip');
    const config = await skopeoInspect(pushed.digestReference, 'config');
    expect(config.config.Cmd).toEqual(['/bin/sh']);
    expect(config.config.Env).toContain('PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
    expect(config.created).toBe('1970-01-01T00:00:00Z');

    const image = await unpack(pushed.digestReference);
    const result = await runInRootfs(image.rootfs, ['/bin/sh', '-c', 'echo ok; id -u app; ls /usr/bin/env'], {
      env: image.process.env,
    });
    expect(result.stdout).toBe(`ok\n${APP_UID}\n/usr/bin/env\n`);
  });

  it('pushes with Docker v2 schema 2 media types', async () => {
    const pushed = await pushBusyboxBase(registryHost, 'images/busybox-docker', { format: 'docker', tag: 'v2' });
    const manifest = await skopeoInspect(pushed.reference, 'raw');
    expect(manifest.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(pushed.mediaType).toBe(manifest.mediaType);
    expect(manifest.config.mediaType).toBe('application/vnd.docker.container.image.v1+json');
    expect(manifest.layers[0].mediaType).toBe('application/vnd.docker.image.rootfs.diff.tar.gzip');

    const image = await unpack(pushed.reference);
    const result = await runInRootfs(image.rootfs, ['sh', '-c', 'echo "$HOME" from docker'], {
      env: [...(image.process.env ?? []), 'HOME=/root'],
    });
    expect(result.stdout).toBe('/root from docker\n');
  });

  it('builds the rootfs inside the image: applet links, users, /tmp and /root', async () => {
    const pushed = await pushBusyboxBase(registryHost, 'images/busybox-tree');
    const image = await unpack(pushed.reference);
    const applets = await busyboxAppletPaths();
    expect(applets.length).toBeGreaterThan(100);
    for (const applet of applets) {
      expect(await readlink(join(image.rootfs, applet))).toBe('/bin/busybox');
    }
    const passwd = await readFile(join(image.rootfs, 'etc/passwd'), 'utf8');
    expect(passwd).toMatch(/^root:x:0:0:/m);
    expect(passwd).toMatch(/^nobody:x:65534:65534:/m);
    expect(passwd).toMatch(new RegExp(`^app:x:${APP_UID}:${APP_UID}:`, 'm'));
    expect(await readFile(join(image.rootfs, 'etc/group'), 'utf8')).toMatch(new RegExp(`^app:x:${APP_UID}:`, 'm'));
    expect((await lstat(join(image.rootfs, 'tmp'))).mode & 0o7777).toBe(0o1777);
    expect((await lstat(join(image.rootfs, 'root'))).isDirectory()).toBe(true);
    expect((await lstat(join(image.rootfs, 'bin/busybox'))).isFile()).toBe(true);
  });

  it('is reproducible: a fresh build has the same manifest digest as the cached one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tessera-busybox-'));
    try {
      const first = await buildBusyboxLayout(join(dir, 'a'), 'x');
      const second = await buildBusyboxLayout(join(dir, 'b'), 'x');
      expect(second.manifestDigest).toBe(first.manifestDigest);
      const pushed = await pushBusyboxBase(registryHost, 'images/busybox-repro');
      const fresh = await pushLayoutImage(
        first,
        registryHost,
        'images/busybox-repro',
        { tag: 'fresh' },
      );
      expect(fresh.digest).toBe(pushed.digest);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
