import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { access, mkdtemp, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { TesseraError } from '@tessera/oci';
import { isRoot, type SandboxIsolation } from './isolation';
import { LineSplitter } from './lines';
import { MountStubs } from './mount-stubs';
import { CHAIN_SCRIPT, SETUP_SCRIPT } from './scripts';

export type SandboxMount =
  | { type: 'bind'; source: string; target: string; readonly?: boolean }
  | { type: 'tmpfs'; target: string };

/** An overlay made inside the sandbox's mount namespace: `rootfs` is the lower layer, changes land in `upperDir`. */
export interface SandboxOverlay {
  upperDir: string;
  workDir: string;
  /** An empty host directory the overlay is mounted on (inside the namespace only). */
  mergedDir: string;
}

export interface SandboxOptions {
  rootfs: string;
  /** The command; the engine wraps the shell form itself (['/bin/sh', '-c', …]). */
  argv: string[];
  /** Exactly the environment of the command (`NAME=value`), nothing is inherited from the host. */
  env: string[];
  cwd: string;
  uid: number;
  gid: number;
  supplementaryGids?: number[];
  network: 'host' | 'none';
  isolation: 'auto' | SandboxIsolation;
  mounts?: SandboxMount[];
  /** Host file bind-mounted read-only on /etc/hosts (default: a generated localhost file). */
  hostsFile?: string;
  /** Host file bind-mounted read-only on /etc/resolv.conf (default: the host's /etc/resolv.conf). */
  resolvConf?: string;
  overlay?: SandboxOverlay;
  onStdout?: (line: string) => void;
  onStderr?: (line: string) => void;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface SandboxResult {
  /** The command's exit code; 128+N when it died of signal N (as a shell reports it). */
  exitCode: number;
  /** Set when the sandbox itself was killed (timeout). */
  signal?: string;
  timedOut?: boolean;
}

/** Image paths the sandbox mounts over: a walk snapshot must not descend into them. */
export function sandboxMountTargets(options: Pick<SandboxOptions, 'mounts'>): string[] {
  return ['/proc', '/dev', '/etc/hosts', '/etc/resolv.conf', ...(options.mounts ?? []).map((mount) => mount.target)];
}

const TOOL_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const DEFAULT_HOSTS = '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n';
/** Docker's default capability set, without MKNOD: there is no device cgroup to stop a block device being opened. */
const KEPT_CAPABILITIES = [
  'chown', 'dac_override', 'fowner', 'fsetid', 'kill', 'setgid', 'setuid', 'setpcap',
  'net_bind_service', 'net_raw', 'sys_chroot', 'setfcap', 'audit_write',
];
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function validate(options: SandboxOptions): void {
  const fail = (message: string) => {
    throw new TesseraError(`sandbox: ${message}`, 'SANDBOX_INVALID_OPTIONS');
  };
  if (options.argv.length === 0) fail('argv is empty');
  for (const entry of options.env) {
    const name = entry.slice(0, entry.indexOf('='));
    if (!entry.includes('=') || !ENV_NAME.test(name)) fail(`invalid environment entry ${JSON.stringify(entry.split('=')[0])}`);
  }
  if (!options.cwd.startsWith('/')) fail(`working directory must be absolute: ${JSON.stringify(options.cwd)}`);
  for (const id of [options.uid, options.gid, ...(options.supplementaryGids ?? [])]) {
    if (!Number.isInteger(id) || id < 0 || id > 0xfffffffe) fail(`invalid uid/gid ${id}`);
  }
  for (const mount of options.mounts ?? []) {
    if (!mount.target.startsWith('/')) fail(`mount target must be absolute: ${JSON.stringify(mount.target)}`);
  }
  if (options.overlay) {
    for (const dir of [options.rootfs, options.overlay.upperDir, options.overlay.workDir]) {
      if (/[,:\\\n]/.test(dir)) fail(`overlay paths cannot contain ',', ':', '\\' or newlines: ${JSON.stringify(dir)}`);
    }
  }
}

function resolveIsolation(requested: SandboxOptions['isolation']): SandboxIsolation {
  if (requested === 'auto') return isRoot() ? 'chroot' : 'userns';
  if (requested === 'chroot' && !isRoot()) {
    throw new TesseraError('sandbox: isolation "chroot" needs root', 'SANDBOX_UNAVAILABLE', 'use --isolation=userns or auto');
  }
  return requested;
}

/**
 * Runs `argv` with `rootfs` as `/` in fresh mount, pid, ipc and uts namespaces (and a network namespace
 * for `network: 'none'`), as `uid:gid`, with exactly `env`. Every mount lives in the private mount
 * namespace and disappears with it; killing the namespace's pid 1 kills every process of the RUN.
 */
export async function runInSandbox(options: SandboxOptions): Promise<SandboxResult> {
  validate(options);
  options.signal?.throwIfAborted();
  const isolation = resolveIsolation(options.isolation);
  const rootfs = path.resolve(options.rootfs);
  const stubs = new MountStubs(rootfs);
  const scratch = await mkdtemp(path.join(tmpdir(), 'tessera-sandbox-'));
  try {
    const mountArgs = await prepareMounts(options, rootfs, scratch, stubs);
    const overlayOptions = options.overlay
      ? [
          `lowerdir=${rootfs}`,
          `upperdir=${options.overlay.upperDir}`,
          `workdir=${options.overlay.workDir}`,
          // Plain copy-ups only: a snapshot reads whole files and whole directories from the upper dir.
          'redirect_dir=nofollow',
          'index=off',
          'metacopy=off',
          ...(isolation === 'userns' ? ['userxattr'] : []),
        ].join(',')
      : '';
    const chain = chainArgv(options);
    const setup = ['/bin/bash', '-c', SETUP_SCRIPT, 'tessera-sandbox', rootfs, overlayOptions, options.overlay?.mergedDir ?? '', ...mountArgs, ...chain];
    const namespaces = ['--mount', '--pid', '--fork', '--kill-child=SIGKILL', '--propagation', 'private', '--ipc', '--uts'];
    if (options.network === 'none') namespaces.push('--net');
    let argv: string[];
    let mapIdsFromHere = false;
    if (isolation === 'chroot') {
      argv = ['setpriv', '--pdeathsig', 'SIGKILL', 'unshare', ...namespaces, '--', ...setup];
    } else if (isRoot()) {
      // newuidmap refuses root without /etc/subuid entries; as root, this process writes an identity map
      // itself, and the inner unshare is exec'd only after that so it gets full capabilities in the namespace.
      mapIdsFromHere = true;
      argv = [
        'setpriv', '--pdeathsig', 'SIGKILL', 'unshare', '--user', '--kill-child=SIGKILL', '--',
        '/bin/sh', '-c', 'read -r _ <&3 && exec 3<&- && exec "$@"', 'tessera-userns',
        'unshare', ...namespaces, '--', ...setup,
      ];
    } else {
      const subordinate = await hasSubordinateIds();
      argv = ['setpriv', '--pdeathsig', 'SIGKILL', 'unshare', '--user', '--map-root-user', ...(subordinate ? ['--map-auto'] : []), ...namespaces, '--', ...setup];
    }
    return await supervise(argv, options, mapIdsFromHere);
  } finally {
    await stubs.cleanup();
    await rm(scratch, { recursive: true, force: true });
  }
}

async function prepareMounts(options: SandboxOptions, rootfs: string, scratch: string, stubs: MountStubs): Promise<string[]> {
  await stubs.prepare('/proc', 'directory');
  await stubs.prepare('/dev', 'directory');
  let hostsFile = options.hostsFile;
  if (!hostsFile) {
    hostsFile = path.join(scratch, 'hosts');
    await writeFile(hostsFile, DEFAULT_HOSTS, { mode: 0o644 });
  }
  const resolvConf = options.resolvConf ?? ((await exists('/etc/resolv.conf')) ? '/etc/resolv.conf' : undefined);
  const binds: SandboxMount[] = [{ type: 'bind', source: hostsFile, target: '/etc/hosts', readonly: true }];
  if (resolvConf) binds.push({ type: 'bind', source: resolvConf, target: '/etc/resolv.conf', readonly: true });
  const all = [...binds, ...(options.mounts ?? [])];
  const args: string[] = [String(all.length)];
  for (const mount of all) {
    if (mount.type === 'bind') {
      const source = path.resolve(mount.source);
      const isDirectory = (await stat(source)).isDirectory();
      const target = await stubs.prepare(mount.target, isDirectory ? 'directory' : 'file');
      args.push('bind', source, target.imagePath, mount.readonly ? 'ro' : 'rw');
    } else {
      const target = await stubs.prepare(mount.target, 'directory');
      args.push('tmpfs', '', target.imagePath, 'rw');
    }
  }
  void rootfs;
  return args;
}

function chainArgv(options: SandboxOptions): string[] {
  const groups = options.supplementaryGids ?? [];
  const restore = options.env.filter((entry) => /^(PWD|OLDPWD)=/.test(entry));
  return [
    'setpriv',
    '--reuid', String(options.uid),
    '--regid', String(options.gid),
    ...(groups.length > 0 ? ['--groups', groups.join(',')] : ['--clear-groups']),
    '--bounding-set', ['-all', ...KEPT_CAPABILITIES.map((cap) => `+${cap}`)].join(','),
    '--',
    'env', '-i', '--', ...options.env,
    '/bin/sh', '-c', CHAIN_SCRIPT, 'tessera-run', options.cwd, String(restore.length), ...restore,
    ...options.argv,
  ];
}

async function supervise(argv: string[], options: SandboxOptions, mapIdsFromHere: boolean): Promise<SandboxResult> {
  const child = spawn(argv[0]!, argv.slice(1), {
    cwd: '/',
    env: { PATH: TOOL_PATH },
    stdio: ['ignore', 'pipe', 'pipe', ...(mapIdsFromHere ? (['pipe'] as const) : [])],
  });
  const stdout = new LineSplitter((line) => options.onStdout?.(line));
  const stderr = new LineSplitter((line) => options.onStderr?.(line));
  child.stdout!.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk));
  const exited = once(child, 'close') as Promise<[number | null, NodeJS.Signals | null]>;
  const spawnError = once(child, 'error').then(([error]) => {
    throw new TesseraError(`sandbox: cannot start ${argv[0]}: ${(error as Error).message}`, 'SANDBOX_UNAVAILABLE');
  });

  let stopReason: 'timeout' | 'abort' | undefined;
  const stop = (reason: 'timeout' | 'abort') => {
    if (stopReason) return;
    stopReason = reason;
    void killNamespace(child);
  };
  const timer = options.timeoutMs !== undefined ? setTimeout(() => stop('timeout'), options.timeoutMs) : undefined;
  const onAbort = () => stop('abort');
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    if (mapIdsFromHere) {
      await writeIdentityMaps(child.pid!).catch((error: unknown) => {
        void killNamespace(child);
        throw error;
      });
      (child.stdio[3] as NodeJS.WritableStream).end('go\n');
    }
    const [code, signal] = await Promise.race([exited, spawnError]);
    stdout.end();
    stderr.end();
    if (stopReason === 'abort') throw options.signal?.reason ?? new DOMException('The RUN was aborted', 'AbortError');
    if (stopReason === 'timeout') return { exitCode: code ?? 137, signal: signal ?? 'SIGKILL', timedOut: true };
    if (signal) return { exitCode: 128 + signalNumber(signal), signal };
    return { exitCode: code ?? 1 };
  } finally {
    if (timer) clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
  }
}

