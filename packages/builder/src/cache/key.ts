import { createHash, type Hash } from 'node:crypto';

/**
 * A cache key: 64 lowercase hex digits of a sha256. sha256 rather than xxhash because keys are shared
 * between machines through a cache repository, where a collision would silently reuse a wrong layer;
 * lowercase hex because a key is used as-is as a registry tag and as a file name (also on
 * case-insensitive file systems), and both accept exactly these characters without escaping.
 */
export type CacheKey = string;

const KEY_PATTERN = /^[a-z0-9]{1,128}$/;
const KEY_FORMAT = 'tessera-cache-key-v1';

/** Whether `value` can be a cache key: safe as a registry tag and as a file name. */
export function isCacheKey(value: string): boolean {
  return KEY_PATTERN.test(value);
}

export function assertCacheKey(value: string): CacheKey {
  if (!isCacheKey(value)) throw new TypeError(`not a cache key (expected [a-z0-9]{1,128}): ${JSON.stringify(value)}`);
  return value;
}

export type KeyPart = string | Buffer | number | boolean | undefined;

/**
 * Builds a key from length-framed parts: each part is preceded by its byte length, so no two different
 * part lists feed the hash the same bytes (`['ab','c']` and `['a','bc']` differ, unlike a plain join).
 * A list is framed as its length followed by its items. `undefined` and '' are told apart.
 */
export class CacheKeyBuilder {
  private readonly hash: Hash = createHash('sha256');

  /** `kind` names what the key is for ("copy", "run", …), so keys of different kinds never meet. */
  constructor(kind: string) {
    this.add(KEY_FORMAT, kind);
  }

  add(...parts: KeyPart[]): this {
    for (const part of parts) {
      if (part === undefined) {
        this.frame(Buffer.from([0]));
        continue;
      }
      const bytes = Buffer.isBuffer(part) ? part : Buffer.from(String(part), 'utf8');
      // A tag byte before each part: 0 for undefined, 1 for a value, so `undefined` never equals ''.
      this.frame(Buffer.from([1]));
      this.frame(bytes);
    }
    return this;
  }

  /** A list as its count then its items, so parts after the list cannot slide into it. */
  addList(items: readonly KeyPart[]): this {
    this.add(items.length);
    return this.add(...items);
  }

  /** The key; the builder cannot be used after this. */
  key(): CacheKey {
    return this.hash.digest('hex');
  }

  private frame(bytes: Buffer): void {
    const length = Buffer.alloc(8);
    length.writeBigUInt64BE(BigInt(bytes.length));
    this.hash.update(length).update(bytes);
  }
}

/** The key every chain in a stage starts from. */
export function stageBaseKey(base: string, options: { platform?: string } = {}): CacheKey {
  return new CacheKeyBuilder('stage-base').add(base, options.platform).key();
}

/** The key after `stepKey` in a chain (e.g. a RUN after a COPY depends on both). */
export function chainCacheKey(parentKey: CacheKey, stepKey: CacheKey): CacheKey {
  return new CacheKeyBuilder('chain').add(assertCacheKey(parentKey), assertCacheKey(stepKey)).key();
}

export interface CopyKeyInput {
  /** The instruction after variable expansion (ARG values are part of it). */
  instruction: string;
  workdir: string;
  /** As given or resolved; the numeric ids are also in the entries hash. */
  chown?: string;
  chmod?: string;
  /** `hashEntries` of the layer's entries: relative paths, modes, ids and content hashes (no mtimes, no host paths). */
  entriesHash: string;
  /** What changes the layer bytes but not its entries, e.g. `gzip:6` or `zstd:3:reproducible`. */
  layerFormat?: string;
}

/**
 * The key of a COPY/ADD layer. It does not chain: a COPY layer's bytes depend only on its own inputs,
 * so it can hit even when a layer below it changed.
 */
export function copyCacheKey(input: CopyKeyInput): CacheKey {
  return new CacheKeyBuilder('copy')
    .add(input.instruction, input.workdir, input.chown, input.chmod, input.entriesHash, input.layerFormat)
    .key();
}

export interface RunKeyInput {
  /** The key of the state the command runs on: `stageBaseKey`, chained with each earlier layer's key. */
  parentKey: CacheKey;
  /** The instruction after variable expansion, heredoc bodies included. */
  instruction: string;
  /** `KEY=VALUE` of only what the command can see (ENV, and ARGs in scope); sorted here. */
  env: readonly string[];
  user: string;
  workdir: string;
  /** The SHELL in effect, e.g. `['/bin/sh', '-c']`. */
  shell: readonly string[];
  /** Identities of each mount: type, target, id, from — never secret values. Order as given. */
  mounts: readonly string[];
  network: string;
  layerFormat?: string;
}

/** The key of a RUN layer. It chains: a RUN's result depends on everything before it. */
export function runCacheKey(input: RunKeyInput): CacheKey {
  return new CacheKeyBuilder('run')
    .add(assertCacheKey(input.parentKey), input.instruction)
    .addList([...input.env].sort())
    .add(input.user, input.workdir)
    .addList(input.shell)
    .addList(input.mounts)
    .add(input.network, input.layerFormat)
    .key();
}
