import { lstat, readdir, readlink } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { Readable } from 'node:stream';
import {
  canonicalJsonBytes,
  indexMediaType,
  layerMediaType,
  sha256Digest,
  TesseraError,
  type Descriptor,
  type HistoryEntry,
  type ImageConfig,
  type ImageIndex,
  type ImageSource,
  type Platform,
  type RawManifest,
  type RegistryLocation,
} from '@tessera/oci';
import type { LayerEntry } from '../layer/entry';
import { writeLayer, type WrittenLayer } from '../layer/writer';
import type { LayerCompression } from '../layer/compression';
import type { BaseImage } from './base-image';
import { BuiltImage, type ImageLayer } from './built-image';
import { normaliseImagePath, StageConfig } from './image-config';

/**
 * Layered mode: an image made of a base plus independent layers, each a set of host files placed
 * at image paths, with no Dockerfile. Every layer depends only on its own files, so one changed
 * module changes one layer digest.
 */

/** One host file (or directory tree) and where it goes in the image. */
export interface LayerFileSource {
  /** Host path of a file, symlink or directory. */
  hostPath: string;
  /** Absolute image path it lands at; a directory's contents land below it. */
  imagePath: string;
}

/** Config changes applied on top of the base config, Docker-style (ENTRYPOINT resets an inherited CMD). */
export interface LayeredConfig {
  workdir?: string;
  entrypoint?: string[];
  cmd?: string[];
  env?: Record<string, string>;
  user?: string;
  /** `8080` or `8080/udp`. */
  ports?: string[];
  labels?: Record<string, string>;
}

/** A written layer plus what it is, for the image history. */
export interface LayeredLayer {
  description: string;
  written: Pick<WrittenLayer, 'path' | 'digest' | 'diffId' | 'size' | 'compression'>;
}

/** Modes a reproducible layer uses: directories and executables 0755, other files 0644, links 0777. */
export function normalisedMode(type: LayerEntry['type'], hostMode: number): number {
  if (type === 'directory') return 0o755;
  if (type === 'symlink') return 0o777;
  return hostMode & 0o111 ? 0o755 : 0o644;
}

/**
 * Layer entries for host files at image paths: owned by root, normalised modes, missing parent
 * directories added. Directories are walked without following symlinks; only files, directories and
 * symlinks are taken (sockets and devices in a workspace are never meant for an image).
 */
export async function layerEntriesFromFiles(sources: readonly LayerFileSource[]): Promise<LayerEntry[]> {
  const entries = new Map<string, LayerEntry>();
  const addParents = (imagePath: string) => {
    for (let dir = posix.dirname(imagePath); dir !== '/' && dir !== '.'; dir = posix.dirname(dir)) {
      const key = dir.slice(1);
      if (entries.has(key)) break;
      entries.set(key, { path: key, type: 'directory', mode: 0o755, uid: 0, gid: 0 });
    }
  };
  const add = async (hostPath: string, imagePath: string): Promise<void> => {
    const stats = await lstat(hostPath).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') throw new TesseraError(`layer source not found: ${hostPath}`, 'LAYER_SOURCE_NOT_FOUND', 'build the project first, or fix the path');
      throw error;
    });
    const key = imagePath.slice(1);
    if (key === '') throw new TesseraError(`cannot place ${hostPath} at the image root as a single entry`, 'INVALID_LAYER_ENTRY');
    addParents(imagePath);
    if (stats.isDirectory()) {
      entries.set(key, { path: key, type: 'directory', mode: 0o755, uid: 0, gid: 0 });
      for (const name of (await readdir(hostPath)).sort()) await add(join(hostPath, name), posix.join(imagePath, name));
    } else if (stats.isFile()) {
      entries.set(key, { path: key, type: 'file', mode: normalisedMode('file', stats.mode), uid: 0, gid: 0, size: stats.size, source: hostPath });
    } else if (stats.isSymbolicLink()) {
      entries.set(key, { path: key, type: 'symlink', mode: 0o777, uid: 0, gid: 0, linkTarget: await readlink(hostPath) });
    }
  };
  for (const source of sources) await add(source.hostPath, normaliseImagePath(source.imagePath));
  return [...entries.values()];
}

/**
 * Writes one reproducible layer: sorted entries, the given mtime on every entry (the epoch or
 * SOURCE_DATE_EPOCH), fixed compression settings. Same entries and content, same digest, on any machine.
 */
export function writeReproducibleLayer(
  entries: LayerEntry[],
  options: { outputDir: string; mtime: Date; compression?: LayerCompression },
): Promise<WrittenLayer> {
  return writeLayer(entries, { compression: options.compression ?? 'gzip', outputDir: options.outputDir, mtime: options.mtime, sort: true });
}

/**
 * The layered image: the base's layers (left where they are), then the given layers in order, and the
 * base config with the changes applied. `created` dates the config and history (use the layer mtime
 * for reproducible digests).
 */
