import { createHash } from 'node:crypto';
import { chmod, chown, copyFile, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { runCommand } from './command';
import {
  cachedLayout,
  DEFAULT_PATH,
  packRootfs,
  pushLayoutImage,
  type LayoutImage,
  type PushedImage,
  type PushOptions,
} from './layout';

/** Debian's busybox-static installs here; its dynamic sibling (package busybox) would need libc in the image. */
export const HOST_BUSYBOX = '/bin/busybox';

/** Bump when the rootfs recipe changes, so cached layouts from older runs are not reused. */
const RECIPE_VERSION = 1;

export const APP_UID = 1000;

const PASSWD = [
  'root:x:0:0:root:/root:/bin/sh',
  `app:x:${APP_UID}:${APP_UID}:app:/home/app:/bin/sh`,
  'nobody:x:65534:65534:nobody:/nonexistent:/bin/false',
  '',
].join('\n');

const GROUP = ['root:x:0:', `app:x:${APP_UID}:`, 'nogroup:x:65534:', ''].join('\n');

/** Lists the applet paths busybox installs (relative, e.g. `usr/bin/env`), without busybox itself. */
export async function busyboxAppletPaths(): Promise<string[]> {
  const { stdout } = await runCommand(HOST_BUSYBOX, ['--list-full']);
  return stdout
    .split('\n')
    .map((line) => line.trim())
    .filter((path) => path.includes('/') && path !== 'bin/busybox');
}

/**
 * Fills `rootfs` with a static busybox, one symlink per applet, users root, app (uid 1000) and nobody,
 * `/tmp` (1777) and `/root`. Every path is joined under `rootfs`: nothing is created on the host.
 */
export async function populateBusyboxRootfs(rootfs: string): Promise<void> {
  for (const dir of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'root', 'tmp', 'home/app', 'dev', 'proc']) {
    await mkdir(join(rootfs, dir), { recursive: true });
  }
  await copyFile(HOST_BUSYBOX, join(rootfs, 'bin/busybox'));
  await chmod(join(rootfs, 'bin/busybox'), 0o755);
  for (const applet of await busyboxAppletPaths()) {
    const link = join(rootfs, applet);
    if (!link.startsWith(`${rootfs}/`)) throw new Error(`busybox applet path escapes the rootfs: ${applet}`);
    await mkdir(dirname(link), { recursive: true });
    await symlink('/bin/busybox', link);
  }
  await writeFile(join(rootfs, 'etc/passwd'), PASSWD, { mode: 0o644 });
  await writeFile(join(rootfs, 'etc/group'), GROUP, { mode: 0o644 });
  await chmod(join(rootfs, 'tmp'), 0o1777);
  await chmod(join(rootfs, 'root'), 0o700);
  // Without root the layer records the builder's own ids anyway (umoci --rootless maps them to 0).
  if (process.getuid?.() === 0) {
    await chown(join(rootfs, 'home/app'), APP_UID, APP_UID);
  }
}

/** Builds the busybox image into a new OCI layout at `dir` (no caching). */
export function buildBusyboxLayout(dir: string, tag = 'latest'): Promise<LayoutImage> {
  return packRootfs(dir, tag, populateBusyboxRootfs, {
    createdBy: 'tessera test image: busybox-static rootfs',
    cmd: ['/bin/sh'],
    env: [`PATH=${DEFAULT_PATH}`],
  });
}

let busyboxKey: Promise<string> | undefined;

/** Cache key: the busybox binary's content and the recipe version. */
export function busyboxCacheKey(): Promise<string> {
  busyboxKey ??= readFile(HOST_BUSYBOX).then(
    (bytes) => `busybox-v${RECIPE_VERSION}-${createHash('sha256').update(bytes).digest('hex').slice(0, 16)}`,
  );
  return busyboxKey;
}

/** The busybox layout, built once per machine (cached in a temp dir) and shared by all callers. */
export async function busyboxLayout(): Promise<LayoutImage> {
  return cachedLayout(await busyboxCacheKey(), 'latest', buildBusyboxLayout);
}

/** Pushes the busybox base to `registryHost/repository:tag` (default tag latest, default format OCI). */
export async function pushBusyboxBase(
  registryHost: string,
  repository = 'tessera/busybox',
  options: PushOptions = {},
): Promise<PushedImage> {
  return pushLayoutImage(await busyboxLayout(), registryHost, repository, options);
}
