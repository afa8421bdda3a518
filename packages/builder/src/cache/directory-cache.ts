import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BlobStore, canonicalJsonBytes, isDigest, isNotFound, type Descriptor, type MediaFamily } from '@tessera/oci';
import { assertCacheKey, type CacheKey } from './key';
import { descriptorInFamily, isExpired, type CacheableLayer, type CachedLayer, type LayerCache, type LayerCacheOptions } from './layer-cache';

/** What `<cacheDir>/entries/<key>.json` holds. */
export interface DirectoryCacheEntry {
  descriptor: Descriptor;
  diffId: string;
  /** ISO 8601. */
  createdAt: string;
  family: MediaFamily;
}

export const CACHE_ENTRIES_DIRECTORY = 'entries';
export const CACHE_ENTRY_SUFFIX = '.json';
/** Same prefix as the blob store's temporary files, so one rule finds leftovers everywhere. */
export const CACHE_TEMP_PREFIX = '.tmp-';

/** Checks an entry file's content; throws with the reason when it is not a usable entry. */
export function parseDirectoryCacheEntry(text: string): DirectoryCacheEntry {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error('not valid JSON');
  }
  const entry = value as Partial<DirectoryCacheEntry> | null;
  const d = entry?.descriptor;
  if (!d || typeof d.mediaType !== 'string' || typeof d.digest !== 'string' || !isDigest(d.digest) || !Number.isSafeInteger(d.size) || d.size < 0) {
    throw new Error('no valid layer descriptor');
  }
  if (typeof entry.diffId !== 'string' || !isDigest(entry.diffId)) throw new Error('no valid diffId');
  if (typeof entry.createdAt !== 'string' || Number.isNaN(Date.parse(entry.createdAt))) throw new Error('no valid createdAt');
  if (entry.family !== 'oci' && entry.family !== 'docker') throw new Error('no valid family');
  return entry as DirectoryCacheEntry;
}

/**
 * A layer cache in a local directory: blobs in a content-addressed BlobStore at `<cacheDir>/blobs/sha256/`,
 * one small JSON entry per key at `<cacheDir>/entries/<key>.json`. Blobs and entries are written to a
 * temporary file and renamed into place, and an entry only after its blob, so any number of processes
 * may share the directory: a reader sees a whole entry or none, and two writers of one key both succeed.
 * A hit's `path` is the blob file itself, reused byte for byte.
 */
export class DirectoryLayerCache implements LayerCache {
  readonly description: string;
  readonly store: BlobStore;
  private readonly entriesDir: string;

  constructor(
    readonly cacheDir: string,
    private readonly options: LayerCacheOptions = {},
  ) {
    this.description = `cache directory ${cacheDir}`;
    this.store = new BlobStore(cacheDir);
    this.entriesDir = join(cacheDir, CACHE_ENTRIES_DIRECTORY);
  }

  entryPath(key: CacheKey): string {
    return join(this.entriesDir, `${assertCacheKey(key)}${CACHE_ENTRY_SUFFIX}`);
  }

  async get(key: CacheKey, family: MediaFamily): Promise<CachedLayer | undefined> {
    const file = this.entryPath(key);
    try {
      return await this.read(key, file, family);
    } catch (e) {
      this.options.onWarning?.(`${this.description}: cannot read entry ${key} (${(e as Error).message}); treating it as a miss`);
      return undefined;
    }
  }

  private async read(key: CacheKey, file: string, family: MediaFamily): Promise<CachedLayer | undefined> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
    let entry: DirectoryCacheEntry;
    try {
      entry = parseDirectoryCacheEntry(text);
    } catch (e) {
      this.options.onWarning?.(`${this.description}: entry ${key} is unusable (${(e as Error).message}); treating it as a miss`);
      return undefined;
    }
    const createdAt = new Date(entry.createdAt);
    if (isExpired(createdAt, this.options.ttlMs, this.now())) return undefined;
    // A size check is cheap; the content is verified when the blob is read.
    if ((await this.store.size(entry.descriptor.digest)) !== entry.descriptor.size) {
      this.options.onWarning?.(`${this.description}: entry ${key} names blob ${entry.descriptor.digest}, which is missing or truncated; treating it as a miss`);
      return undefined;
    }
    return {
      descriptor: descriptorInFamily(entry.descriptor, family),
      diffId: entry.diffId,
      path: this.store.path(entry.descriptor.digest),
      createdAt,
    };
  }

  async put(key: CacheKey, layer: CacheableLayer, family: MediaFamily): Promise<void> {
    const file = this.entryPath(key);
    const { digest, size } = layer.descriptor;
    await this.store.put(createReadStream(layer.path), { digest, size });
    const entry: DirectoryCacheEntry = { descriptor: layer.descriptor, diffId: layer.diffId, createdAt: this.now().toISOString(), family };
    await mkdir(this.entriesDir, { recursive: true });
    const temporary = join(this.entriesDir, `${CACHE_TEMP_PREFIX}${randomBytes(8).toString('hex')}-${process.pid}`);
    try {
      await writeFile(temporary, canonicalJsonBytes(entry), { flag: 'wx' });
      await rename(temporary, file);
    } catch (e) {
      await rm(temporary, { force: true });
      throw e;
    }
  }

  private now(): Date {
    return this.options.now?.() ?? new Date();
  }
}
