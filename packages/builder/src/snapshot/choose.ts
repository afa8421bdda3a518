import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { ScanMode } from './scan';

export interface SnapshotterChoice {
  kind: 'overlay' | 'walk';
  /** For a walk: what it compares. */
  mode: ScanMode;
  /** One line for the build log. */
  reason: string;
}

const execFileAsync = promisify(execFile);

export async function hasGetfattr(): Promise<boolean> {
  try {
    await execFileAsync('getfattr', ['--version'], { env: { PATH: '/usr/local/bin:/usr/bin:/bin' } });
    return true;
  } catch {
    return false;
  }
}

/**
 * An overlay upper dir costs what the RUN changed; a walk costs the whole rootfs. Use the overlay
 * where mounts are allowed (and getfattr can read its opaque markers), else walk with the asked mode.
 */
export async function chooseSnapshotter(options: { mode: ScanMode; overlayAllowed: boolean; getfattrAvailable?: boolean }): Promise<SnapshotterChoice> {
  const { mode, overlayAllowed } = options;
  if (!overlayAllowed) return { kind: 'walk', mode, reason: `${mode} walk of the rootfs: overlay mounts are not allowed here` };
  const getfattr = options.getfattrAvailable ?? (await hasGetfattr());
  if (!getfattr) return { kind: 'walk', mode, reason: `${mode} walk of the rootfs: getfattr (package attr) is missing to read overlay opaque markers` };
  return { kind: 'overlay', mode, reason: 'overlay upper directory: the snapshot costs only what the RUN changed' };
}
