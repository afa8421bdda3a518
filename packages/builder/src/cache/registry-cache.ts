import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import {
  canonicalJsonBytes,
  configMediaType,
  isDigest,
  isManifestMediaType,
  manifestMediaType,
  normalizeRegistry,
  RegistryError,
  registryImageSource,
  sha256Digest,
  type Descriptor,
  type ImageConfig,
  type ImageManifest,
  type MediaFamily,
  type RegistryClient,
  type RegistryLocation,
} from '@tessera/oci';
import { assertCacheKey, type CacheKey } from './key';
import { descriptorInFamily, isExpired, type CacheableLayer, type CachedLayer, type LayerCache, type LayerCacheOptions } from './layer-cache';

export interface RegistryLayerCacheOptions extends LayerCacheOptions {
  /** False for a read-only cache (Kaniko's --no-push-cache): `put` uploads nothing. Default true. */
  push?: boolean;
}

/** Label naming the key in an entry's config, for people browsing the cache repository. */
export const CACHE_KEY_LABEL = 'dev.tessera.cache.key';

/**
 * A layer cache in a registry repository. An entry is a one-layer image tagged with the key, in the
 * media-type family of the image being built. Its config is a minimal image config whose
 * `rootfs.diff_ids[0]` is the layer's diffId and whose `created` is the entry's time; both families
 * keep them there (Docker v2 manifests have no annotations), so reading an entry is the same everywhere.
 * A lookup is two small GETs (manifest by tag, then config); a hit's `source` points at the cache
 * repository, so pushing the built image mounts the blob when the destination is on the same registry.
 */
export class RegistryLayerCache implements LayerCache {
  readonly description: string;
  private readonly repo: RegistryLocation;

  constructor(
    private readonly client: RegistryClient,
    cacheRepo: RegistryLocation,
    private readonly options: RegistryLayerCacheOptions = {},
  ) {
    this.repo = { registry: normalizeRegistry(cacheRepo.registry), repository: cacheRepo.repository };
    this.description = `cache repository ${this.repo.registry}/${this.repo.repository}`;
  }

  async get(key: CacheKey, family: MediaFamily): Promise<CachedLayer | undefined> {
    const tag = assertCacheKey(key);
    try {
      const raw = await this.client.getManifest({ ...this.repo, tag });
      if (!isManifestMediaType(raw.mediaType)) throw new Error(`media type ${raw.mediaType} is not an image manifest`);
      const manifest = JSON.parse(raw.bytes.toString('utf8')) as ImageManifest;
      if (!Array.isArray(manifest.layers) || manifest.layers.length !== 1) throw new Error('an entry has exactly one layer');
      const config = await this.readConfig(manifest.config);
      const diffId = config.rootfs?.diff_ids?.[0];
      const createdAt = new Date(config.created ?? NaN);
      if (typeof diffId !== 'string' || !isDigest(diffId) || Number.isNaN(createdAt.getTime())) throw new Error('its config has no diffId or creation time');
      if (isExpired(createdAt, this.options.ttlMs, this.options.now?.() ?? new Date())) return undefined;
      return {
        descriptor: descriptorInFamily(manifest.layers[0], family),
        diffId,
        createdAt,
        source: registryImageSource(this.client, { ...this.repo, digest: raw.digest }),
      };
    } catch (e) {
      if (e instanceof RegistryError && e.status === 404) return undefined;
      this.options.onWarning?.(`${this.description}: entry ${tag} is unusable (${(e as Error).message}); treating it as a miss`);
      return undefined;
    }
  }

  /** Layer blob, then config, then the tagged manifest last: a tag never points at missing blobs. */
  async put(key: CacheKey, layer: CacheableLayer, family: MediaFamily): Promise<void> {
    const tag = assertCacheKey(key);
    if (this.options.push === false) return;
    const layerDescriptor = descriptorInFamily(layer.descriptor, family);
    await this.uploadIfMissing(layerDescriptor, async () => createReadStream(layer.path));

    const config: ImageConfig = {
      architecture: 'unknown',
      os: 'unknown',
      created: (this.options.now?.() ?? new Date()).toISOString(),
      config: { Labels: { [CACHE_KEY_LABEL]: tag } },
      rootfs: { type: 'layers', diff_ids: [layer.diffId] },
    };
    const configBytes = canonicalJsonBytes(config);
    const configDescriptor: Descriptor = { mediaType: configMediaType(family), digest: sha256Digest(configBytes), size: configBytes.length };
    await this.uploadIfMissing(configDescriptor, async () => Readable.from([configBytes]));

    const mediaType = manifestMediaType(family);
    const manifest: ImageManifest = { schemaVersion: 2, mediaType, config: configDescriptor, layers: [layerDescriptor] };
    await this.client.putManifest({ ...this.repo, tag }, { bytes: canonicalJsonBytes(manifest), mediaType });
  }

  private async uploadIfMissing(descriptor: Descriptor, open: () => Promise<Readable>): Promise<void> {
    if (await this.client.headBlob(this.repo, descriptor.digest)) return;
    await this.client.uploadBlob(this.repo, descriptor, open);
  }

  private async readConfig(descriptor: Descriptor): Promise<Partial<ImageConfig>> {
    if (descriptor.size > 64 * 1024) throw new Error(`its config is ${descriptor.size} bytes, too large for a cache entry`);
    const chunks: Buffer[] = [];
    for await (const chunk of await this.client.openBlob(this.repo, descriptor)) chunks.push(chunk as Buffer);
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as Partial<ImageConfig>;
  }
}
