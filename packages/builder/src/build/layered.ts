import { lstat, readdir, readlink } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { layerMediaType, TesseraError, type HistoryEntry } from '@tessera/oci';
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
