import { execFile } from 'node:child_process';
import { chmod, lchown, lstat, mkdir, mkdtemp, rename, rm, utimes } from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { TesseraError } from '@tessera/oci';
import type { LayerEntry } from '../layer/entry';
import type { SandboxOverlay } from '../sandbox/sandbox';
import { buildEntries } from './entries';
import { scanTree, statPath, toRelativeImagePath, type FileState } from './scan';

const execFileAsync = promisify(execFile);
const TOOL_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Upper, work and mount directories for one RUN over `rootfs`, made next to it so the upper dir can be renamed into it. */
export interface OverlayWorkspace extends SandboxOverlay {
  rootfs: string;
  baseDir: string;
}

export async function prepareOverlay(rootfs: string, options: { parentDir?: string } = {}): Promise<OverlayWorkspace> {
  const absolute = path.resolve(rootfs);
  const parent = options.parentDir ?? path.dirname(absolute);
  const baseDir = await mkdtemp(path.join(parent, `.${path.basename(absolute)}-overlay-`));
  const workspace = { rootfs: absolute, baseDir, upperDir: path.join(baseDir, 'upper'), workDir: path.join(baseDir, 'work'), mergedDir: path.join(baseDir, 'merged') };
  await Promise.all([mkdir(workspace.upperDir), mkdir(workspace.workDir), mkdir(workspace.mergedDir)]);
  return workspace;
}

export async function discardOverlay(workspace: OverlayWorkspace): Promise<void> {
  await rm(workspace.baseDir, { recursive: true, force: true });
}

/**
 * Reads the RUN's changes from the overlay upper directory as layer entries (whiteout devices become
 * `.wh.NAME`, opaque directories `.wh..wh..opq`), then moves them into the rootfs so the next RUN and
 * COPY see a plain directory again (no stacking of lower dirs). File entries' `source` points into the
 * rootfs afterwards. The workspace is removed.
 */
export async function finishOverlay(workspace: OverlayWorkspace, options: { ignore?: string[] } = {}): Promise<LayerEntry[]> {
  try {
    const upper = await scanTree(workspace.upperDir, { mode: 'redo', ignore: options.ignore });
    const lower = new Map<string, FileState | undefined>();
    const lowerState = async (relative: string) => {
      if (!lower.has(relative)) lower.set(relative, await statPath(path.join(workspace.rootfs, relative), 'redo'));
      return lower.get(relative);
    };
    const relativePaths = [...upper.entries.keys()].sort();
    const opaqueCandidates: string[] = [];
    for (const relative of relativePaths) {
      if (upper.entries.get(relative)!.type === 'directory' && (await lowerState(relative))?.type === 'directory') opaqueCandidates.push(relative);
    }
    const opaque = await readOpaqueDirectories(workspace.upperDir, opaqueCandidates);

    const changed = new Set<string>();
    const deleted = new Set<string>();
    const replaced = new Set<string>(); // directories whose lower content is gone: new, retyped or opaque
    for (const relative of relativePaths) {
      const state = upper.entries.get(relative)!;
      const underReplaced = hasAncestorIn(relative, replaced);
      if (isWhiteoutDevice(state)) {
        if (!underReplaced && (await lowerState(relative))) deleted.add(relative);
        continue;
      }
      if (state.type !== 'directory') {
        changed.add(relative);
        continue;
      }
      const was = underReplaced ? undefined : await lowerState(relative);
      if (!was || was.type !== 'directory') {
        changed.add(relative);
        replaced.add(relative);
      } else if (opaque.has(relative)) {
        replaced.add(relative);
      } else if (was.mode !== state.mode || was.uid !== state.uid || was.gid !== state.gid || was.mtimeNs !== state.mtimeNs) {
        changed.add(relative);
      }
    }
    const opaqueDirs = new Set([...opaque].filter((dir) => replaced.has(dir)));
    const entries = buildEntries({ root: workspace.rootfs, current: (relative) => upper.entries.get(relative), changed, deleted, opaque: opaqueDirs });
    await applyUpper(workspace, relativePaths, upper.entries, opaqueDirs);
    return entries;
  } finally {
    await discardOverlay(workspace);
  }
}

