import { createReadStream, constants as fsConstants } from 'node:fs';
import { link, lstat, mkdir, open, symlink, unlink, utimes, chmod, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { extract } from 'tar-stream';
import { TesseraError } from '@tessera/oci';
import { cleanPath } from './glob';
import { detectArchive } from './add';

function hostileEntry(name: string, reason: string): TesseraError {
  return new TesseraError(`refusing tar context entry ${JSON.stringify(name)}: ${reason}`, 'UNSAFE_TAR_ENTRY');
}

/** The entry name as a clean relative path; names that leave the root are refused, never rewritten. */
function safeRelativePath(name: string): string {
  const relative = cleanPath(name.replace(/^\/+/, '') || '.');
  if (relative === '..' || relative.startsWith('../')) throw hostileEntry(name, 'it points outside the context');
  return relative;
}

/** Refuses to write through a symlink that an earlier entry planted inside the extraction root. */
async function assertNoSymlinkParents(root: string, relative: string, name: string): Promise<void> {
  const segments = relative.split('/').slice(0, -1);
  let current = root;
  for (const segment of segments) {
    current = join(current, segment);
    const stats = await lstat(current).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    if (!stats) return;
    if (stats.isSymbolicLink()) throw hostileEntry(name, `its parent ${segments.join('/')} is a symlink`);
    if (!stats.isDirectory()) throw hostileEntry(name, 'its parent is not a directory');
  }
}

async function removeExisting(path: string): Promise<void> {
  const stats = await lstat(path).catch(() => undefined);
  if (stats && !stats.isDirectory()) await unlink(path);
}

/**
 * Extracts a plain or gzip tar into `root` for use as a build context. Every entry stays inside `root`:
 * `..` names and writes through symlinks are refused, hardlinks must point inside, devices are skipped.
 * Ownership is not restored (COPY gives files to root or to `--chown`).
 */
export async function extractTarContext(tarPath: string, root: string): Promise<void> {
  const format = await detectArchive(tarPath);
  if (format !== 'gzip' && format !== 'tar') {
    throw new TesseraError(
      `tar context ${tarPath} is ${format ?? 'not a tar archive'}`,
      'UNSUPPORTED_CONTEXT',
      'use a plain or gzip-compressed tar',
    );
  }
  const directoryTimes: { path: string; mtime: Date }[] = [];
  const extractor = extract();
  const source = createReadStream(tarPath);
  const feeding = format === 'gzip' ? pipeline(source, createGunzip(), extractor) : pipeline(source, extractor);
  const consuming = (async () => {
    for await (const entry of extractor) {
      const { header } = entry;
      const relative = safeRelativePath(header.name);
      const target = join(root, relative);
      const mode = (header.mode ?? 0o644) & 0o7777;
      if (relative !== '.') await assertNoSymlinkParents(root, relative, header.name);
      switch (header.type) {
        case 'directory':
          await mkdir(target, { recursive: true });
          await chmod(target, mode | 0o700);
          if (header.mtime) directoryTimes.push({ path: target, mtime: header.mtime });
          break;
        case 'file':
        case 'contiguous-file': {
          await mkdir(join(target, '..'), { recursive: true });
          await removeExisting(target);
          const handle = await open(target, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW, mode);
          await pipeline(entry, handle.createWriteStream());
          await chmod(target, mode);
          if (header.mtime) await utimes(target, header.mtime, header.mtime);
          continue;
        }
        case 'symlink':
          await mkdir(join(target, '..'), { recursive: true });
          await removeExisting(target);
          await symlink(header.linkname ?? '', target);
          break;
        case 'link': {
          const linked = safeRelativePath(header.linkname ?? '');
          await assertNoSymlinkParents(root, linked, header.name);
          const linkedStats = await lstat(join(root, linked)).catch(() => undefined);
          if (!linkedStats?.isFile()) throw hostileEntry(header.name, 'hardlink target is not a regular file in the archive');
          await mkdir(join(target, '..'), { recursive: true });
          await removeExisting(target);
          await link(join(root, linked), target);
          break;
        }
        default:
          // Devices, fifos and PAX leftovers have no place in a build context.
          break;
      }
      entry.resume();
    }
  })();
  await Promise.all([feeding, consuming]).catch(async (error) => {
    source.destroy();
    extractor.destroy();
    throw error;
  });
  // Directory times last: writing their children would change them.
  for (const { path, mtime } of directoryTimes.reverse()) await utimes(path, mtime, mtime).catch(() => undefined);
}

export async function removeTree(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true });
}
