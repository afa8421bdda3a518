import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, readFile, rename, rm } from 'node:fs/promises';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DigestStream, TesseraError, digestHex } from '@tessera/oci';
import { createCompressor, type LayerCompression } from './compression';
import { OPAQUE_WHITEOUT, WHITEOUT_PREFIX, type LayerEntry } from './entry';
import { BLOCK_SIZE, END_OF_ARCHIVE, encodeHeader, paddingFor } from './tar-header';

export interface WriteLayerOptions {
  compression: LayerCompression;
  /** Compression level; defaults: gzip zlib's default (6), zstd 3. */
  level?: number;
  /** Directory for the layer file, named by the hex of its digest (unless `outputPath` is given). */
  outputDir?: string;
  /** Exact file to write instead; the temp file lives next to it so the final rename is atomic. */
  outputPath?: string;
  /** Replace every mtime with this time (fully reproducible layers). */
  mtime?: Date;
  /** Clamp mtimes to at most this time (SOURCE_DATE_EPOCH, Kaniko/BuildKit `--reproducible`). */
  clampMtime?: Date;
  /** Sort entries by path, parents first. Default: true for arrays, false for other iterables (streamed as given). */
  sort?: boolean;
}

export interface WrittenLayer {
  path: string;
  /** sha256 of the compressed bytes. */
  digest: string;
  /** sha256 of the uncompressed tar. */
  diffId: string;
  /** Compressed size in bytes. */
  size: number;
  uncompressedSize: number;
  compression: LayerCompression;
  /** Left to the caller, which knows whether it writes OCI or Docker manifests. */
  mediaType?: string;
}

/** Entry path checks: relative, `/`-separated, no `.`/`..` components. Returns the cleaned path. */
export function normaliseEntryPath(entryPath: string): string {
  const cleaned = entryPath.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
  const parts = cleaned.split('/');
  if (cleaned === '' || cleaned.startsWith('/') || parts.some((part) => part === '' || part === '.' || part === '..')) {
    throw new TesseraError(`invalid layer entry path ${JSON.stringify(entryPath)}: must be relative, without empty, "." or ".." components`, 'INVALID_LAYER_ENTRY');
  }
  if (cleaned.includes('\0')) throw new TesseraError(`invalid layer entry path ${JSON.stringify(entryPath)}: contains NUL`, 'INVALID_LAYER_ENTRY');
  return cleaned;
}

/** Byte-wise, component-wise path order: a directory comes right before its own entries, independent of locale. */
export function compareEntryPaths(a: string, b: string): number {
  const left = a.split('/');
  const right = b.split('/');
  for (let i = 0; i < Math.min(left.length, right.length); i++) {
    const order = Buffer.compare(Buffer.from(left[i], 'utf8'), Buffer.from(right[i], 'utf8'));
    if (order !== 0) return order;
  }
  return left.length - right.length;
}

/**
 * Sorts entries deterministically by path (stable for duplicate paths). A hardlink whose target would
 * come later moves right after its target, since extractors need the target to exist first.
 */
export function sortLayerEntries(entries: readonly LayerEntry[]): LayerEntry[] {
  const sorted = entries
    .map((entry, index) => ({ entry, index, key: normaliseEntryPath(entry.path) }))
    .sort((a, b) => compareEntryPaths(a.key, b.key) || a.index - b.index);
  const firstIndex = new Map<string, number>();
  sorted.forEach(({ key }, index) => firstIndex.has(key) || firstIndex.set(key, index));
  const waiting = new Map<string, LayerEntry[]>();
  const result: LayerEntry[] = [];
  const emit = (entry: LayerEntry, key: string) => {
    result.push(entry);
    const followers = waiting.get(key);
    if (!followers) return;
    waiting.delete(key);
    for (const follower of followers) emit(follower, normaliseEntryPath(follower.path));
  };
  sorted.forEach(({ entry, key }, index) => {
    if (entry.type === 'hardlink' && entry.linkTarget) {
      const target = normaliseEntryPath(entry.linkTarget);
      if ((firstIndex.get(target) ?? -1) > index) {
        waiting.set(target, [...(waiting.get(target) ?? []), entry]);
        return;
      }
    }
    emit(entry, key);
  });
  // Hardlinks to targets that never come (e.g. in a lower layer) keep their place at the end.
  for (const followers of waiting.values()) result.push(...followers);
  return result;
}