/** Runs `run` with a fresh overlay over `rootfs`; on success its changes become layer entries and move into the rootfs, on failure they are dropped. */
export async function withOverlay<T>(
  rootfs: string,
  run: (overlay: SandboxOverlay) => Promise<T>,
  options: { ignore?: string[]; parentDir?: string } = {},
): Promise<{ result: T; entries: LayerEntry[] }> {
  const workspace = await prepareOverlay(rootfs, options);
  let result: T;
  try {
    result = await run(workspace);
  } catch (error) {
    await discardOverlay(workspace);
    throw error;
  }
  return { result, entries: await finishOverlay(workspace, options) };
}

function isWhiteoutDevice(state: FileState): boolean {
  return state.type === 'char' && state.devmajor === 0 && state.devminor === 0;
}

function hasAncestorIn(relative: string, dirs: Set<string>): boolean {
  for (let parent = path.posix.dirname(relative); parent !== '.'; parent = path.posix.dirname(parent)) if (dirs.has(parent)) return true;
  return false;
}

/** Opaque directories among `candidates`: overlayfs marks them with `trusted.overlay.opaque=y` (`user.` in a user namespace). */
export async function readOpaqueDirectories(upperDir: string, candidates: string[]): Promise<Set<string>> {
  const opaque = new Set<string>();
  const chunkSize = 200;
  for (let start = 0; start < candidates.length; start += chunkSize) {
    const chunk = candidates.slice(start, start + chunkSize);
    let output: string;
    try {
      ({ stdout: output } = await execFileAsync(
        'getfattr',
        ['--absolute-names', '--no-dereference', '-d', '-m', '^(trusted|user)\\.overlay\\.opaque$', '--', ...chunk.map((relative) => path.join(upperDir, relative))],
        { env: { PATH: TOOL_PATH }, maxBuffer: 64 * 1024 * 1024 },
      ));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new TesseraError('overlay snapshot: getfattr is not installed', 'SNAPSHOT_UNAVAILABLE', 'install the Debian package "attr", or use a walk snapshot');
      }
      throw error;
    }
    let file: string | undefined;
    for (const line of output.split('\n')) {
      if (line.startsWith('# file: ')) file = unescapeGetfattr(line.slice('# file: '.length));
      else if (file && /^(trusted|user)\.overlay\.opaque="y"$/.test(line)) opaque.add(toRelativeImagePath(path.relative(upperDir, file)));
    }
  }
  return opaque;
}

/** getfattr writes special characters in names as `\NNN` octal and a backslash as `\\`. */
function unescapeGetfattr(value: string): string {
  const bytes: number[] = [];
  for (let index = 0; index < value.length; index++) {
    if (value[index] === '\\' && /^[0-7]{3}$/.test(value.slice(index + 1, index + 4))) {
      bytes.push(parseInt(value.slice(index + 1, index + 4), 8));
      index += 3;
    } else if (value[index] === '\\' && value[index + 1] === '\\') {
      bytes.push(0x5c);
      index += 1;
    } else {
      bytes.push(...Buffer.from(value[index]!, 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** Applies the upper dir to the rootfs: whiteouts delete, opaque dirs are emptied, everything else is renamed in. */
async function applyUpper(workspace: OverlayWorkspace, sortedPaths: string[], upper: Map<string, FileState>, opaque: Set<string>): Promise<void> {
  const directories: string[] = [];
  for (const relative of sortedPaths) {
    const state = upper.get(relative)!;
    const target = path.join(workspace.rootfs, relative);
    if (isWhiteoutDevice(state)) {
      await rm(target, { recursive: true, force: true });
      continue;
    }
    const existing = await lstat(target).catch(() => undefined);
    if (state.type === 'directory') {
      if (existing && (!existing.isDirectory() || opaque.has(relative))) await rm(target, { recursive: true, force: true });
      if (!existing || !existing.isDirectory() || opaque.has(relative)) await mkdir(target);
      directories.push(relative);
      continue;
    }
    if (existing) await rm(target, { recursive: true, force: true });
    await rename(path.join(workspace.upperDir, relative), target);
  }
  // Directory metadata last (deepest first), after their content stopped changing their mtime.
  for (const relative of directories.reverse()) {
    const state = upper.get(relative)!;
    const target = path.join(workspace.rootfs, relative);
    await lchown(target, state.uid, state.gid);
    await chmod(target, state.mode);
    const seconds = Number(state.mtimeNs / 1000n) / 1e6;
    await utimes(target, seconds, seconds);
  }
}
