import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { extractLayer } from '../layer/index';
import type { ImageLayer } from './built-image';

/** Opens a layer's compressed bytes, from its file or its source image. */
export function openLayer(layer: ImageLayer): Promise<Readable> {
  // Local layer files were written by us and digested while written.
  if (layer.path) return Promise.resolve(createReadStream(layer.path));
  if (layer.source) return layer.source.openBlob(layer.descriptor);
  return Promise.reject(new Error(`layer ${layer.descriptor.digest} has no content source`));
}

/**
 * A stage's filesystem unpacked in a directory, made only when a RUN (or a COPY --from of it) needs one.
 * Extraction is confined to the directory; whiteouts apply as a container runtime would apply them.
 */
export class Rootfs {
  private applied = 0;
  /** Layers that came from the unpack cache instead of being extracted. */
  restoredFromCache = 0;

  constructor(
    readonly dir: string,
    private readonly onWarning: (message: string) => void,
  ) {}

  /** Layers extracted so far, in image order. */
  get layerCount(): number {
    return this.applied;
  }

  static async create(dir: string, onWarning: (message: string) => void): Promise<Rootfs> {
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true, mode: 0o755 });
    return new Rootfs(dir, onWarning);
  }

  /**
   * A rootfs holding `layers`: copied from the cache for the longest known prefix, the rest extracted;
   * a newly extracted chain is saved back to the cache.
   */
  static async materialise(dir: string, layers: ImageLayer[], options: { onWarning: (message: string) => void; cache?: RootfsCache }): Promise<Rootfs> {
    const rootfs = await Rootfs.create(dir, options.onWarning);
    if (options.cache) rootfs.applied = await options.cache.restore(layers, dir);
    const restored = (rootfs.restoredFromCache = rootfs.applied);
    await rootfs.catchUp(layers);
    if (options.cache && restored < layers.length) await options.cache.save(layers, dir);
    return rootfs;
  }

  /** Extracts the layers from `layers[this.layerCount]` on, in order. */
  async catchUp(layers: ImageLayer[]): Promise<void> {
    for (; this.applied < layers.length; this.applied++) {
      const stream = await openLayer(layers[this.applied]!);
      await extractLayer(stream, this.dir, { onWarning: this.onWarning });
    }
  }

  /** Records that the rootfs already holds a layer's changes (a RUN made them in place). */
  markApplied(count: number): void {
    this.applied = count;
  }

  remove(): Promise<void> {
    return rm(this.dir, { recursive: true, force: true });
  }
}

const execFileAsync = promisify(execFile);

/** OCI chain IDs: ChainID(L0) = DiffID(L0), ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)). */
export function chainIds(layers: ImageLayer[]): string[] {
  const ids: string[] = [];
  for (const layer of layers) {
    const previous = ids.at(-1);
    ids.push(previous ? 'sha256:' + createHash('sha256').update(`${previous} ${layer.diffId}`).digest('hex') : layer.diffId);
  }
  return ids;
}

/**
 * Unpacked rootfs trees under `--cache-dir`, keyed by chain ID, so the next build copies a base
 * (copy-on-write where the filesystem has reflinks) instead of decompressing and extracting it again.
 */
export class RootfsCache {
  constructor(private readonly dir: string) {}

  private pathFor(chainId: string): string {
    return join(this.dir, chainId.replace(/^sha256:/, ''));
  }

  /** Copies the longest cached prefix of `layers` into `target`; returns how many layers it covers. */
  async restore(layers: ImageLayer[], target: string): Promise<number> {
    const ids = chainIds(layers);
    for (let count = ids.length; count > 0; count--) {
      const cached = this.pathFor(ids[count - 1]!);
      if (await stat(cached).then((s) => s.isDirectory(), () => false)) {
        await copyTree(cached, target);
        return count;
      }
    }
    return 0;
  }

  /** Keeps a copy of `source` (holding exactly `layers`): copied to a temporary name, then renamed into place. */
  async save(layers: ImageLayer[], source: string): Promise<void> {
    const id = chainIds(layers).at(-1);
    if (!id || (await stat(this.pathFor(id)).then(() => true, () => false))) return;
    await mkdir(this.dir, { recursive: true });
    const temporary = join(this.dir, `.tmp-${randomBytes(6).toString('hex')}`);
    try {
      await mkdir(temporary);
      await copyTree(source, temporary);
      await rename(temporary, this.pathFor(id)).catch(async (error: NodeJS.ErrnoException) => {
        // Another build saved the same chain first: theirs is as good as ours.
        if (error.code !== 'ENOTEMPTY' && error.code !== 'EEXIST') throw error;
      });
    } finally {
      await rm(temporary, { recursive: true, force: true });
    }
  }
}

async function copyTree(from: string, to: string): Promise<void> {
  await execFileAsync('cp', ['-a', '--reflink=auto', `${from}/.`, to]);
}