export function assembleLayeredImage(
  base: BaseImage,
  layers: readonly LayeredLayer[],
  changes: LayeredConfig,
  options: { created: Date; annotations?: Record<string, string> },
): BuiltImage {
  const config = new StageConfig(base.config);
  const created = options.created.toISOString();
  config.config.created = created;
  const imageLayers: ImageLayer[] = [...base.layers];
  for (const layer of layers) {
    const { written } = layer;
    imageLayers.push({
      descriptor: { mediaType: layerMediaType(base.family, written.compression), digest: written.digest, size: written.size },
      diffId: written.diffId,
      path: written.path,
    });
    config.addDiffId(written.diffId);
    config.addHistory({ created, created_by: `tessera layered: ${layer.description}`, comment: 'tessera' } satisfies HistoryEntry);
  }
  if (changes.workdir) config.setWorkdir(changes.workdir);
  if (changes.env) config.setEnv(Object.entries(changes.env));
  if (changes.user !== undefined) config.setUser(changes.user);
  if (changes.entrypoint) config.setEntrypoint(changes.entrypoint);
  if (changes.cmd) config.setCmd(changes.cmd);
  if (changes.ports?.length) config.addExposedPorts(changes.ports);
  if (changes.labels) config.addLabels(Object.entries(changes.labels));
  const annotations: Record<string, string> = { ...options.annotations };
  if (base.pinnedName && base.digest) {
    annotations['org.opencontainers.image.base.name'] = base.pinnedName.replace(/@sha256:[a-f0-9]+$/, '');
    annotations['org.opencontainers.image.base.digest'] = base.digest;
  }
  return new BuiltImage(imageLayers, config.config, base.family, { description: 'layered image', annotations });
}

/** One platform's image of a multi-platform build. */
export interface PlatformImage {
  /** What the index entry says, normally `configPlatform(image.config)`. */
  platform: Platform;
  image: BuiltImage;
}

/** The platform an image config declares (os, architecture, variant, os.version), for its index entry. */
export function configPlatform(config: ImageConfig): Platform {
  const platform: Platform = { architecture: config.architecture, os: config.os };
  if (config.variant) platform.variant = config.variant;
  if (config['os.version']) platform['os.version'] = config['os.version'];
  return platform;
}

/**
 * An image index over built images, one per platform. It is an ImageSource like a single built image:
 * copying it writes each image's blobs once (shared layers are one blob), each manifest, then the index.
 * The index is a Docker manifest list when every image uses Docker media types, else an OCI index.
 */
export class BuiltIndex implements ImageSource {
  readonly description: string;
  private readonly manifest: RawManifest;
  private readonly children: Map<string, RawManifest>;

  private constructor(
    readonly images: readonly PlatformImage[],
    children: readonly RawManifest[],
    options: { description?: string; annotations?: Record<string, string> },
  ) {
    this.description = options.description ?? 'built image index';
    this.children = new Map(children.map((child) => [child.digest, child]));
    const family = images.every(({ image }) => image.family === 'docker') ? 'docker' : 'oci';
    const mediaType = indexMediaType(family);
    const index: ImageIndex = {
      schemaVersion: 2,
      mediaType,
      manifests: images.map(({ platform }, i) => ({ mediaType: children[i]!.mediaType, digest: children[i]!.digest, size: children[i]!.bytes.length, platform })),
      // Docker's manifest list has no annotations field.
      annotations: family === 'oci' && options.annotations && Object.keys(options.annotations).length ? options.annotations : undefined,
    };
    const bytes = canonicalJsonBytes(index);
    this.manifest = { bytes, mediaType, digest: sha256Digest(bytes) };
  }

  /** The index over `images`, in the order given (the caller's platform order, so the digest is stable). */
  static async of(images: readonly PlatformImage[], options: { description?: string; annotations?: Record<string, string> } = {}): Promise<BuiltIndex> {
    if (images.length === 0) throw new TesseraError('an image index needs at least one image', 'INVALID_INDEX');
    const children = await Promise.all(images.map(({ image }) => image.getManifest()));
    return new BuiltIndex(images, children, options);
  }

  get digest(): string {
    return this.manifest.digest;
  }

  get mediaType(): string {
    return this.manifest.mediaType;
  }

  async getManifest(): Promise<RawManifest> {
    return this.manifest;
  }

  async getManifestByDigest(digest: string): Promise<RawManifest> {
    if (digest === this.manifest.digest) return this.manifest;
    const child = this.children.get(digest);
    if (!child) throw new Error(`${this.description} has no manifest ${digest}`);
    return child;
  }

  blobLocation(descriptor: Descriptor): RegistryLocation | undefined {
    return this.imageWithBlob(descriptor)?.blobLocation(descriptor);
  }

  openBlob(descriptor: Descriptor): Promise<Readable> {
    const image = this.imageWithBlob(descriptor);
    if (!image) return Promise.reject(new Error(`${this.description} has no blob ${descriptor.digest}`));
    return image.openBlob(descriptor);
  }

  private imageWithBlob(descriptor: Descriptor): BuiltImage | undefined {
    const has = (image: BuiltImage) => image.configDigest === descriptor.digest || image.layers.some((layer) => layer.descriptor.digest === descriptor.digest);
    return this.images.find(({ image }) => has(image))?.image;
  }
}
