import { chmod, copyFile, mkdir, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { busyboxCacheKey, populateBusyboxRootfs } from './busybox';
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

/** Where the image keeps node, as in the official node images. */
export const NODE_PATH_IN_IMAGE = '/usr/local/bin/node';

/** Bump when the rootfs recipe changes, so cached layouts from older runs are not reused. */
const RECIPE_VERSION = 1;

/** Absolute paths of the shared libraries (and the ELF interpreter) that `ldd` lists for `binary`. */
export async function sharedLibraries(binary: string): Promise<string[]> {
  const { stdout } = await runCommand('ldd', [binary]);
  const paths = new Set<string>();
  for (const line of stdout.split('\n')) {
    // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)"
    const match = /(?:=>\s*)?(\/\S+)\s+\(0x[0-9a-f]+\)/.exec(line);
    if (match && isAbsolute(match[1]!)) paths.add(match[1]!);
  }
  if (paths.size === 0) throw new Error(`ldd lists no libraries for ${binary}:\n${stdout}`);
  return [...paths].sort();
}

/** A busybox rootfs plus the running node binary at /usr/local/bin/node and the libraries it links. */
export async function populateNodeRuntimeRootfs(rootfs: string, nodeBinary = process.execPath): Promise<void> {
  await populateBusyboxRootfs(rootfs);
  const nodeTarget = join(rootfs, NODE_PATH_IN_IMAGE);
  await mkdir(dirname(nodeTarget), { recursive: true });
  await copyFile(nodeBinary, nodeTarget);
  await chmod(nodeTarget, 0o755);
  // Copy each library's content to the path the loader looks for; copyFile follows host symlinks.
  for (const library of await sharedLibraries(nodeBinary)) {
    const target = join(rootfs, library);
    await mkdir(dirname(target), { recursive: true });
    await copyFile(library, target);
    await chmod(target, 0o755);
  }
}

/** Builds the node runtime image into a new OCI layout at `dir` (no caching). */
export function buildNodeRuntimeLayout(dir: string, tag = 'latest', nodeBinary = process.execPath): Promise<LayoutImage> {
  return packRootfs(dir, tag, (rootfs) => populateNodeRuntimeRootfs(rootfs, nodeBinary), {
    createdBy: `tessera test image: node ${process.version} runtime on busybox`,
    cmd: ['node'],
    env: [`PATH=${DEFAULT_PATH}`],
  });
}

/** Cache key: node version and binary identity, the busybox key, and the recipe version. */
async function nodeRuntimeCacheKey(): Promise<string> {
  const node = await stat(process.execPath);
  const identity = `${process.version}-${process.arch}-${node.size}-${Math.trunc(node.mtimeMs)}`;
  return `node-runtime-v${RECIPE_VERSION}-${identity}-${await busyboxCacheKey()}`;
}

/** The node runtime layout for the node running this process, built once per machine and shared. */
export async function nodeRuntimeLayout(): Promise<LayoutImage> {
  return cachedLayout(await nodeRuntimeCacheKey(), 'latest', (dir, tag) => buildNodeRuntimeLayout(dir, tag));
}

/** Pushes the node runtime base to `registryHost/repository:tag` (default tag latest, default format OCI). */
export async function pushNodeRuntimeBase(
  registryHost: string,
  repository = 'tessera/node-runtime',
  options: PushOptions = {},
): Promise<PushedImage> {
  return pushLayoutImage(await nodeRuntimeLayout(), registryHost, repository, options);
}
