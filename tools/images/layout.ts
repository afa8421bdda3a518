import { createHash, randomBytes } from 'node:crypto';
import { lstat, lutimes, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MediaFamily } from '../../packages/oci/src/media-types';
import { manifestMediaType } from '../../packages/oci/src/media-types';
import { runCommand } from './command';

/** A tagged image in an OCI layout directory, usable as `oci:DIR:TAG` by skopeo and umoci. */
export interface LayoutImage {
  dir: string;
  tag: string;
  /** `oci:DIR:TAG` */
  reference: string;
  /** Digest of the image manifest in the layout. */
  manifestDigest: string;
}

export interface ImageConfigChanges {
  cmd?: string[];
  entrypoint?: string[];
  env?: string[];
  user?: string;
  workingDir?: string;
  /** Config `architecture` and `os` (GOARCH/GOOS terms); umoci's default is the host's. */
  architecture?: string;
  os?: string;
}

export interface PushOptions {
  /** Manifest media types in the registry: OCI, or Docker v2 schema 2. Default 'oci'. */
  format?: MediaFamily;
  /** Default 'latest'. */
  tag?: string;
}

export interface PushedImage {
  /** `HOST/REPO:TAG` */
  reference: string;
  /** `HOST/REPO@sha256:…`, stable even if the tag moves. */
  digestReference: string;
  /** Manifest digest as stored in the registry. */
  digest: string;
  repository: string;
  tag: string;
  /** Manifest media type. */
  mediaType: string;
}

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Fixed timestamps make the same inputs give the same digests, so a cached layout equals a fresh one. */
const EPOCH = '1970-01-01T00:00:00Z';

/** umoci needs --rootless to unpack and repack without CAP_CHOWN. */
function umociGlobalArgs(): string[] {
  return process.getuid?.() === 0 ? [] : ['--rootless'];
}

/**
 * Creates a new OCI layout holding one image: `populate` fills an empty root filesystem, which becomes
 * one gzip layer with fixed timestamps, then the config changes are applied.
 */
export async function packRootfs(
  layoutDir: string,
  tag: string,
  populate: (rootfs: string) => Promise<void>,
  config: ImageConfigChanges & { createdBy: string },
): Promise<LayoutImage> {
  const umoci = umociGlobalArgs();
  const image = `${layoutDir}:${tag}`;
  const bundle = await mkdtemp(join(tmpdir(), 'tessera-bundle-'));
  try {
    await runCommand('umoci', [...umoci, 'init', '--layout', layoutDir]);
    await runCommand('umoci', [...umoci, 'new', '--image', image]);
    const bundleDir = join(bundle, 'b');
    await runCommand('umoci', [...umoci, 'unpack', '--image', image, bundleDir]);
    await populate(join(bundleDir, 'rootfs'));
    await setTreeMtime(join(bundleDir, 'rootfs'), new Date(0));
    await runCommand('umoci', [
      ...umoci,
      'repack',
      '--image',
      image,
      '--history.created',
      EPOCH,
      '--history.created_by',
      config.createdBy,
      bundleDir,
    ]);
    const configArgs = ['--created', EPOCH, '--no-history'];
    // umoci takes one word per --config.cmd / --config.entrypoint flag.
    for (const word of config.cmd ?? []) configArgs.push('--config.cmd', word);
    for (const word of config.entrypoint ?? []) configArgs.push('--config.entrypoint', word);
    for (const env of config.env ?? []) configArgs.push('--config.env', env);
    if (config.user) configArgs.push('--config.user', config.user);
    if (config.workingDir) configArgs.push('--config.workingdir', config.workingDir);
    if (config.architecture) configArgs.push('--architecture', config.architecture);
    if (config.os) configArgs.push('--os', config.os);
    await runCommand('umoci', [...umoci, 'config', '--image', image, ...configArgs]);
    await addManifestMediaType(layoutDir, tag);
    await runCommand('umoci', [...umoci, 'gc', '--layout', layoutDir]);
  } finally {
    await rm(bundle, { recursive: true, force: true });
  }
  return readLayoutImage(layoutDir, tag);
}

export async function readLayoutImage(layoutDir: string, tag: string): Promise<LayoutImage> {
  const index = JSON.parse(await readFile(join(layoutDir, 'index.json'), 'utf8')) as {
    manifests: { digest: string; annotations?: Record<string, string> }[];
  };
  const entry = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
  if (!entry) throw new Error(`OCI layout ${layoutDir} has no tag ${tag}`);
  return { dir: layoutDir, tag, reference: `oci:${layoutDir}:${tag}`, manifestDigest: entry.digest };
}

