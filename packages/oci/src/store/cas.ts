import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DigestStream, digestHex, isDigest } from '../digest';
import { DigestMismatchError } from '../errors';

/** What a caller knows about a blob before storing or reading it; the size is checked when given. */
export interface BlobExpectation {
  digest: string;
  size?: number;
}

export interface StoredBlob {
  digest: string;
  size: number;
}

export interface BlobStoreVerifyOptions {
  /** Delete corrupt blobs and stale temporary files instead of only reporting them. */
  remove?: boolean;
  /** A temporary file older than this is from a writer that died (default one hour). */
  staleAfterMs?: number;
}

export interface BlobStoreVerifyReport {
  checked: number;
  /** Blobs whose content does not hash to their name. */
  corrupt: string[];
  /** Leftover temporary files, as paths. */
  staleTemporaryFiles: string[];
  removed: boolean;
}

const TEMP_PREFIX = '.tmp-';
const HEX_NAME = /^[a-f0-9]{64}$/;

/**
 * A content-addressed blob store: each blob at `<root>/blobs/sha256/<hex>`, the layout of an OCI image layout.
 * Writers stream into a temporary file beside the target and rename it into place once the digest checks out,
 * so readers in any process see a whole blob or none, and concurrent writers of the same digest are harmless.
 */
export class BlobStore {
  readonly directory: string;

  constructor(readonly root: string) {
    this.directory = join(root, 'blobs', 'sha256');
  }

  path(digest: string): string {
    return join(this.directory, digestHex(digest));
  }

  /** The stored size, or undefined when the blob is absent. */
  async size(digest: string): Promise<number | undefined> {
    try {
      const s = await stat(this.path(digest));
      return s.isFile() ? s.size : undefined;
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  async has(expected: string | BlobExpectation): Promise<boolean> {
    const { digest, size } = typeof expected === 'string' ? { digest: expected, size: undefined } : expected;
    const actual = await this.size(digest);
    return actual !== undefined && (size === undefined || size === actual);
  }

  /**
   * Stream `content` into the store. With `expected`, the content must match it, or nothing is stored.
   * Without, the blob is named by what the content hashes to.
   */
  async put(content: Readable, expected?: BlobExpectation): Promise<StoredBlob> {
    if (expected && (await this.has(expected))) {
      content.destroy();
      return { digest: expected.digest, size: (await this.size(expected.digest))! };
    }
    await mkdir(this.directory, { recursive: true });
    const temporary = join(this.directory, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}-${process.pid}`);
    const hasher = new DigestStream(expected && { digest: expected.digest, size: expected.size });
    try {
      await pipeline(content, hasher, createWriteStream(temporary, { flags: 'wx' }));
      await rename(temporary, join(this.directory, digestHex(hasher.digest)));
    } catch (e) {
      await rm(temporary, { force: true });
      throw e;
    }
    return { digest: hasher.digest, size: hasher.size };
  }

  async putBytes(bytes: Buffer, expected?: BlobExpectation): Promise<StoredBlob> {
    return this.put(Readable.from([bytes]), expected);
  }

  /** The blob's bytes as a stream that fails at its end if they do not hash to the digest. */
  async open(expected: string | BlobExpectation, what = 'blob'): Promise<Readable> {
    const { digest, size } = typeof expected === 'string' ? { digest: expected, size: undefined } : expected;
    const file = createReadStream(this.path(digest));
    await new Promise<void>((resolve, reject) => {
      file.once('open', () => resolve());
      file.once('error', reject);
    });
    const verifier = new DigestStream({ digest, size, what: `${what} ${digest}` });
    file.on('error', (e) => verifier.destroy(e));
    return file.pipe(verifier);
  }

  /** Small blobs only (manifests, configs): read whole and verified. */
  async readBytes(expected: string | BlobExpectation, what = 'blob'): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of await this.open(expected, what)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  async delete(digest: string): Promise<boolean> {
    try {
      await unlink(this.path(digest));
      return true;
    } catch (e) {
      if (isNotFound(e)) return false;
      throw e;
    }
  }

  /** Digests of every stored blob, sorted. */
  async list(): Promise<string[]> {
    return (await this.entries()).filter((n) => HEX_NAME.test(n)).map((n) => `sha256:${n}`).sort();
  }

  /** Re-hash every blob; report (and optionally remove) corrupt blobs and stale temporary files. */
  async verify(options: BlobStoreVerifyOptions = {}): Promise<BlobStoreVerifyReport> {
    const staleAfterMs = options.staleAfterMs ?? 60 * 60 * 1000;
    const report: BlobStoreVerifyReport = { checked: 0, corrupt: [], staleTemporaryFiles: [], removed: options.remove === true };
    for (const name of await this.entries()) {
      const path = join(this.directory, name);
      if (name.startsWith(TEMP_PREFIX)) {
        const s = await stat(path).catch(() => undefined);
        if (s && Date.now() - s.mtimeMs > staleAfterMs) {
          report.staleTemporaryFiles.push(path);
          if (options.remove) await rm(path, { force: true });
        }
        continue;
      }
      const digest = `sha256:${name}`;
      if (!isDigest(digest)) continue;
      report.checked++;
      try {
        await pipeline(createReadStream(path), new DigestStream({ digest }), async (source: AsyncIterable<unknown>) => {
          for await (const _ of source);
        });
      } catch (e) {
        if (!(e instanceof DigestMismatchError)) {
          if (isNotFound(e)) continue; // deleted by another process meanwhile
          throw e;
        }
        report.corrupt.push(digest);
        if (options.remove) await rm(path, { force: true });
      }
    }
    return report;
  }

  private async entries(): Promise<string[]> {
    try {
      return await readdir(this.directory);
    } catch (e) {
      if (isNotFound(e)) return [];
      throw e;
    }
  }
}

export function isNotFound(e: unknown): boolean {
  return (e as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}