function entryMtimeSeconds(entry: LayerEntry, options: Pick<WriteLayerOptions, 'mtime' | 'clampMtime'>): number {
  let time = options.mtime ?? entry.mtime ?? new Date(0);
  if (options.clampMtime && time.getTime() > options.clampMtime.getTime()) time = options.clampMtime;
  return Math.floor(time.getTime() / 1000);
}

async function fileSize(entry: LayerEntry): Promise<number> {
  if (entry.content) return entry.content.length;
  if (entry.source) return entry.size ?? (await lstat(entry.source)).size;
  return entry.size ?? 0;
}

async function* fileContent(entry: LayerEntry, size: number, prefetched?: Promise<Buffer>): AsyncGenerator<Buffer> {
  if (entry.content) {
    if (entry.content.length !== size) throw new TesseraError(`layer entry ${entry.path}: size ${size} does not match its content (${entry.content.length} bytes)`, 'INVALID_LAYER_ENTRY');
    if (size > 0) yield entry.content;
  } else if (entry.source && size <= SMALL_FILE) {
    // One read for a small file: a stream per file costs more than the bytes (most layers are many small files).
    const content = await (prefetched ?? readFile(entry.source));
    if (content.length !== size) throw new TesseraError(`layer entry ${entry.path}: ${entry.source} changed size while being read (expected ${size} bytes, read ${content.length})`, 'SOURCE_CHANGED');
    if (size > 0) yield content;
  } else if (entry.source) {
    let read = 0;
    for await (const chunk of createReadStream(entry.source, { highWaterMark: 256 * 1024 }) as AsyncIterable<Buffer>) {
      read += chunk.length;
      if (read > size) break;
      yield chunk;
    }
    if (read !== size) throw new TesseraError(`layer entry ${entry.path}: ${entry.source} changed size while being read (expected ${size} bytes, read ${read})`, 'SOURCE_CHANGED');
  } else if (size !== 0) {
    throw new TesseraError(`layer entry ${entry.path}: size ${size} but no source or content`, 'INVALID_LAYER_ENTRY');
  }
  const padding = paddingFor(size);
  if (padding > 0) yield Buffer.alloc(padding);
}

/** Files up to this size are read whole; larger ones are streamed. */
const SMALL_FILE = 1 << 20;
/** Small pieces (headers, padding, small files) are joined into chunks of about this size before hashing and compression. */
const CHUNK = 256 * 1024;

/** Joins small buffers into larger chunks: per-chunk costs in the hash and compression streams dominate otherwise. */
async function* coalesce(pieces: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let length = 0;
  for await (const piece of pieces) {
    if (piece.length >= CHUNK && length === 0) {
      yield piece;
      continue;
    }
    pending.push(piece);
    length += piece.length;
    if (length >= CHUNK) {
      yield Buffer.concat(pending, length);
      pending = [];
      length = 0;
    }
  }
  if (length > 0) yield Buffer.concat(pending, length);
}

/** Small files read at once ahead of the tar writer, so their reads overlap on the thread pool. */
const READ_AHEAD = 16;

/** Entries with the reads of upcoming small files already started (at most READ_AHEAD of them, so memory stays bounded). */
async function* readAhead(entries: Iterable<LayerEntry> | AsyncIterable<LayerEntry>): AsyncGenerator<{ entry: LayerEntry; content?: Promise<Buffer> }> {
  const window: { entry: LayerEntry; content?: Promise<Buffer> }[] = [];
  const start = (entry: LayerEntry) => {
    const small = entry.type === 'file' && entry.source && !entry.content && entry.size !== undefined && entry.size <= SMALL_FILE;
    const content = small ? readFile(entry.source!) : undefined;
    // Marked handled: a failed read is reported when the writer reaches the entry.
    content?.catch(() => undefined);
    return { entry, content };
  };
  for await (const entry of entries) {
    window.push(start(entry));
    if (window.length > READ_AHEAD) yield window.shift()!;
  }
  yield* window;
}