/**
 * umoci 0.4 omits the optional `mediaType` from manifests, and skopeo keeps it that way. Registries
 * and clients then have to guess, so store it explicitly, as current tools do.
 */
async function addManifestMediaType(layoutDir: string, tag: string): Promise<void> {
  const indexPath = join(layoutDir, 'index.json');
  const index = JSON.parse(await readFile(indexPath, 'utf8')) as {
    manifests: { mediaType: string; digest: string; size: number; annotations?: Record<string, string> }[];
  };
  const entry = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
  if (!entry) throw new Error(`OCI layout ${layoutDir} has no tag ${tag}`);
  const blobPath = (digest: string) => join(layoutDir, 'blobs', ...digest.split(':'));
  const manifest = JSON.parse(await readFile(blobPath(entry.digest), 'utf8')) as Record<string, unknown>;
  if (manifest.mediaType) return;
  const { schemaVersion, ...rest } = manifest;
  const bytes = Buffer.from(JSON.stringify({ schemaVersion, mediaType: entry.mediaType, ...rest }));
  entry.digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  entry.size = bytes.length;
  await writeFile(blobPath(entry.digest), bytes);
  await writeFile(indexPath, JSON.stringify(index));
}

async function setTreeMtime(path: string, time: Date): Promise<void> {
  const stats = await lstat(path);
  if (stats.isDirectory()) {
    for (const name of await readdir(path)) await setTreeMtime(join(path, name), time);
  }
  await lutimes(path, time, time);
}

/**
 * Pushes a layout image into a plain-HTTP registry with skopeo, converting media types when asked;
 * `all` pushes an index with every image it lists.
 */
export async function pushLayoutImage(
  image: LayoutImage,
  registryHost: string,
  repository: string,
  options: PushOptions & { all?: boolean } = {},
): Promise<PushedImage> {
  const format = options.format ?? 'oci';
  const tag = options.tag ?? 'latest';
  const reference = `${registryHost}/${repository}:${tag}`;
  const scratch = await mkdtemp(join(tmpdir(), 'tessera-push-'));
  try {
    const digestFile = join(scratch, 'digest');
    await runCommand('skopeo', [
      '--insecure-policy',
      'copy',
      '--quiet',
      ...(options.all ? ['--all'] : []),
      '--dest-tls-verify=false',
      '--format',
      format === 'docker' ? 'v2s2' : 'oci',
      '--digestfile',
      digestFile,
      image.reference,
      `docker://${reference}`,
    ]);
    const digest = (await readFile(digestFile, 'utf8')).trim();
    return {
      reference,
      digestReference: `${registryHost}/${repository}@${digest}`,
      digest,
      repository,
      tag,
      mediaType: manifestMediaType(format),
    };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** Root of the cross-run cache of built layouts; TESSERA_TEST_IMAGES_DIR overrides it. */
export function imageCacheRoot(): string {
  return process.env.TESSERA_TEST_IMAGES_DIR ?? join(tmpdir(), 'tessera-test-images');
}

const inProcess = new Map<string, Promise<LayoutImage>>();

/**
 * Returns the layout cached under `key`, building it once. Safe across concurrent processes: each
 * builds into a private directory and renames it into place; a loser of the race keeps the winner's.
 */
export function cachedLayout(
  key: string,
  tag: string,
  build: (layoutDir: string, tag: string) => Promise<LayoutImage>,
): Promise<LayoutImage> {
  const slot = `${imageCacheRoot()}\0${key}\0${tag}`;
  let pending = inProcess.get(slot);
  if (!pending) {
    pending = loadOrBuild(key, tag, build);
    pending.catch(() => inProcess.delete(slot));
    inProcess.set(slot, pending);
  }
  return pending;
}

async function loadOrBuild(
  key: string,
  tag: string,
  build: (layoutDir: string, tag: string) => Promise<LayoutImage>,
): Promise<LayoutImage> {
  const root = imageCacheRoot();
  const finalDir = join(root, key);
  try {
    return await readLayoutImage(finalDir, tag);
  } catch {
    // Not cached yet.
  }
  await mkdir(root, { recursive: true });
  const workDir = join(root, `.tmp-${key}-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await build(workDir, tag);
    try {
      await rename(workDir, finalDir);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
    }
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
  return readLayoutImage(finalDir, tag);
}
