import type { Stats } from 'node:fs';
import { posix } from 'node:path';
import { TesseraError } from '@tessera/oci';
import type { LayerEntry } from '../layer/entry';
import { cleanPath } from './glob';
import type { ContextEntryType, ResolvedSource } from './sources';

export interface CopyPlanOptions {
  /** The destination after variable expansion; relative means relative to `workdir`. A trailing `/` means a directory. */
  dest: string;
  /** The stage's WORKDIR (absolute image path); `/` when unset. */
  workdir: string;
  /** `--chown`, already resolved to ids. Applies to everything copied and to the directories COPY creates. */
  chown?: { uid: number; gid: number };
  /** `--chmod` as a number (e.g. 0o755). Applies to copied files and directories, not to symlinks. */
  chmod?: number;
  /** `--parents`: keep each source's relative parent path under `dest`. */
  parents?: boolean;
  /** Whether an image path is already a directory in the image below; existing directories get no entry. */
  destIsDirectoryInImage?: (imagePath: string) => boolean | Promise<boolean>;
}

/** Absolute, clean image path of the destination. */
function destinationPath(dest: string, workdir: string): string {
  const joined = posix.isAbsolute(dest) ? dest : posix.join(workdir || '/', dest);
  return cleanPath(posix.join('/', joined));
}

/** `/app/x` → `app/x`, the layer entry form. */
const entryPath = (imagePath: string) => (imagePath[0] === '/' && imagePath[1] !== '/' ? imagePath.slice(1) : imagePath.replace(/^\/+/, ''));

function namesADirectory(dest: string): boolean {
  return dest.endsWith('/') || dest === '.' || dest === '..' || dest.endsWith('/.') || dest.endsWith('/..');
}

class PlanBuilder {
  private readonly entries = new Map<string, LayerEntry>();
  private readonly directoryChecks = new Map<string, Promise<boolean>>();

  constructor(private readonly options: CopyPlanOptions) {}

  get owner(): { uid: number; gid: number } {
    return this.options.chown ?? { uid: 0, gid: 0 };
  }

  isDirectoryInImage(imagePath: string): Promise<boolean> {
    const check = this.options.destIsDirectoryInImage;
    if (!check) return Promise.resolve(false);
    let known = this.directoryChecks.get(imagePath);
    if (!known) {
      known = Promise.resolve(check(imagePath));
      this.directoryChecks.set(imagePath, known);
    }
    return known;
  }

  add(entry: LayerEntry): void {
    // A later source overrides an earlier one at the same path, as a later copy would on disk.
    if (this.entries.has(entry.path)) this.entries.delete(entry.path);
    this.entries.set(entry.path, entry);
  }

  /** Directories COPY creates for a target: mode 0755, owned by root or the `--chown` ids (BuildKit's MkdirAll). */
  async ensureParents(imagePath: string): Promise<void> {
    const missing: string[] = [];
    for (let dir = posix.dirname(imagePath); dir !== '/'; dir = posix.dirname(dir)) {
      if (this.entries.has(entryPath(dir))) break;
      if (await this.isDirectoryInImage(dir)) break;
      missing.unshift(dir);
    }
    for (const dir of missing) this.add({ path: entryPath(dir), type: 'directory', mode: 0o755, ...this.owner });
  }

  fromStats(imagePath: string, type: ContextEntryType, stats: Stats, extra?: Partial<LayerEntry>): LayerEntry {
    const { uid, gid } = this.owner;
    const entry: LayerEntry = {
      path: entryPath(imagePath),
      type,
      mode: type === 'symlink' ? 0o777 : (this.options.chmod ?? stats.mode & 0o7777),
      uid,
      gid,
      mtime: stats.mtime,
    };
    if (extra) Object.assign(entry, extra);
    if (type === 'file') entry.size = stats.size;
    if (type === 'char' || type === 'block') {
      entry.devmajor = Math.floor(stats.rdev / 256) & 0xfff;
      entry.devminor = (stats.rdev & 0xff) | ((stats.rdev >> 12) & 0xfff00);
    }
    return entry;
  }

