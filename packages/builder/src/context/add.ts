import { createHash, randomBytes } from 'node:crypto';
import { open, rename, rm, utimes } from 'node:fs/promises';
import http, { type IncomingMessage } from 'node:http';
import type https from 'node:https';
import { join, posix } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DigestMismatchError, TesseraError } from '@tessera/oci';

/** Whether an ADD source is a URL to download (http or https) rather than a context path. */
export function isRemoteSource(source: string): boolean {
  return /^https?:\/\//i.test(source);
}

export interface FetchRemoteOptions {
  /** `--checksum`: `sha256:<hex>` (also `sha384:`/`sha512:`); a mismatch fails the download. */
  checksum?: string;
  /** Idle timeout per request in milliseconds (default 60 s). */
  timeoutMs?: number;
  /** Most redirects followed (default 10). */
  maxRedirects?: number;
}

export interface RemoteFile {
  /** Absolute path of the downloaded file inside `destDir`. */
  path: string;
  /** Name from Content-Disposition, else the last segment of the URL path, else `download`. */
  filename: string;
  size: number;
  /** `sha256:<hex>` of the content. */
  digest: string;
  /** From the Last-Modified header, when it was present and valid. */
  mtime?: Date;
}

/** The URL as safe to print: no credentials, no query (signed URLs carry tokens there). */
function printableUrl(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

function parseChecksum(checksum: string): { algorithm: string; hex: string } {
  const match = /^(sha256|sha384|sha512):([a-f0-9]+)$/.exec(checksum);
  const lengths: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };
  if (!match || match[2].length !== lengths[match[1]]) {
    throw new TesseraError(`invalid --checksum ${JSON.stringify(checksum)}`, 'INVALID_CHECKSUM', 'use sha256:<64 hex digits>');
  }
  return { algorithm: match[1], hex: match[2] };
}

function filenameFromDisposition(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const extended = /filename\*\s*=\s*[^']*'[^']*'([^;]+)/i.exec(header);
  if (extended) {
    try {
      return decodeURIComponent(extended[1].trim());
    } catch {
      // Fall through to the plain parameter.
    }
  }
  const plain = /filename\s*=\s*(?:"([^"]*)"|([^;]+))/i.exec(header);
  return plain ? (plain[1] ?? plain[2]).trim() : undefined;
}

/** A single path segment that cannot escape `destDir`. */
function safeFilename(candidate: string | undefined): string | undefined {
  if (!candidate) return undefined;
  const name = posix.basename(candidate.replace(/\\/g, '/'));
  return name === '' || name === '.' || name === '..' ? undefined : name;
}

function request(url: URL, timeoutMs: number): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    // TLS is loaded on first use, as in the registry transport: most builds never download.
    const client = url.protocol === 'https:' ? (require('node:https') as typeof https) : http;
    const req = client.get(url, { headers: { 'user-agent': 'tessera', accept: '*/*' } }, resolve);
    req.setTimeout(timeoutMs, () => {
      req.destroy(new TesseraError(`ADD ${printableUrl(url)}: no response within ${timeoutMs} ms`, 'ADD_DOWNLOAD_TIMEOUT'));
    });
    req.on('error', (error) => {
      reject(
        error instanceof TesseraError
          ? error
          : new TesseraError(`ADD ${printableUrl(url)}: ${(error as NodeJS.ErrnoException).code ?? 'request failed'}`, 'ADD_DOWNLOAD_FAILED', undefined, {
              cause: error,
            }),
      );
    });
  });
}

/**
 * Downloads an ADD URL into `destDir` as a stream (never held in memory), following redirects,
 * and verifies `--checksum` before the file gets its final name. Remote archives are not unpacked.
 */
