import { spawn } from 'node:child_process';
import { constants as fsConstants, type Stats } from 'node:fs';
import { chmod, lchown, link, lstat, lutimes, mkdir, open, readdir, realpath, rm, symlink, utimes } from 'node:fs/promises';
import * as path from 'node:path';
import { Transform, pipeline, type Readable, type TransformCallback } from 'node:stream';
import { TesseraError } from '@tessera/oci';
import { decompressStream } from './compression';
import { OPAQUE_WHITEOUT, WHITEOUT_PREFIX } from './entry';
import { forEachTarEntry, type TarEntryHeader } from './reader';
import { confineArchivePath, resolveInRoot } from './secure-path';

export interface ExtractLayerOptions {
  /** OCI layer semantics: `.wh.x` deletes x from lower layers, `.wh..wh..opq` hides the directory's lower content. Default true. */
  applyWhiteouts?: boolean;
  /** Upper bound on the uncompressed tar bytes (decompression-bomb protection). */
  maxBytes?: number;
  /** Create device nodes and keep setuid/setgid bits. Default: the process runs as root. */
  privileged?: boolean;
  /** Apply the archive's uid/gid. Default: `privileged`. */
  preserveOwnership?: boolean;
  onWarning?: (message: string) => void;
}

export interface ExtractStats {
  /** Tar entries read (including skipped ones and whiteouts). */
  entries: number;
  /** Regular files written. */
  files: number;
  /** Content bytes written to regular files. */
  bytes: number;
  warnings: string[];
}

class ByteLimit extends Transform {
  private seen = 0;
  constructor(private readonly limit: number) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.limit) {
      done(new TesseraError(`layer exceeds the limit of ${this.limit} uncompressed bytes; refusing to extract further (decompression bomb?)`, 'LAYER_TOO_LARGE'));
      return;
    }
    done(null, chunk);
  }
}

async function lstatOrUndefined(target: string): Promise<Stats | undefined> {
  try {
    return await lstat(target);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

function run(program: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`${program} failed (exit ${code}): ${stderr.trim()}`))));
  });
}

const DEVICE_TYPES = new Set(['character-device', 'block-device']);

/**
 * Extracts a layer (gzip, zstd, bzip2, xz or plain tar) into `root`, never writing outside it.
 *
 * Paths: absolute names and `..` are confined to the root (as containerd and BuildKit do) with a
 * warning. Parent directories are resolved component by component with every symlink interpreted
 * as if `root` were `/` (see `resolveInRoot`); the final component is never followed: an existing
 * symlink there is replaced, not written through. Hardlink targets resolve the same way.
 */
