import { randomBytes } from 'node:crypto';
import { createReadStream, statSync, type Stats } from 'node:fs';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import xxhash from 'xxhash-wasm';
import type { LayerEntry } from '../layer/entry';
import type { ContextFile, ResolvedSource } from './sources';

type Hasher = ReturnType<Awaited<ReturnType<typeof xxhash>>['create64']>;

let api: ReturnType<typeof xxhash> | undefined;

/** A streaming xxh64 hasher (xxhash-wasm, loaded once). */
export function createHasher(): Promise<Hasher> {
  api ??= xxhash();
  return api.then((loaded) => loaded.create64());
}

/** An xxh64 digest as 16 hex digits. */
export const toHex = (value: bigint) => value.toString(16).padStart(16, '0');

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
/** Past this many remembered files, the ones this build did not see are dropped. */
const MAX_REMEMBERED_FILES = 500_000;
const MAX_REMEMBERED_WALKS = 1_000;

/** The stat fields a remembered content hash stands for: device, inode, size, mtime and ctime. */
const statSignature = (stats: Stats) => `${stats.dev}:${stats.ino}:${stats.size}:${stats.mtimeMs}:${stats.ctimeMs}`;

/**
 * Content hashes remembered by path and stat (device, inode, size, mtime and ctime), as BuildKit keeps
 * its checksums: a file whose stat is unchanged is not read again. ctime changes with every write to a
 * file and cannot be set back by tools, so a rewritten file is always hashed again.
 *
 * It also remembers whole walks (`recallWalk`): a COPY whose sources' stats all match a walk seen before
 * has the entries hash it had then, with no planning or per-file lookups. The per-file hashes are only
 * read from disk when something is not found that way.
 */
export class FileHashMemo {
  /** Path → `signature hash`. */
  private files?: Promise<Map<string, string>>;
  private readonly seen = new Map<string, string>();
  private changed = false;
  private walksChanged = false;

  private constructor(
    private readonly file: string,
    private readonly walks: Map<string, string>,
  ) {}

  private get walksFile(): string {
    return `${this.file.replace(/\.json$/, '')}.walks.json`;
  }

  /** The memo stored in `file` (and its walks beside it); unreadable or missing files start an empty one. */
  static async load(file: string): Promise<FileHashMemo> {
    const memo = new FileHashMemo(file, new Map());
    for (const [key, hash] of await readStringMap(memo.walksFile)) memo.walks.set(key, hash);
    return memo;
  }

  private knownFiles(): Promise<Map<string, string>> {
    // Entries in an older format (no signature) are dropped: they would never match.
    this.files ??= readStringMap(this.file).then((map) => new Map([...map].filter(([, value]) => value.includes(' '))));
    return this.files;
  }

  /** `stats` is the file's stat if the caller has it; otherwise it is taken here. */
  async hash(path: string, stats: Stats = statSync(path)): Promise<string> {
    const signature = statSignature(stats);
    const remembered = this.seen.get(path) ?? (await this.knownFiles()).get(path);
    const space = remembered?.indexOf(' ') ?? -1;
    let hash = space > 0 && remembered!.slice(0, space) === signature ? remembered!.slice(space + 1) : undefined;
    if (!hash) {
      hash = await hashFile(path);
      this.changed = true;
    }
    this.seen.set(path, `${signature} ${hash}`);
    return hash;
  }

  /** The result remembered for a walk key (see `WalkKey`), if any. */
  recallWalk(key: string): string | undefined {
    const hash = this.walks.get(key);
    if (hash !== undefined) {
      // Most recently used last, so the oldest go first when the memo is trimmed.
      this.walks.delete(key);
      this.walks.set(key, hash);
    }
    return hash;
  }

  rememberWalk(key: string, hash: string): void {
    this.walks.set(key, hash);
    this.walksChanged = true;
  }

  /** Writes what changed, each file atomically. Files not seen this build are kept up to a bound. */
  async save(): Promise<void> {
    const writes: Promise<void>[] = [];
    if (this.walksChanged || this.walks.size > MAX_REMEMBERED_WALKS) {
      const kept = [...this.walks].slice(-MAX_REMEMBERED_WALKS);
      writes.push(writeJsonAtomically(this.walksFile, Object.fromEntries(kept)));
    }
    if (this.changed && this.files) {
      const known = await this.files;
      const merged = known.size + this.seen.size > MAX_REMEMBERED_FILES ? new Map(this.seen) : new Map([...known, ...this.seen]);
      writes.push(writeJsonAtomically(this.file, Object.fromEntries(merged)));
    }
    await Promise.all(writes);
  }
}