export async function fetchRemote(url: string, destDir: string, options: FetchRemoteOptions = {}): Promise<RemoteFile> {
  const expected = options.checksum ? parseChecksum(options.checksum) : undefined;
  const timeoutMs = options.timeoutMs ?? 60_000;
  const maxRedirects = options.maxRedirects ?? 10;
  let current = new URL(url);
  let response: IncomingMessage;
  for (let redirects = 0; ; redirects++) {
    if (current.protocol !== 'http:' && current.protocol !== 'https:') {
      throw new TesseraError(`ADD ${printableUrl(current)}: only http and https URLs are supported`, 'ADD_DOWNLOAD_FAILED');
    }
    response = await request(current, timeoutMs);
    const status = response.statusCode ?? 0;
    if (status >= 300 && status < 400 && response.headers.location) {
      response.resume();
      if (redirects >= maxRedirects) throw new TesseraError(`ADD ${printableUrl(current)}: too many redirects`, 'ADD_DOWNLOAD_FAILED');
      current = new URL(response.headers.location, current);
      continue;
    }
    if (status < 200 || status >= 300) {
      response.resume();
      throw new TesseraError(`ADD ${printableUrl(current)}: HTTP ${status}`, 'ADD_DOWNLOAD_FAILED');
    }
    break;
  }

  const filename =
    safeFilename(filenameFromDisposition(response.headers['content-disposition'])) ??
    safeFilename(decodeURIComponent(current.pathname)) ??
    'download';
  const temporary = join(destDir, `.tessera-download-${randomBytes(6).toString('hex')}`);
  const sha256 = createHash('sha256');
  const checksumHash = expected && expected.algorithm !== 'sha256' ? createHash(expected.algorithm) : undefined;
  let size = 0;
  const hashing = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      sha256.update(chunk);
      checksumHash?.update(chunk);
      size += chunk.length;
      done(null, chunk);
    },
  });
  response.setTimeout(timeoutMs, () => {
    response.destroy(new TesseraError(`ADD ${printableUrl(current)}: download stalled for ${timeoutMs} ms`, 'ADD_DOWNLOAD_TIMEOUT'));
  });
  try {
    const handle = await open(temporary, 'wx', 0o600);
    await pipeline(response, hashing, handle.createWriteStream());
    const sha256Hex = sha256.digest('hex');
    if (expected) {
      const actualHex = checksumHash ? checksumHash.digest('hex') : sha256Hex;
      if (actualHex !== expected.hex) {
        throw new DigestMismatchError(`ADD ${printableUrl(current)}`, `${expected.algorithm}:${expected.hex}`, `${expected.algorithm}:${actualHex}`);
      }
    }
    const lastModified = response.headers['last-modified'] ? new Date(response.headers['last-modified']) : undefined;
    const mtime = lastModified && !Number.isNaN(lastModified.getTime()) ? lastModified : undefined;
    const path = join(destDir, filename);
    await rename(temporary, path);
    if (mtime) await utimes(path, mtime, mtime);
    return { path, filename, size, digest: `sha256:${sha256Hex}`, mtime };
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

export type ArchiveFormat = 'gzip' | 'bzip2' | 'xz' | 'zstd' | 'tar';

/** Recognises a local archive by its magic bytes (ADD unpacks local archives only). */
export async function detectArchive(path: string): Promise<ArchiveFormat | null> {
  const handle = await open(path, 'r');
  try {
    const head = Buffer.alloc(512);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    const bytes = head.subarray(0, bytesRead);
    const startsWith = (...magic: number[]) => bytes.length >= magic.length && magic.every((b, i) => bytes[i] === b);
    if (startsWith(0x1f, 0x8b)) return 'gzip';
    if (startsWith(0x42, 0x5a, 0x68)) return 'bzip2';
    if (startsWith(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)) return 'xz';
    if (startsWith(0x28, 0xb5, 0x2f, 0xfd)) return 'zstd';
    if (bytes.length >= 262 && bytes.subarray(257, 262).toString('latin1') === 'ustar') return 'tar';
    return null;
  } finally {
    await handle.close();
  }
}