/** The uncompressed tar bytes of `entries`, produced on demand (the consumer's pace drives file reads). */
export async function* tarStream(
  entries: Iterable<LayerEntry> | AsyncIterable<LayerEntry>,
  options: Pick<WriteLayerOptions, 'mtime' | 'clampMtime'> = {},
): AsyncGenerator<Buffer> {
  for await (const { entry, content } of readAhead(entries)) {
    const name = normaliseEntryPath(entry.path);
    const size = entry.type === 'file' ? await fileSize(entry) : 0;
    if (!Number.isSafeInteger(size) || size < 0) throw new TesseraError(`layer entry ${entry.path}: invalid size ${size}`, 'INVALID_LAYER_ENTRY');
    if ((entry.type === 'symlink' || entry.type === 'hardlink') && !entry.linkTarget) {
      throw new TesseraError(`layer entry ${entry.path}: ${entry.type} without linkTarget`, 'INVALID_LAYER_ENTRY');
    }
    const isDevice = entry.type === 'char' || entry.type === 'block';
    yield encodeHeader({
      name: entry.type === 'directory' ? `${name}/` : name,
      type: entry.type,
      mode: entry.mode & 0o7777,
      uid: entry.uid,
      gid: entry.gid,
      size,
      mtimeSeconds: entryMtimeSeconds(entry, options),
      linkname: entry.type === 'hardlink' ? normaliseEntryPath(entry.linkTarget!) : entry.type === 'symlink' ? entry.linkTarget : undefined,
      devmajor: isDevice ? entry.devmajor ?? 0 : 0,
      devminor: isDevice ? entry.devminor ?? 0 : 0,
      xattrs: entry.xattrs,
    });
    if (entry.type === 'file') yield* fileContent(entry, size, content);
  }
  yield END_OF_ARCHIVE;
}

/**
 * Writes a layer in one streaming pass: tar → sha256 (diff_id) → compression → sha256 (digest) → temp
 * file, renamed into place at the end. Nothing is buffered beyond stream chunks, and backpressure flows
 * back to the file reads.
 */
export async function writeLayer(entries: Iterable<LayerEntry> | AsyncIterable<LayerEntry>, options: WriteLayerOptions): Promise<WrittenLayer> {
  const outputDir = options.outputPath ? path.dirname(options.outputPath) : options.outputDir;
  if (!outputDir) throw new TypeError('writeLayer needs outputDir or outputPath');
  await mkdir(outputDir, { recursive: true });
  const sorted = (options.sort ?? Array.isArray(entries)) ? sortLayerEntries(await collect(entries)) : entries;

  const uncompressed = new DigestStream();
  const compressed = new DigestStream();
  const tempPath = path.join(outputDir, `.tmp-layer-${process.pid}-${randomBytes(6).toString('hex')}`);
  try {
    await pipeline(
      Readable.from(coalesce(tarStream(sorted, options)), { objectMode: false, highWaterMark: 1 }),
      uncompressed,
      ...createCompressor(options.compression, options.level),
      compressed,
      createWriteStream(tempPath, { flags: 'wx' }),
    );
    const digest = compressed.digest;
    const finalPath = options.outputPath ?? path.join(outputDir, digestHex(digest));
    await rename(tempPath, finalPath);
    return {
      path: finalPath,
      digest,
      diffId: uncompressed.digest,
      size: compressed.size,
      uncompressedSize: uncompressed.size,
      compression: options.compression,
    };
  } catch (error) {
    await rm(tempPath, { force: true });
    throw error;
  }
}

async function collect<T>(items: Iterable<T> | AsyncIterable<T>): Promise<T[]> {
  if (Array.isArray(items)) return items;
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}

/** A `.wh.NAME` entry that deletes `targetPath` from lower layers. */
export function whiteoutEntry(targetPath: string, mtime?: Date): LayerEntry {
  const cleaned = normaliseEntryPath(targetPath);
  const slash = cleaned.lastIndexOf('/');
  const whiteout = slash === -1 ? WHITEOUT_PREFIX + cleaned : `${cleaned.slice(0, slash)}/${WHITEOUT_PREFIX}${cleaned.slice(slash + 1)}`;
  return { path: whiteout, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, content: Buffer.alloc(0), mtime };
}

/** A `.wh..wh..opq` entry that hides all lower-layer content of `directoryPath` ("" for the root). */
export function opaqueWhiteoutEntry(directoryPath: string, mtime?: Date): LayerEntry {
  const name = directoryPath === '' ? OPAQUE_WHITEOUT : `${normaliseEntryPath(directoryPath)}/${OPAQUE_WHITEOUT}`;
  return { path: name, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, content: Buffer.alloc(0), mtime };
}