  result(): LayerEntry[] {
    return [...this.entries.values()];
  }
}

function multipleSourcesError(): TesseraError {
  return new TesseraError(
    'When using COPY with more than one source file, the destination must be a directory and end with a /',
    'COPY_DEST_NOT_DIRECTORY',
  );
}

/**
 * Turns resolved sources into layer entries with Docker/BuildKit COPY semantics: a directory copies its
 * contents; a file goes to `dest` or, when `dest` is a directory, to `dest/<name>`; missing parents are
 * created. Hardlinked files in the context become independent regular files.
 */
export async function planCopy(sources: ResolvedSource[], options: CopyPlanOptions): Promise<LayerEntry[]> {
  const builder = new PlanBuilder(options);
  const dest = destinationPath(options.dest, options.workdir);
  const destIsDirectory = options.parents || namesADirectory(options.dest) || (await builder.isDirectoryInImage(dest));
  if (sources.length > 1 && !destIsDirectory) throw multipleSourcesError();

  for (const source of sources) {
    const base = options.parents ? posix.join(dest, source.type === 'directory' ? source.parentsPath : posix.dirname(source.parentsPath)) : dest;
    if (source.type === 'directory') {
      const target = cleanPath(base);
      if (target !== '/') {
        await builder.ensureParents(target);
        if (!(await builder.isDirectoryInImage(target))) builder.add(builder.fromStats(target, 'directory', source.stats, {}));
      }
      // Walked paths are clean and relative, so plain concatenation is the join.
      const under = target === '/' ? '/' : `${target}/`;
      for (const file of source.contents ?? []) {
        const entry = builder.fromStats(under + file.relativePath, file.type, file.stats);
        if (file.type === 'symlink') entry.linkTarget = file.linkTarget;
        else if (file.type === 'file') {
          entry.source = file.absolutePath;
          entry.sourceStats = file.stats;
        }
        builder.add(entry);
      }
      continue;
    }
    const name = posix.basename(source.relativePath);
    const target = options.parents || destIsDirectory ? posix.join(base, name) : dest;
    if (target === '/') throw new TesseraError(`COPY failed: cannot copy ${source.source} onto /`, 'COPY_DEST_NOT_DIRECTORY');
    await builder.ensureParents(target);
    const extra: Partial<LayerEntry> =
      source.type === 'symlink' ? { linkTarget: source.linkTarget } : source.type === 'file' ? { source: source.absolutePath } : {};
    builder.add(builder.fromStats(target, source.type, source.stats, extra));
  }
  return builder.result();
}

export interface HeredocSource {
  /** The heredoc word (`EOF` in `COPY <<EOF /dest/`), used as the file name when `dest` is a directory. */
  name: string;
  content: string | Buffer;
}

/** `COPY <<EOF /path`: each heredoc becomes an in-memory file (mode 0644 unless `--chmod`). */
export async function planHeredocCopy(heredocs: HeredocSource[], options: Omit<CopyPlanOptions, 'parents'>): Promise<LayerEntry[]> {
  const builder = new PlanBuilder(options);
  const dest = destinationPath(options.dest, options.workdir);
  const destIsDirectory = namesADirectory(options.dest) || (await builder.isDirectoryInImage(dest));
  if (heredocs.length > 1 && !destIsDirectory) throw multipleSourcesError();
  for (const heredoc of heredocs) {
    const target = destIsDirectory ? posix.join(dest, heredoc.name) : dest;
    await builder.ensureParents(target);
    const content = Buffer.isBuffer(heredoc.content) ? heredoc.content : Buffer.from(heredoc.content, 'utf8');
    builder.add({ path: entryPath(target), type: 'file', mode: options.chmod ?? 0o644, ...builder.owner, size: content.length, content });
  }
  return builder.result();
}
