import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';

export type SandboxIsolation = 'chroot' | 'userns';

export interface IsolationReport {
  /** What `isolation: 'auto'` resolves to on this machine. */
  isolation: SandboxIsolation;
  /** Whether each kind can run here. */
  available: Record<SandboxIsolation, boolean>;
  /** One line for the build log. */
  reason: string;
  /** Whether overlay mounts can be made inside the sandbox (root, or a user namespace on Linux 5.11+). */
  overlayAllowed: boolean;
  /** Host tools the sandbox needs that are missing (util-linux `unshare`, `setpriv`, `pivot_root`). */
  missingTools: string[];
}

const execFileAsync = promisify(execFile);
const REQUIRED_TOOLS = ['unshare', 'setpriv', 'pivot_root', 'mount'];
const TOOL_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

async function hasTool(name: string): Promise<boolean> {
  try {
    await execFileAsync('/bin/sh', ['-c', 'command -v "$1"', 'sh', name], { env: { PATH: TOOL_PATH } });
    return true;
  } catch {
    return false;
  }
}

async function readNumber(file: string): Promise<number | undefined> {
  try {
    return Number((await readFile(file, 'utf8')).trim());
  } catch {
    return undefined;
  }
}

function kernelAtLeast(release: string, major: number, minor: number): boolean {
  const match = /^(\d+)\.(\d+)/.exec(release);
  if (!match) return false;
  const [maj, min] = [Number(match[1]), Number(match[2])];
  return maj > major || (maj === major && min >= minor);
}

/** Reports which isolation `auto` picks and why, for the build log. */
export async function detectIsolation(): Promise<IsolationReport> {
  const missingTools: string[] = [];
  for (const tool of REQUIRED_TOOLS) if (!(await hasTool(tool))) missingTools.push(tool);
  const unprivilegedClone = await readNumber('/proc/sys/kernel/unprivileged_userns_clone');
  const maxNamespaces = await readNumber('/proc/sys/user/max_user_namespaces');
  const usernsEnabled = process.platform === 'linux' && unprivilegedClone !== 0 && maxNamespaces !== 0;
  const root = isRoot();
  const toolsOk = missingTools.length === 0;
  const available = { chroot: toolsOk && root && process.platform === 'linux', userns: toolsOk && usernsEnabled };
  const release = (await readFile('/proc/sys/kernel/osrelease', 'utf8').catch(() => '')).trim();
  const isolation: SandboxIsolation = root ? 'chroot' : 'userns';
  let reason: string;
  if (!toolsOk) reason = `sandbox tools missing: ${missingTools.join(', ')} (install util-linux)`;
  else if (root) reason = 'running as root: mount, pid, ipc and uts namespaces with pivot_root into the rootfs';
  else if (usernsEnabled) reason = 'not root: a user namespace (root inside mapped to this user) with mount, pid, ipc and uts namespaces';
  else reason = 'not root and user namespaces are disabled (kernel.unprivileged_userns_clone or user.max_user_namespaces)';
  const overlayAllowed = toolsOk && (root || (usernsEnabled && kernelAtLeast(release, 5, 11)));
  return { isolation, available, reason, overlayAllowed, missingTools };
}
