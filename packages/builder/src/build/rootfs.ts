import { mkdir, rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { extractLayer } from '../layer/index';
import type { ImageLayer } from './built-image';

/** Opens a layer's compressed bytes, from its file or its source image. */
export function openLayer(layer: ImageLayer): Promise<Readable> {
  if (layer.path) {
    // Local layer files were written by us and digested while written.
    return import('node:fs').then((fs) => fs.createReadStream(layer.path!));
  }
  if (layer.source) return layer.source.openBlob(layer.descriptor);
  return Promise.reject(new Error(`layer ${layer.descriptor.digest} has no content source`));
}

/**
 * A stage's filesystem unpacked in a directory, made only when a RUN (or a COPY --from of it) needs one.
 * Extraction is confined to the directory; whiteouts apply as a container runtime would apply them.
 */
export class Rootfs {
  private applied = 0;

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
