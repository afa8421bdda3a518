import { createReadStream } from 'node:fs';
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

/** Feeds length-prefixed parts so that no two different part lists produce the same byte stream. */
function framed(hasher: Hasher, ...parts: (string | Buffer)[]): void {
  for (const part of parts) {
    const bytes = typeof part === 'string' ? Buffer.from(part, 'utf8') : part;
    const length = Buffer.alloc(8);
    length.writeBigUInt64BE(BigInt(bytes.length));
    hasher.update(length).update(bytes);
  }
}

const HASH_CONCURRENCY = 4;

async function contentHashes(entries: LayerEntry[]): Promise<(string | undefined)[]> {
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
        hashes[index] = await hashFile(entry.source);
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
export async function hashEntries(entries: LayerEntry[]): Promise<string> {
  const sorted = entries
    .map((entry, index) => ({ entry, index }))
    .sort((a, b) => (a.entry.path < b.entry.path ? -1 : a.entry.path > b.entry.path ? 1 : a.index - b.index))
    .map(({ entry }) => entry);
  const hashes = await contentHashes(sorted);
  const hasher = await createHasher();
  framed(hasher, 'tessera-entries-v1', String(sorted.length));
  sorted.forEach((entry, index) => {
    const xattrs = Object.keys(entry.xattrs ?? {})
      .sort()
      .flatMap((key) => [key, entry.xattrs![key]]);
    framed(
      hasher,
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
  return toHex(hasher.digest());
}
