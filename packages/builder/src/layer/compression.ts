import { spawn } from 'node:child_process';
import { Readable, Transform, pipeline, type TransformCallback } from 'node:stream';
import * as zlib from 'node:zlib';
import { TesseraError } from '@tessera/oci';

export type LayerCompression = 'gzip' | 'zstd' | 'none';
export type ArchiveCompression = LayerCompression | 'bzip2' | 'xz';

/** Recognises a compressed stream by its first bytes (at least 6 are needed for xz). */
export function detectCompression(head: Buffer): ArchiveCompression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  if (head.length >= 3 && head.toString('latin1', 0, 3) === 'BZh') return 'bzip2';
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  return 'none';
}

/** The gzip OS byte is set by zlib at build time (3 on Unix, 10 on Windows); Go writes 255, and so do we. */
const GZIP_OS_OFFSET = 9;
const GZIP_OS_UNKNOWN = 0xff;

class GzipOsByteFixer extends Transform {
  private seen = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.seen <= GZIP_OS_OFFSET && this.seen + chunk.length > GZIP_OS_OFFSET) {
      chunk = Buffer.from(chunk);
      chunk[GZIP_OS_OFFSET - this.seen] = GZIP_OS_UNKNOWN;
    }
    this.seen += chunk.length;
    done(null, chunk);
  }
}

/**
 * Compression streams with fixed settings, so the same tar gives the same bytes for a given zlib build.
 * Node's gzip header carries no name and mtime 0; the OS byte is fixed by a small transform.
 */
export function createCompressor(compression: LayerCompression, level?: number): Transform[] {
  switch (compression) {
    case 'gzip':
      return [
        zlib.createGzip({ level: level ?? zlib.constants.Z_DEFAULT_COMPRESSION, memLevel: 8, windowBits: 15, strategy: zlib.constants.Z_DEFAULT_STRATEGY }),
        new GzipOsByteFixer(),
      ];
    case 'zstd':
      return [
        zlib.createZstdCompress({
          params: {
            [zlib.constants.ZSTD_c_compressionLevel]: level ?? 3,
            [zlib.constants.ZSTD_c_checksumFlag]: 1,
            [zlib.constants.ZSTD_c_nbWorkers]: 0,
          },
        }),
      ];
    case 'none':
      return [];
  }
}

/** Reads from `input` until at least `count` bytes (or the end) are available, without losing any. */
async function peek(iterator: AsyncIterator<Buffer>, count: number): Promise<{ head: Buffer; done: boolean }> {
  const parts: Buffer[] = [];
  let length = 0;
  while (length < count) {
    const next = await iterator.next();
    if (next.done) return { head: Buffer.concat(parts), done: true };
    const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value);
    parts.push(chunk);
    length += chunk.length;
  }
  return { head: Buffer.concat(parts), done: false };
}

async function* replay(head: Buffer, iterator: AsyncIterator<Buffer>, done: boolean): AsyncGenerator<Buffer> {
  if (head.length > 0) yield head;
  if (done) return;
  for (;;) {
    const next = await iterator.next();
    if (next.done) return;
    yield next.value;
  }
}

async function* throughTransform(source: Readable, transform: Transform): AsyncGenerator<Buffer> {
  const output = pipeline(source, transform, () => undefined);
  yield* output as AsyncIterable<Buffer>;
}

/** Runs a decompressor program (`bzip2 -dc`, `xz -dc`) as a stream filter; a failure carries its stderr. */
async function* throughProgram(source: Readable, program: string): AsyncGenerator<Buffer> {
  const child = spawn(program, ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = new Promise<{ code: number | null; error?: Error }>((resolve) => {
    child.once('error', (error) => resolve({ code: null, error }));
    child.once('close', (code) => resolve({ code }));
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text: string) => {
    if (stderr.length < 2000) stderr += text;
  });
  // An early exit of the program closes its stdin; the exit status then reports the real problem.
  pipeline(source, child.stdin, () => undefined);
  let finished = false;
  try {
    yield* child.stdout as AsyncIterable<Buffer>;
    const { code, error } = await exited;
    finished = true;
    if (error) throw new TesseraError(`cannot run ${program} to decompress the archive: ${error.message}`, 'DECOMPRESS', `install ${program}`);
    if (code !== 0) throw new TesseraError(`${program} failed to decompress the archive (exit ${code}): ${stderr.trim()}`, 'DECOMPRESS');
  } finally {
    if (!finished) {
      child.kill();
      source.destroy();
    }
  }
}

/**
 * A readable of the decompressed bytes of `input`, whose format (gzip, zstd, bzip2, xz or none) is
 * recognised by its magic bytes. bzip2 and xz run the system programs, which Debian ships.
 */
export function decompressStream(input: Readable): Readable {
  async function* generate(): AsyncGenerator<Buffer> {
    const iterator = (input as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    const { head, done } = await peek(iterator, 6);
    const kind = detectCompression(head);
    const source = Readable.from(replay(head, iterator, done), { objectMode: false });
    switch (kind) {
      case 'none':
        yield* source as AsyncIterable<Buffer>;
        return;
      case 'gzip':
        yield* throughTransform(source, zlib.createGunzip());
        return;
      case 'zstd':
        yield* throughTransform(source, zlib.createZstdDecompress());
        return;
      case 'bzip2':
      case 'xz':
        yield* throughProgram(source, kind);
        return;
    }
  }
  return Readable.from(generate(), { objectMode: false });
}
