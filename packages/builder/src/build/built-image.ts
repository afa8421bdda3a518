import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import {
  canonicalJsonBytes,
  configMediaType,
  DigestStream,
  manifestMediaType,
  sha256Digest,
  type Descriptor,
  type ImageConfig,
  type ImageManifest,
  type ImageSource,
  type MediaFamily,
  type RawManifest,
  type RegistryLocation,
} from '@tessera/oci';

/** A layer of a built image and where its compressed bytes come from. */
export interface ImageLayer {
  descriptor: Descriptor;
  diffId: string;
  /** A local file holding the compressed bytes (a layer just written, or one in the cache directory). */
  path?: string;
  /** Another image that has the blob: the base image, or a registry cache entry. */
  source?: ImageSource;
}

/**
 * An image assembled in memory: layers (each readable from a file or another source) plus a config.
 * It is an ImageSource, so pushing it or writing it to a layout is the same copy as for any image.
 */
export class BuiltImage implements ImageSource {
  readonly description: string;
  private readonly configBytes: Buffer;
  private readonly configDescriptor: Descriptor;
  private readonly manifest: RawManifest;
  private readonly byDigest = new Map<string, ImageLayer>();

  constructor(
    readonly layers: ImageLayer[],
    readonly config: ImageConfig,
    readonly family: MediaFamily,
    options: { description?: string; annotations?: Record<string, string> } = {},
  ) {
    this.description = options.description ?? 'built image';
    this.configBytes = canonicalJsonBytes(config);
    this.configDescriptor = {
      mediaType: configMediaType(family),
      digest: sha256Digest(this.configBytes),
      size: this.configBytes.length,
    };
    for (const layer of layers) this.byDigest.set(layer.descriptor.digest, layer);
    const mediaType = manifestMediaType(family);
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType,
      config: this.configDescriptor,
      layers: layers.map((l) => l.descriptor),
      // Docker's schema has no annotations field.
      annotations: family === 'oci' && options.annotations && Object.keys(options.annotations).length ? options.annotations : undefined,
    };
    const bytes = canonicalJsonBytes(manifest);
    this.manifest = { bytes, mediaType, digest: sha256Digest(bytes) };
  }

  get digest(): string {
    return this.manifest.digest;
  }

  get configDigest(): string {
    return this.configDescriptor.digest;
  }

  async getManifest(): Promise<RawManifest> {
    return this.manifest;
  }

  async getManifestByDigest(digest: string): Promise<RawManifest> {
    if (digest !== this.manifest.digest) throw new Error(`${this.description} has no manifest ${digest}`);
    return this.manifest;
  }

  blobLocation(descriptor: Descriptor): RegistryLocation | undefined {
    return this.byDigest.get(descriptor.digest)?.source?.location;
  }

  async openBlob(descriptor: Descriptor): Promise<Readable> {
    if (descriptor.digest === this.configDescriptor.digest) return Readable.from([this.configBytes]);
    const layer = this.byDigest.get(descriptor.digest);
    if (!layer) throw new Error(`${this.description} has no blob ${descriptor.digest}`);
    if (layer.path) {
      const verify = new DigestStream({ digest: descriptor.digest, size: descriptor.size, what: `layer ${layer.path}` });
      return createReadStream(layer.path).on('error', (e) => verify.destroy(e)).pipe(verify);
    }
    if (layer.source) return layer.source.openBlob(layer.descriptor);
    throw new Error(`layer ${descriptor.digest} has no source`);
  }
}