export async function extractLayer(stream: Readable, root: string, options: ExtractLayerOptions = {}): Promise<ExtractStats> {
  const rootPath = await realpath(root);
  const privileged = options.privileged ?? process.getuid?.() === 0;
  const preserveOwnership = options.preserveOwnership ?? privileged;
  const applyWhiteouts = options.applyWhiteouts ?? true;
  const stats: ExtractStats = { entries: 0, files: 0, bytes: 0, warnings: [] };
  const warn = (message: string) => {
    stats.warnings.push(message);
    options.onWarning?.(message);
  };
  /** Host paths this layer created: whiteouts only hide lower-layer content. */
  const created = new Set<string>();
  /** Directory modes and mtimes are set at the end, so adding children neither fails nor bumps them. */
  const directoryMetadata = new Map<string, { mode: number; mtime: Date }>();
  let xattrWarned = false;

  const modeFor = (header: TarEntryHeader): number => {
    let mode = header.mode & 0o7777;
    if (!privileged && mode & 0o6000) {
      warn(`${header.name}: setuid/setgid bits stripped (not running privileged)`);
      mode &= ~0o6000;
    }
    return mode;
  };

  const ownAndTime = async (target: string, header: TarEntryHeader, mode: number | undefined) => {
    if (preserveOwnership) await lchown(target, header.uid, header.gid);
    // chmod after chown: chown clears setuid/setgid bits.
    if (mode !== undefined) await chmod(target, mode);
    await lutimes(target, header.mtime, header.mtime);
  };

  const removeLowerContent = async (directory: string): Promise<void> => {
    let names: string[];
    try {
      names = await readdir(directory);
    } catch (error) {
      if (['ENOENT', 'ENOTDIR'].includes((error as NodeJS.ErrnoException).code ?? '')) return;
      throw error;
    }
    for (const name of names) {
      const child = path.join(directory, name);
      if (!created.has(child)) await rm(child, { recursive: true, force: true });
      else if ((await lstat(child)).isDirectory()) await removeLowerContent(child);
    }
  };

  const applyWhiteout = async (header: TarEntryHeader, parentRelative: string, base: string) => {
    const parent = await resolveInRoot(rootPath, parentRelative, { followFinal: true });
    if (base === OPAQUE_WHITEOUT) {
      await removeLowerContent(parent);
      return;
    }
    const hidden = base.slice(WHITEOUT_PREFIX.length);
    if (hidden === '' || hidden === '.' || hidden === '..') {
      warn(`${header.name}: whiteout of ${JSON.stringify(hidden)} ignored`);
      return;
    }
    const target = path.join(parent, hidden);
    if (created.has(target)) {
      warn(`${header.name}: whiteout of an entry of the same layer ignored`);
      return;
    }
    await rm(target, { recursive: true, force: true });
  };

  const writeFile = async (target: string, header: TarEntryHeader, content: Readable, mode: number) => {
    // O_EXCL|O_NOFOLLOW: the target was just cleared, so anything there now is refused rather than followed.
    const handle = await open(target, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW, 0o600);
    try {
      // Plain awaited writes: a FileHandle stream would keep the handle referenced and block close().
      for await (const chunk of content as AsyncIterable<Buffer>) {
        for (let offset = 0; offset < chunk.length; ) offset += (await handle.write(chunk, offset)).bytesWritten;
        stats.bytes += chunk.length;
      }
      if (preserveOwnership) await handle.chown(header.uid, header.gid);
      await handle.chmod(mode);
      await handle.utimes(header.mtime, header.mtime);
    } finally {
      await handle.close();
    }
    stats.files++;
  };

  const extractEntry = async (header: TarEntryHeader, content: Readable) => {
    stats.entries++;
    const name = header.name;
    if (name.includes('\0')) {
      warn(`entry with a NUL byte in its name skipped: ${JSON.stringify(name)}`);
      return;
    }
    if (name.includes('\uFFFD')) warn(`${JSON.stringify(name)}: name is not valid UTF-8; invalid bytes stored as U+FFFD`);
    const { relative, confined } = confineArchivePath(name);
    if (confined) warn(`${JSON.stringify(name)} points outside the root; confined to /${relative}`);
    if (relative === '') return; // the root itself: its metadata belongs to the caller
    if (header.pax && !xattrWarned && Object.keys(header.pax).some((key) => key.startsWith('SCHILY.xattr.'))) {
      xattrWarned = true;
      warn('extended attributes in the layer are not applied (no xattr support in Node.js)');
    }

    const parentRelative = path.posix.dirname(relative) === '.' ? '' : path.posix.dirname(relative);
    const base = path.posix.basename(relative);
    if (applyWhiteouts && base.startsWith(WHITEOUT_PREFIX)) {
      await applyWhiteout(header, parentRelative, base);
      return;
    }

    const parent = await resolveInRoot(rootPath, parentRelative, { followFinal: true, createDirectories: true });
    const target = path.join(parent, base);
    const existing = await lstatOrUndefined(target);
    const type = header.type;
    if (existing && !(type === 'directory' && existing.isDirectory())) {
      // Later entries win; rm never follows a symlink, it removes the link itself.
      await rm(target, { recursive: true, force: true });
    }

    switch (type) {
      case 'file':
      case 'contiguous-file':
        await writeFile(target, header, content, modeFor(header));
        break;
      case 'directory':
        if (!existing?.isDirectory()) await mkdir(target, { mode: 0o700 });
        if (preserveOwnership) await lchown(target, header.uid, header.gid);
        directoryMetadata.set(target, { mode: modeFor(header), mtime: header.mtime });
        break;
      case 'symlink':
        await symlink(header.linkname ?? '', target);
        await ownAndTime(target, header, undefined);
        break;
      case 'link': {
        const linked = confineArchivePath(header.linkname ?? '');
        if (linked.confined) warn(`${JSON.stringify(name)}: hardlink target ${JSON.stringify(header.linkname)} confined to /${linked.relative}`);
        const source = await resolveInRoot(rootPath, linked.relative, { followFinal: false });
        const sourceStats = await lstatOrUndefined(source);
        if (linked.relative === '' || !sourceStats || sourceStats.isDirectory()) {
          throw new TesseraError(
            `layer entry ${JSON.stringify(name)}: hardlink target ${JSON.stringify(header.linkname)} ${sourceStats?.isDirectory() || linked.relative === '' ? 'is a directory' : 'does not exist in the root'}`,
            'INVALID_HARDLINK',
          );
        }
        await link(source, target);
        break;
      }
      case 'character-device':
      case 'block-device':
      case 'fifo': {
        if (DEVICE_TYPES.has(type) && !privileged) {
          warn(`${JSON.stringify(name)}: device node skipped (not running privileged)`);
          return;
        }
        const mode = modeFor(header);
        if (type === 'fifo') await run('mkfifo', ['-m', '600', '--', target]);
        else await run('mknod', ['-m', '600', '--', target, type === 'character-device' ? 'c' : 'b', String(header.devmajor), String(header.devminor)]);
        await ownAndTime(target, header, mode);
        break;
      }
      default:
        warn(`${JSON.stringify(name)}: unsupported entry type ${type} skipped`);
        return;
    }
    for (let marked = target; marked !== rootPath && !created.has(marked); marked = path.dirname(marked)) created.add(marked);
  };

  const input = options.maxBytes === undefined ? decompressStream(stream) : pipeline(decompressStream(stream), new ByteLimit(options.maxBytes), () => undefined);
  await forEachTarEntry(input, async (header, content) => {
    try {
      await extractEntry(header, content);
    } catch (error) {
      if (error instanceof TesseraError) throw error;
      throw new TesseraError(`cannot extract layer entry ${JSON.stringify(header.name)}: ${(error as Error).message}`, 'EXTRACT_FAILED', undefined, { cause: error });
    }
  });

  // Deepest first, so a parent's mtime is set after its children are final.
  const directories = [...directoryMetadata.entries()].sort(([a], [b]) => b.length - a.length);
  for (const [directory, { mode, mtime }] of directories) {
    const current = await lstatOrUndefined(directory);
    if (!current?.isDirectory()) continue; // replaced or whited out later in the layer
    await chmod(directory, mode);
    await utimes(directory, mtime, mtime);
  }
  return stats;
}
