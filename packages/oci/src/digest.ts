import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { DigestMismatchError } from './errors';

const DIGEST_PATTERN = /^sha256:[a-f0-9]{64}$/;

export function isDigest(value: string): boolean {
  return DIGEST_PATTERN.test(value);
}

export function assertDigest(value: string): string {
  if (!isDigest(value)) throw new TypeError(`not a sha256 digest: ${JSON.stringify(value)}`);
  return value;
}

export function sha256Digest(data: Buffer | string): string {
  return 'sha256:' + createHash('sha256').update(data).digest('hex');
}

/** The hex part of a digest, used for file names. */
export function digestHex(digest: string): string {
  return assertDigest(digest).slice('sha256:'.length);
}

/**
 * A pass-through stream that computes the sha256 digest and byte count of what flows through it.
 * When `expected` is given, the stream fails at its end if the content does not match.
 */
export class DigestStream extends Transform {
  private readonly hash: Hash = createHash('sha256');
  size = 0;
  private result: string | undefined;

  constructor(private readonly expected?: { digest: string; size?: number; what?: string }) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    if (this.expected?.size !== undefined && this.size > this.expected.size) {
      done(new DigestMismatchError(this.expected.what ?? 'blob', this.expected.digest, undefined, this.expected.size, this.size));
      return;
    }
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    this.result = 'sha256:' + this.hash.digest('hex');
    const e = this.expected;
    if (e && (this.result !== e.digest || (e.size !== undefined && e.size !== this.size))) {
      done(new DigestMismatchError(e.what ?? 'blob', e.digest, this.result, e.size, this.size));
      return;
    }
    done();
  }

  /** The digest of everything that passed; available once the stream has ended. */
  get digest(): string {
    if (!this.result) throw new Error('DigestStream.digest read before the stream ended');
    return this.result;
  }
}