function signalNumber(signal: NodeJS.Signals): number {
  const numbers: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGABRT: 6, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGTERM: 15 };
  return numbers[signal] ?? 0;
}

/**
 * Kills the namespace's pid 1: the kernel then kills every process in the pid namespace, and the
 * unshare above it exits only after they are gone. Killing the unshare (whose --kill-child forwards a
 * SIGKILL) covers the moment before the namespace exists.
 */
async function killNamespace(child: ChildProcess): Promise<void> {
  const init = child.pid !== undefined ? await findNamespaceInit(child.pid).catch(() => undefined) : undefined;
  if (init !== undefined) {
    try {
      process.kill(init, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  child.kill('SIGKILL');
}

async function findNamespaceInit(rootPid: number): Promise<number | undefined> {
  const queue = [rootPid];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
    const nsPids = /^NSpid:\s*(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/) ?? [];
    if (nsPids.length > 1 && nsPids[nsPids.length - 1] === '1') return pid;
    const children = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
    for (const next of children.trim().split(/\s+/)) if (next) queue.push(Number(next));
  }
  return undefined;
}

async function writeIdentityMaps(pid: number): Promise<void> {
  const ours = await readlink('/proc/self/ns/user');
  const deadline = Date.now() + 5000;
  while ((await readlink(`/proc/${pid}/ns/user`)) === ours) {
    if (Date.now() > deadline) throw new TesseraError('sandbox: the user namespace was not created in time', 'SANDBOX_UNAVAILABLE');
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await writeFile(`/proc/${pid}/uid_map`, '0 0 4294967295\n');
  await writeFile(`/proc/${pid}/gid_map`, '0 0 4294967295\n');
}

async function hasSubordinateIds(): Promise<boolean> {
  const user = process.env['USER'] ?? String(process.getuid?.());
  const content = await readFile('/etc/subuid', 'utf8').catch(() => '');
  return content.split('\n').some((line) => line.startsWith(`${user}:`) || line.startsWith(`${process.getuid?.()}:`));
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}
