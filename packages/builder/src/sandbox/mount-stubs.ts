import { execFile } from 'node:child_process';
import { lstat, mkdir, rmdir, stat, unlink, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import * as path from 'node:path';
import { resolveInRoot } from '../layer/secure-path';

/**
 * A mount needs an existing target inside the rootfs. Missing targets are created as empty stubs before
 * the RUN and removed afterwards, and the parent directory's times are put back, so that the mounts
 * leave no trace in the rootfs and no change in the snapshot.
 */
export interface MountTarget {
  /** Host path of the target inside the rootfs, symlinks resolved within the rootfs. */
  hostPath: string;
  /** The same target as an absolute path inside the image (what the sandbox mounts over). */
  imagePath: string;
}

interface CreatedStub {
  hostPath: string;
  isDirectory: boolean;
  parent: string;
  parentMtimeBefore: bigint;
  parentMtimeAfterCreate: bigint;
}

export class MountStubs {
  private readonly created: CreatedStub[] = [];

  constructor(private readonly rootfs: string) {}

  /** Resolves `imagePath` inside the rootfs (a symlink can't lead the mount out of it) and creates it if missing. */
  async prepare(imagePath: string, kind: 'file' | 'directory'): Promise<MountTarget> {
    const hostPath = await resolveInRoot(this.rootfs, imagePath, { followFinal: true });
    const relative = path.relative(this.rootfs, hostPath);
    const missing: string[] = [];
    for (let current = hostPath; current !== this.rootfs; current = path.dirname(current)) {
      if (await exists(current)) break;
      missing.unshift(current);
    }
    for (const [index, stubPath] of missing.entries()) {
      const isDirectory = index < missing.length - 1 || kind === 'directory';
      const parent = path.dirname(stubPath);
      const before = await stat(parent, { bigint: true });
      if (isDirectory) await mkdir(stubPath, { mode: 0o755 });
      else await writeFile(stubPath, '', { mode: 0o644, flag: 'wx' });
      const after = await stat(parent, { bigint: true });
      this.created.push({
        hostPath: stubPath,
        isDirectory,
        parent,
        parentMtimeBefore: before.mtimeNs,
        parentMtimeAfterCreate: after.mtimeNs,
      });
    }
    return { hostPath, imagePath: `/${relative.split(path.sep).join('/')}` };
  }

  /** Removes the stubs (deepest first) if they are still empty, restoring the parents' times unless the RUN changed them too. */
  async cleanup(): Promise<void> {
    for (const stub of this.created.reverse()) {
      const parentBefore = await stat(stub.parent, { bigint: true }).catch(() => undefined);
      try {
        const current = await lstat(stub.hostPath);
        if (stub.isDirectory) {
          if (!current.isDirectory()) continue;
          await rmdir(stub.hostPath);
        } else {
          if (!current.isFile() || current.size !== 0) continue;
          await unlink(stub.hostPath);
        }
      } catch {
        continue; // gone or not empty: the RUN made it its own
      }
      if (parentBefore && parentBefore.mtimeNs === stub.parentMtimeAfterCreate) {
        await setMtimeNs(stub.parent, stub.parentMtimeBefore);
      }
    }
    this.created.length = 0;
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await lstat(file);
    return true;
  } catch {
    return false;
  }
}

const execFileAsync = promisify(execFile);

/** fs.utimes takes seconds as a double and loses the nanoseconds a stat-based snapshot compares; touch keeps them. */
async function setMtimeNs(file: string, mtimeNs: bigint): Promise<void> {
  const seconds = mtimeNs / 1_000_000_000n;
  const nanos = (mtimeNs % 1_000_000_000n).toString().padStart(9, '0');
  await execFileAsync('touch', ['--no-dereference', '-m', '-d', `@${seconds}.${nanos}`, '--', file], { env: { PATH: '/usr/bin:/bin' } });
}
