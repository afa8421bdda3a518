import { randomBytes } from 'node:crypto';
import { createReadStream, statSync, type Stats } from 'node:fs';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import xxhash from 'xxhash-wasm';
import type { LayerEntry } from '../layer/entry';

type Hasher = ReturnType<Awaited<ReturnType<typeof xxhash>>['create64']>;

let api: ReturnType<typeof xxhash> | undefined;

function createHasher(): Promise<Hasher> {
  api ??= xxhash();
  return api.then((loaded) => loaded.create64());
}

const toHex = (value: bigint) => value.toString(16).padStart(16, '0');

/** xxh64 of a file's content, streamed; 16 hex digits. */
export async function hashFile(path: string): Promise<string> {
  const hasher = await createHasher();
  for await (const chunk of createReadStream(path, { highWaterMark: 256 * 1024 })) hasher.update(chunk as Buffer);
  return toHex(hasher.digest());
}

/**
 * Feeds length-prefixed parts (an 8-byte big-endian length, then the bytes) so that no two different
 * part lists produce the same byte stream. Parts are gathered in one buffer: a context can have tens
 * of thousands of entries, and a buffer per part costs more than hashing it.
 */
class FramedInput {
  private readonly buffer = Buffer.allocUnsafe(64 * 1024);
  private used = 0;

  constructor(private readonly hasher: Hasher) {}

  add(...parts: (string | Buffer)[]): this {
    for (const part of parts) {
      const length = typeof part === 'string' ? Buffer.byteLength(part, 'utf8') : part.length;
      if (this.used + 8 + length > this.buffer.length) this.flush();
      if (8 + length > this.buffer.length) {
        const prefix = Buffer.alloc(8);
        prefix.writeBigUInt64BE(BigInt(length));
        this.hasher.update(prefix).update(typeof part === 'string' ? Buffer.from(part, 'utf8') : part);
        continue;
      }
      this.buffer.writeUInt32BE(Math.floor(length / 2 ** 32), this.used);
      this.buffer.writeUInt32BE(length >>> 0, this.used + 4);
      if (typeof part === 'string') this.buffer.write(part, this.used + 8, 'utf8');
      else part.copy(this.buffer, this.used + 8);
      this.used += 8 + length;
    }
    return this;
  }

  digest(): string {
    this.flush();
    return toHex(this.hasher.digest());
  }

  private flush(): void {
    if (this.used > 0) this.hasher.update(this.buffer.subarray(0, this.used));
    this.used = 0;
  }
}

const HASH_CONCURRENCY = 4;

/**
 * Content hashes remembered by path and stat (device, inode, size, mtime and ctime), as BuildKit keeps
 * its checksums: a file whose stat is unchanged is not read again. ctime changes with every write to a
 * file and cannot be set back by tools, so a rewritten file is always hashed again.
 */
export class FileHashMemo {
  private readonly seen = new Map<string, string>();
  private changed = false;

  private constructor(
    private readonly file: string,
    private readonly known: Map<string, string>,
  ) {}

  /** The memo stored in `file`; an unreadable or missing file starts an empty one. */
  static async load(file: string): Promise<FileHashMemo> {
    const known = new Map<string, string>();
    try {
      const stored = JSON.parse(await readFile(file, 'utf8')) as Record<string, string>;
      for (const [key, hash] of Object.entries(stored)) if (typeof hash === 'string') known.set(key, hash);
    } catch {
      // A missing or damaged memo only costs a rehash.
    }
    return new FileHashMemo(file, known);
  }

  /** `stats` is the file's stat if the caller has it; otherwise it is taken here. */
  async hash(path: string, stats: Stats = statSync(path)): Promise<string> {
    // Millisecond floats keep sub-microsecond precision for today's times; with ctime, size and inode that is enough.
    const key = `${path}\0${stats.dev}:${stats.ino}:${stats.size}:${stats.mtimeMs}:${stats.ctimeMs}`;
    let hash = this.seen.get(key) ?? this.known.get(key);
    if (!hash) {
      hash = await hashFile(path);
      this.changed = true;
    }
    this.seen.set(key, hash);
    return hash;
  }

  /** Keeps what this build used (so the memo stays the size of one context), written atomically. */
  async save(): Promise<void> {
    if (!this.changed && this.seen.size === this.known.size) return;
    const temporary = `${this.file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      await writeFile(temporary, JSON.stringify(Object.fromEntries(this.seen)));
      await rename(temporary, this.file);
    } finally {
      await rm(temporary, { force: true });
    }
  }
}

async function contentHashes(entries: LayerEntry[], memo?: FileHashMemo): Promise<(string | undefined)[]> {
  const hashes: (string | undefined)[] = new Array(entries.length);
  let next = 0;
  const worker = async () => {
    while (next < entries.length) {
      const index = next++;
      const entry = entries[index];
      if (entry.type !== 'file') continue;
      if (entry.content) {
        const hasher = await createHasher();
        hashes[index] = toHex(hasher.update(entry.content).digest());
      } else if (entry.source) {
        hashes[index] = memo ? await memo.hash(entry.source, entry.sourceStats) : await hashFile(entry.source);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(HASH_CONCURRENCY, entries.length) }, worker));
  return hashes;
}

/**
 * A cache-key hash of layer entries: path, type, mode, uid, gid, content hash or link target,
 * device numbers and xattrs, each length-framed. Order-independent (entries are sorted by path, as the
 * layer writer does); mtimes and host locations are left out so the same tree hashes the same anywhere.
 */
export async function hashEntries(entries: LayerEntry[], options: { memo?: FileHashMemo } = {}): Promise<string> {
  const sorted = entries
    .map((entry, index) => ({ entry, index }))
    .sort((a, b) => (a.entry.path < b.entry.path ? -1 : a.entry.path > b.entry.path ? 1 : a.index - b.index))
    .map(({ entry }) => entry);
  const hashes = await contentHashes(sorted, options.memo);
  const input = new FramedInput(await createHasher()).add('tessera-entries-v1', String(sorted.length));
  sorted.forEach((entry, index) => {
    const xattrs = Object.keys(entry.xattrs ?? {})
      .sort()
      .flatMap((key) => [key, entry.xattrs![key]]);
    input.add(
      entry.path,
      entry.type,
      entry.mode.toString(8),
      String(entry.uid),
      String(entry.gid),
      hashes[index] ?? '',
      entry.linkTarget ?? '',
      `${entry.devmajor ?? ''}:${entry.devminor ?? ''}`,
      String(xattrs.length),
      ...xattrs,
    );
  });
  return input.digest();
}