async function readStringMap(file: string): Promise<Map<string, string>> {
  const map = new Map<string, string>();
  try {
    const stored = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    for (const [key, value] of Object.entries(stored)) if (typeof value === 'string') map.set(key, value);
  } catch {
    // A missing or damaged memo only costs a rehash.
  }
  return map;
}

async function writeJsonAtomically(file: string, value: unknown): Promise<void> {
  const temporary = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await writeFile(temporary, JSON.stringify(value));
    await rename(temporary, file);
  } finally {
    await rm(temporary, { force: true });
  }
}

/**
 * Feeds a walk's records to two hashers: strings (each prefixed by its length in UTF-16 units, which
 * frames them as well as a byte length) as one text, and numbers as raw doubles. Every record has a fixed
 * count of numbers, so the two streams together stand for one sequence. Much cheaper per field than
 * `FramedInput`, which matters at tens of thousands of files per walk.
 */
class WalkInput {
  private text = '';
  private readonly numbers = new Float64Array(8192);
  private count = 0;

  constructor(
    private readonly textHasher: Hasher,
    private readonly numberHasher: Hasher,
  ) {}

  strings(...parts: string[]): this {
    for (const part of parts) this.text += `${part.length}:${part}`;
    if (this.text.length > 1 << 20) this.flushText();
    return this;
  }

  number(value: number): this {
    if (this.count + 1 > this.numbers.length) this.flushNumbers();
    this.numbers[this.count++] = value;
    return this;
  }

  stat(stats: Stats): this {
    if (this.count + 9 > this.numbers.length) this.flushNumbers();
    const n = this.numbers;
    let i = this.count;
    n[i++] = stats.mode;
    n[i++] = stats.uid;
    n[i++] = stats.gid;
    n[i++] = stats.size;
    n[i++] = stats.mtimeMs;
    n[i++] = stats.ctimeMs;
    n[i++] = stats.ino;
    n[i++] = stats.dev;
    n[i++] = stats.rdev;
    this.count = i;
    return this;
  }

  digest(): string {
    this.flushText();
    this.flushNumbers();
    return `${toHex(this.textHasher.digest())}${toHex(this.numberHasher.digest())}`;
  }

  private flushText(): void {
    this.textHasher.update(Buffer.from(this.text, 'utf8'));
    this.text = '';
  }

  private flushNumbers(): void {
    this.numberHasher.update(new Uint8Array(this.numbers.buffer, 0, this.count * 8));
    this.count = 0;
  }
}

/**
 * A key for what a walk of COPY sources found: every path, type, link target and the stat fields that
 * stand for content (as in `FileHashMemo`), plus what else decides the entries (the instruction, the
 * workdir, the image below). Equal keys mean equal entries hashes, so `FileHashMemo.recallWalk` can
 * answer without planning or hashing. Files are fed while the walk runs (`file`, the `visit` option of
 * `resolveCopySources`), so none is kept. Host paths and inodes are in it: the key is only ever compared
 * on the machine that made it.
 */
export class WalkKey {
  private constructor(private readonly input: WalkInput) {}

  static async start(): Promise<WalkKey> {
    return new WalkKey(new WalkInput(await createHasher(), await createHasher()));
  }

  /** One file below the directory source at `sourceIndex`, in walk order. */
  file(file: ContextFile, sourceIndex: number): void {
    // The tag tells a file record from the trailer, whose place is not known in advance.
    this.input.strings('f', file.relativePath, file.type, file.linkTarget ?? '').number(sourceIndex).stat(file.stats);
  }

  /** A directory source at `sourceIndex` whose contents find listed (`listedTreeDigest`), instead of its files. */
  listedTree(sourceIndex: number, digest: string): void {
    this.input.strings('l', digest).number(sourceIndex);
  }

  finish(sources: readonly ResolvedSource[], context: readonly string[]): string {
    this.input.strings('t', 'tessera-walk-v1', String(context.length), ...context, String(sources.length));
    for (const source of sources) {
      this.input.strings(source.source, source.relativePath, source.absolutePath, source.type, source.linkTarget ?? '', source.parentsPath, source.wildcard ? 'wildcard' : '').stat(source.stats);
    }
    return this.input.digest();
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
  // Array.prototype.sort is stable, so entries at the same path keep their order.
  const inOrder = entries.every((entry, i) => i === 0 || entries[i - 1]!.path <= entry.path);
  const sorted = inOrder ? entries : [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
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
