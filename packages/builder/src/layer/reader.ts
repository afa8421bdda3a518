import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import type * as TarStream from 'tar-stream';
import { TesseraError } from '@tessera/oci';
import { decompressStream } from './compression';

/** A tar entry header as read back from an archive. */
export interface TarEntryHeader {
  name: string;
  type: 'file' | 'link' | 'symlink' | 'character-device' | 'block-device' | 'directory' | 'fifo' | 'contiguous-file' | string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: Date;
  linkname: string | null;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
  /** PAX records of this entry (path, linkpath, SCHILY.xattr.*, …), when it had any. */
  pax: Record<string, string> | null;
}

export interface ListedTarEntry extends TarEntryHeader {
  /** sha256 of a file's content, when asked for. */
  contentDigest?: string;
}

type EntryHandler = (header: TarEntryHeader, content: Readable) => Promise<void>;

/**
 * Calls `onEntry` for each entry of an uncompressed tar stream, one at a time. The handler may read the
 * content; whatever it leaves unread is skipped. Errors name the entry they happened at.
 */
export function forEachTarEntry(tarBytes: Readable, onEntry: EntryHandler): Promise<void> {
  // Loaded on first use: a build answered from the cache never reads a tar, and the module costs start-up time.
  const parser = (require('tar-stream') as typeof TarStream).extract();
  let lastEntry: string | undefined;
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const fail = (error: unknown) => {
      if (settled) return;
      settled = true;
      tarBytes.destroy();
      parser.destroy();
      reject(describeTarError(error, lastEntry));
    };
    parser.on('entry', (header, content, next) => {
      lastEntry = header.name;
      // The parser reports a broken archive itself; the entry stream's copy of that error would go unhandled.
      content.on('error', () => undefined);
      onEntry(header as TarEntryHeader, content as unknown as Readable).then(
        () => {
          content.resume();
          next();
        },
        (error: unknown) => fail(error),
      );
    });
    parser.on('finish', () => {
      if (settled) return;
      settled = true;
      resolve();
    });
    parser.on('error', fail);
    tarBytes.on('error', fail);
    tarBytes.pipe(parser as unknown as NodeJS.WritableStream);
  });
}

function describeTarError(error: unknown, lastEntry: string | undefined): unknown {
  if (error instanceof TesseraError || !(error instanceof Error)) return error;
  const after = lastEntry === undefined ? 'at the start' : `after entry ${JSON.stringify(lastEntry)}`;
  if (error.message === 'Unexpected end of data') {
    return new TesseraError(`layer archive is truncated: unexpected end of data ${after}`, 'TRUNCATED_ARCHIVE', undefined, { cause: error });
  }
  if (/Invalid tar header|Header exceeds max size|Invalid header/.test(error.message)) {
    return new TesseraError(`layer archive is not a valid tar (${error.message}) ${after}`, 'INVALID_ARCHIVE', undefined, { cause: error });
  }
  return error;
}

/**
 * Lists the entries of a layer (a file path or a stream; gzip, zstd, bzip2, xz or plain tar, recognised
 * by magic bytes). Content is streamed and discarded, or hashed when `contentDigest` is set.
 */
export async function readLayerEntries(source: string | Readable, options: { contentDigest?: boolean } = {}): Promise<ListedTarEntry[]> {
  const input = typeof source === 'string' ? createReadStream(source) : source;
  const entries: ListedTarEntry[] = [];
  await forEachTarEntry(decompressStream(input), async (header, content) => {
    const listed: ListedTarEntry = { ...header };
    if (options.contentDigest && (header.type === 'file' || header.type === 'contiguous-file')) {
      const hash = createHash('sha256');
      for await (const chunk of content) hash.update(chunk as Buffer);
      listed.contentDigest = 'sha256:' + hash.digest('hex');
    }
    entries.push(listed);
  });
  return entries;
}
