import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { BlobStore, isNotFound } from '@tessera/oci';
import { CACHE_ENTRIES_DIRECTORY, CACHE_ENTRY_SUFFIX, parseDirectoryCacheEntry, CACHE_TEMP_PREFIX } from './directory-cache';
import { isCacheKey } from './key';

export interface CacheVerifyOptions {
  /** Remove bad entries, corrupt blobs and stale temporary files. */
  repair?: boolean;
  /** A temporary file older than this belongs to a writer that died (default one hour). */
  staleAfterMs?: number;
}

export interface BadCacheEntry {
  /** The entry's file name under `entries/`. */
  file: string;
  reason: string;
}

export interface CacheVerifyReport {
  blobsChecked: number;
  corruptBlobs: string[];
  entriesChecked: number;
  badEntries: BadCacheEntry[];
  /** Paths of leftover temporary files (blobs and entries). */
  staleTemporaryFiles: string[];
  /** Whether the problems found were removed. */
  repaired: boolean;
  /** No problems remain: none were found, or all were repaired. */
  clean: boolean;
}

const DEFAULT_STALE_AFTER_MS = 60 * 60 * 1000;

/**
 * Checks a cache directory (as written by DirectoryLayerCache): every blob is re-hashed, and every entry must
 * parse and name a blob that is present, of the right size and not corrupt. Blobs no entry names are fine
 * (base layers kept by cachingImageSource share the store). Safe while builds run: writers only rename
 * whole files into place, and young temporary files are left alone.
 */
export async function verifyCacheDir(dir: string, options: CacheVerifyOptions = {}): Promise<CacheVerifyReport> {
  const repair = options.repair === true;
  const staleAfterMs = options.staleAfterMs ?? DEFAULT_STALE_AFTER_MS;
  const store = new BlobStore(dir);
  const blobs = await store.verify({ remove: repair, staleAfterMs });
  const corrupt = new Set(blobs.corrupt);
  const report: CacheVerifyReport = {
    blobsChecked: blobs.checked,
    corruptBlobs: blobs.corrupt,
    entriesChecked: 0,
    badEntries: [],
    staleTemporaryFiles: [...blobs.staleTemporaryFiles],
    repaired: repair,
    clean: false,
  };

  const entriesDir = join(dir, CACHE_ENTRIES_DIRECTORY);
  for (const name of await listDirectory(entriesDir)) {
    const path = join(entriesDir, name);
    if (name.startsWith(CACHE_TEMP_PREFIX)) {
      const s = await stat(path).catch(() => undefined);
      if (s && Date.now() - s.mtimeMs > staleAfterMs) {
        report.staleTemporaryFiles.push(path);
        if (repair) await rm(path, { force: true });
      }
      continue;
    }
    report.entriesChecked++;
    const reason = await entryProblem(name, path, store, corrupt);
    if (reason === undefined) continue;
    report.badEntries.push({ file: name, reason });
    if (repair) await rm(path, { force: true });
  }
  report.clean = repair || (report.corruptBlobs.length === 0 && report.badEntries.length === 0 && report.staleTemporaryFiles.length === 0);
  return report;
}

async function entryProblem(name: string, path: string, store: BlobStore, corrupt: ReadonlySet<string>): Promise<string | undefined> {
  if (!name.endsWith(CACHE_ENTRY_SUFFIX) || !isCacheKey(name.slice(0, -CACHE_ENTRY_SUFFIX.length))) return 'not named KEY.json';
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if (isNotFound(e)) return undefined; // replaced or removed by another process meanwhile
    return `unreadable: ${(e as Error).message}`;
  }
  try {
    const { descriptor } = parseDirectoryCacheEntry(text);
    if (corrupt.has(descriptor.digest)) return `blob ${descriptor.digest} is corrupt`;
    const size = await store.size(descriptor.digest);
    if (size === undefined) return `blob ${descriptor.digest} is missing`;
    if (size !== descriptor.size) return `blob ${descriptor.digest} has ${size} bytes, expected ${descriptor.size}`;
    return undefined;
  } catch (e) {
    return `corrupt: ${(e as Error).message}`;
  }
}

async function listDirectory(path: string): Promise<string[]> {
  try {
    return (await readdir(path)).sort();
  } catch (e) {
    if (isNotFound(e)) return [];
    throw e;
  }
}

/** The report as lines for a terminal. */
export function formatCacheVerifyReport(dir: string, report: CacheVerifyReport): string[] {
  const action = report.repaired ? ' (removed)' : '';
  const lines = [`${dir}: ${report.blobsChecked} blob${report.blobsChecked === 1 ? '' : 's'} and ${report.entriesChecked} entr${report.entriesChecked === 1 ? 'y' : 'ies'} checked`];
  for (const digest of report.corruptBlobs) lines.push(`corrupt blob ${digest}${action}`);
  for (const entry of report.badEntries) lines.push(`bad entry ${entry.file}: ${entry.reason}${action}`);
  for (const path of report.staleTemporaryFiles) lines.push(`stale temporary file ${path}${action}`);
  const problems = report.corruptBlobs.length + report.badEntries.length + report.staleTemporaryFiles.length;
  if (problems === 0) lines.push('cache is clean');
  else if (report.repaired) lines.push(`repaired ${problems} problem${problems === 1 ? '' : 's'}`);
  else lines.push(`${problems} problem${problems === 1 ? '' : 's'} found; run with --repair to remove them`);
  return lines;
}
