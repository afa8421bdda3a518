import { createReadStream } from 'node:fs';
import { mkdtemp, realpath, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { TesseraError } from '@tessera/oci';
import { extractLayer } from '../layer/index';

/** A build context as a real directory on disk. */
export interface BuildContext {
  /** Real (symlink-free) absolute path of the context directory, after `subPath`. */
  root: string;
  /** What the user gave, for messages (`dir:///src`, `tar://ctx.tgz`). */
  description: string;
  /** Removes what opening created (the extracted tar); a no-op for directories. */
  close(): Promise<void>;
  /** Notes from extraction, e.g. tar entries confined to the context. */
  warnings: string[];
}

export interface OpenBuildContextOptions {
  /** `--context-sub-path`: a directory inside the context to use as its root. */
  subPath?: string;
}

const UNSUPPORTED_SCHEMES: { pattern: RegExp; what: string }[] = [
  { pattern: /^gs:\/\//i, what: 'Google Cloud Storage' },
  { pattern: /^s3:\/\//i, what: 'S3' },
  { pattern: /^az:\/\//i, what: 'Azure Blob Storage' },
  { pattern: /^https:\/\/[^/]*\.blob\.core\.windows\.net/i, what: 'Azure Blob Storage' },
  { pattern: /^git:\/\//i, what: 'git' },
  { pattern: /^https?:\/\//i, what: 'remote' },
];

export function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

async function assertDirectory(path: string, description: string): Promise<void> {
  const stats = await stat(path).catch(() => undefined);
  if (!stats?.isDirectory()) {
    throw new TesseraError(`build context ${description} is not a directory`, 'CONTEXT_NOT_FOUND');
  }
}

async function applySubPath(root: string, subPath: string | undefined, description: string): Promise<string> {
  if (!subPath) return root;
  const candidate = resolve(root, subPath.replace(/^\/+/, ''));
  await assertDirectory(candidate, `${description} (sub-path ${subPath})`);
  const real = await realpath(candidate);
  if (!isInside(root, real)) {
    throw new TesseraError(`--context-sub-path ${JSON.stringify(subPath)} leaves the build context`, 'CONTEXT_OUTSIDE');
  }
  return real;
}

/**
 * Opens a build context: a directory (`PATH` or `dir://PATH`) or a tar (`tar://FILE`, plain or gzip),
 * which is extracted into a private temporary directory (gzip, zstd, bzip2 and xz also accepted). Cloud and remote schemes are refused.
 */
export async function openBuildContext(spec: string, options: OpenBuildContextOptions = {}): Promise<BuildContext> {
  for (const { pattern, what } of UNSUPPORTED_SCHEMES) {
    if (pattern.test(spec)) {
      throw new TesseraError(
        `${what} build contexts (${spec.split('://')[0]}://) are not supported`,
        'UNSUPPORTED_CONTEXT',
        'download or clone the context first, then pass a directory or tar://FILE',
      );
    }
  }
  if (spec.startsWith('tar://')) {
    const file = resolve(spec.slice('tar://'.length));
    const fileStats = await stat(file).catch(() => undefined);
    if (!fileStats?.isFile()) throw new TesseraError(`tar context ${file} does not exist`, 'CONTEXT_NOT_FOUND');
    const temporary = await realpath(await mkdtemp(join(tmpdir(), 'tessera-context-')));
    const removeTemporary = () => rm(temporary, { recursive: true, force: true });
    try {
      // The layer extractor confines every entry (`..`, absolute names, symlinked parents) to the root.
      const extracted = await extractLayer(createReadStream(file), temporary, {
        applyWhiteouts: false,
        privileged: false,
        preserveOwnership: false,
      });
      const root = await applySubPath(temporary, options.subPath, spec);
      return { root, description: spec, close: removeTemporary, warnings: extracted.warnings };
    } catch (error) {
      await removeTemporary();
      throw error;
    }
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(spec) && !spec.startsWith('dir://')) {
    throw new TesseraError(`unknown build context scheme in ${JSON.stringify(spec)}`, 'UNSUPPORTED_CONTEXT', 'use a directory, dir://PATH or tar://FILE');
  }
  const directory = resolve(spec.startsWith('dir://') ? spec.slice('dir://'.length) : spec);
  await assertDirectory(directory, spec);
  const root = await applySubPath(await realpath(directory), options.subPath, spec);
  return { root, description: spec, close: async () => undefined, warnings: [] };
}
