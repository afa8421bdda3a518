import { createHash } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { MediaFamily } from '../../packages/oci/src/media-types';
import { indexMediaType } from '../../packages/oci/src/media-types';
import { busyboxCacheKey, busyboxLayout } from './busybox';
import { runCommand } from './command';
import { cachedLayout, DEFAULT_PATH, packRootfs, pushLayoutImage, readLayoutImage, type LayoutImage, type PushedImage, type PushOptions } from './layout';

/** Bump when the recipe changes, so cached layouts from older runs are not reused. */
const RECIPE_VERSION = 1;

/** The arm64 stand-in holds only this file (no binary runs: layered mode never executes the base). */
export const PLATFORM_MARKER_PATH = '/etc/tessera-platform';
export const ARM64_MARKER = 'linux/arm64 stand-in\n';

export interface PlatformEntry {
  /** `os/arch[/variant]` as the index lists it. */
  platform: string;
  /** Digest of that platform's image manifest. */
  digest: string;
}

export interface MultiPlatformLayout extends LayoutImage {
  /** The tag names an image index; these are its children. */
  platforms: PlatformEntry[];
}

export interface PushedMultiPlatformImage extends PushedImage {
  platforms: PlatformEntry[];
}

/** A tiny arm64 image: a marker file and /etc/passwd, with an arm64 config. */
export function buildArm64StandInLayout(dir: string, tag = 'latest'): Promise<LayoutImage> {
  return packRootfs(
    dir,
    tag,
    async (rootfs) => {
      await mkdir(join(rootfs, 'etc'), { recursive: true });
      await writeFile(join(rootfs, PLATFORM_MARKER_PATH), ARM64_MARKER, { mode: 0o644 });
      await writeFile(join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n', { mode: 0o644 });
    },
    { createdBy: 'tessera test image: arm64 stand-in rootfs', cmd: ['/bin/sh'], env: [`PATH=${DEFAULT_PATH}`], architecture: 'arm64', os: 'linux' },
  );
}

/**
 * An OCI layout whose `tag` names an image index of two images: linux/amd64 (the busybox base, which runs
 * here) and linux/arm64/v8 (the stand-in). Both children's blobs are in the layout.
 */
export async function buildTwoPlatformLayout(dir: string, tag = 'latest'): Promise<MultiPlatformLayout> {
  const arm64 = await buildArm64StandInLayout(dir, 'arm64');
  const amd64 = await busyboxLayout();
  await copyBlobs(amd64.dir, dir);
  const blobPath = (digest: string) => join(dir, 'blobs', ...digest.split(':'));
  const child = async (image: LayoutImage, platform: { os: string; architecture: string; variant?: string }) => {
    const bytes = await readFile(blobPath(image.manifestDigest));
    return { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: image.manifestDigest, size: bytes.length, platform };
  };
  const manifests = [await child(amd64, { os: 'linux', architecture: 'amd64' }), await child(arm64, { os: 'linux', architecture: 'arm64', variant: 'v8' })];
  const indexBytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: indexMediaType('oci'), manifests }));
  const indexDigest = `sha256:${createHash('sha256').update(indexBytes).digest('hex')}`;
  await writeFile(blobPath(indexDigest), indexBytes);
  const indexPath = join(dir, 'index.json');
  const layoutIndex = JSON.parse(await readFile(indexPath, 'utf8')) as { manifests: Record<string, unknown>[] };
  layoutIndex.manifests.push({
    mediaType: indexMediaType('oci'),
    digest: indexDigest,
    size: indexBytes.length,
    annotations: { 'org.opencontainers.image.ref.name': tag },
  });
  await writeFile(indexPath, JSON.stringify(layoutIndex));
  return {
    ...(await readLayoutImage(dir, tag)),
    platforms: manifests.map((entry) => ({ platform: [entry.platform.os, entry.platform.architecture, entry.platform.variant].filter(Boolean).join('/'), digest: entry.digest })),
  };
}

/** The two-platform layout, built once per machine and shared (see `cachedLayout`). */
export async function twoPlatformLayout(): Promise<MultiPlatformLayout> {
  const image = await cachedLayout(`two-platform-v${RECIPE_VERSION}-${await busyboxCacheKey()}`, 'latest', buildTwoPlatformLayout);
  return { ...image, platforms: await indexPlatforms(image) };
}

/**
 * Pushes the two-platform index (and both images) to `registryHost/repository:tag` with skopeo: an OCI
 * index, or with `format: 'docker'` a Docker manifest list of v2 schema 2 manifests.
 */
export async function pushTwoPlatformBase(
  registryHost: string,
  repository = 'tessera/multi-platform',
  options: PushOptions = {},
): Promise<PushedMultiPlatformImage> {
  const format = options.format ?? 'oci';
  const pushed = await pushLayoutImage(await twoPlatformLayout(), registryHost, repository, { ...options, all: true });
  const { stdout } = await runCommand('skopeo', ['--insecure-policy', 'inspect', '--raw', '--tls-verify=false', `docker://${pushed.reference}`]);
  const index = JSON.parse(stdout) as IndexJson;
  return { ...pushed, mediaType: index.mediaType ?? indexMediaType(format as MediaFamily), platforms: platformsOf(index) };
}

interface IndexJson {
  mediaType?: string;
  manifests: { digest: string; platform?: { os: string; architecture: string; variant?: string } }[];
}

function platformsOf(index: IndexJson): PlatformEntry[] {
  return index.manifests.map((entry) => ({
    platform: [entry.platform?.os, entry.platform?.architecture, entry.platform?.variant].filter(Boolean).join('/'),
    digest: entry.digest,
  }));
}

async function indexPlatforms(image: LayoutImage): Promise<PlatformEntry[]> {
  const bytes = await readFile(join(image.dir, 'blobs', ...image.manifestDigest.split(':')), 'utf8');
  return platformsOf(JSON.parse(bytes) as IndexJson);
}

async function copyBlobs(fromLayout: string, toLayout: string): Promise<void> {
  const from = join(fromLayout, 'blobs', 'sha256');
  const to = join(toLayout, 'blobs', 'sha256');
  await mkdir(to, { recursive: true });
  for (const name of await readdir(from)) await copyFile(join(from, name), join(to, name));
}
