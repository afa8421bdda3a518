import { layerCompression, layerMediaType, type Descriptor, type MediaFamily } from '@tessera/oci';
import type { ImageLayer } from '../build/built-image';
import type { CacheKey } from './key';

/** A layer found in a cache; `path` (a local blob) or `source` (a registry holding the blob) says where its bytes are. */
export type CachedLayer = ImageLayer & { createdAt: Date };

/** A layer to store: its compressed bytes must be in a local file. */
export interface CacheableLayer {
  descriptor: Descriptor;
  diffId: string;
  path: string;
}

export interface LayerCacheOptions {
  /** An entry older than this is a miss (default: never expires). */
  ttlMs?: number;
  /** Told about entries that are unreadable or a cache that cannot be reached; they count as misses. */
  onWarning?: (message: string) => void;
  /** The current time (tests). */
  now?: () => Date;
}

/**
 * Cached layers by key. `get` never fails for a bad or unreachable entry: it is a miss (and a warning),
 * so a broken cache slows a build down but never breaks it. `put` fails loudly; callers may downgrade that.
 * The family is the media-type family of the image being built: a hit's descriptor is in that family.
 */
export interface LayerCache {
  readonly description: string;
  get(key: CacheKey, family: MediaFamily): Promise<CachedLayer | undefined>;
  put(key: CacheKey, layer: CacheableLayer, family: MediaFamily): Promise<void>;
}

/** The same blob under the other family's media type (gzip layers are named differently in OCI and Docker v2). */
export function descriptorInFamily(descriptor: Descriptor, family: MediaFamily): Descriptor {
  const mediaType = layerMediaType(family, layerCompression(descriptor.mediaType));
  return mediaType === descriptor.mediaType ? descriptor : { ...descriptor, mediaType };
}

export function isExpired(createdAt: Date, ttlMs: number | undefined, now: Date): boolean {
  return ttlMs !== undefined && now.getTime() - createdAt.getTime() > ttlMs;
}

/**
 * Several caches in order (typically a directory, then a registry): `get` returns the first hit,
 * `put` writes to every cache and fails only after all have finished.
 */
export class TieredLayerCache implements LayerCache {
  readonly description: string;

  constructor(private readonly caches: readonly LayerCache[]) {
    this.description = caches.map((c) => c.description).join(' + ');
  }

  async get(key: CacheKey, family: MediaFamily): Promise<CachedLayer | undefined> {
    for (const cache of this.caches) {
      const hit = await cache.get(key, family);
      if (hit) return hit;
    }
    return undefined;
  }

  async put(key: CacheKey, layer: CacheableLayer, family: MediaFamily): Promise<void> {
    const outcomes = await Promise.allSettled(this.caches.map((c) => c.put(key, layer, family)));
    const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failed) throw failed.reason;
  }
}
