import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * sha256 over length-prefixed parts, so that no two different part lists hash alike
 * (`["ab","c"]` and `["a","bc"]` differ). Hex, 64 digits.
 */
export function hashParts(parts: readonly string[]): string {
  const hash = createHash('sha256');
  for (const part of parts) {
    const bytes = Buffer.from(part, 'utf8');
    const length = Buffer.alloc(8);
    length.writeBigUInt64BE(BigInt(bytes.length));
    hash.update(length).update(bytes);
  }
  return hash.digest('hex');
}

/** Version of this plugin: part of every image input hash, so a new Tessera never reuses an older build. */
export function tesseraVersion(): string {
  // dist/executors/image → package root (the same depth from src/ under vitest).
  const manifest = JSON.parse(readFileSync(join(__dirname, '../../../package.json'), 'utf8')) as { version: string };
  return manifest.version;
}

/** Everything an image's bytes depend on. Equal inputs give an equal image, so the build can be skipped. */
export interface ImageInputs {
  mode: 'layered' | 'dockerfile';
  /** Resolved base digests by reference, e.g. `{ "reg/node:22": "sha256:…" }`. */
  baseDigests: Record<string, string>;
  /**
   * Target platform, or platforms joined with `,` in the target's order (one index). A multi-platform
   * base's digest is its index's, which fixes each platform's manifest digest.
   */
  platform: string;
  /** Layered: each layer's input hash, in order. */
  layerHashes?: string[];
  /** Layered: the config changes (workdir, entrypoint, cmd, env, …). */
  config?: unknown;
  /** Dockerfile mode: the Dockerfile text, build args, and the hash of the sources it can copy. */
  dockerfileText?: string;
  buildArgs?: Record<string, string>;
  /** Dockerfile mode: the stage built (`target`), when not the last. */
  target?: string;
  sourcesHash?: string;
  /** Layer timestamps. */
  sourceDateEpoch: string;
  /** False: config and history dated at build time (hashed only then, so reproducible hashes stay as they were). */
  reproducible?: boolean;
}

/** The image input hash: the plugin version plus every input, framed. 64 hex digits. */
export function imageInputHash(inputs: ImageInputs): string {
  const sortedEntries = (record: Record<string, string> | undefined) =>
    Object.keys(record ?? {})
      .sort()
      .flatMap((key) => [key, record![key]]);
  return hashParts([
    'tessera-image-v1',
    tesseraVersion(),
    inputs.mode,
    inputs.platform,
    inputs.sourceDateEpoch,
    ...sortedEntries(inputs.baseDigests),
    'layers',
    ...(inputs.layerHashes ?? []),
    'config',
    JSON.stringify(inputs.config ?? null),
    'dockerfile',
    inputs.dockerfileText ?? '',
    ...sortedEntries(inputs.buildArgs),
    inputs.sourcesHash ?? '',
    ...(inputs.reproducible === false ? ['dated'] : []),
    ...(inputs.target ? ['target', inputs.target] : []),
  ]);
}
