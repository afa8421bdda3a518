import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectIsolation, runInSandbox, type SandboxOptions } from '../src/sandbox/index';
import { diffTree, scanTree } from '../src/snapshot/index';
import { BASE_ENV, makeBusyboxRootfs } from './sandbox-fixtures';

let rootfs: string;
let hostDir: string;

beforeAll(() => {
  rootfs = makeBusyboxRootfs();
  hostDir = mkdtempSync(path.join(tmpdir(), 'tessera-sandbox-host-'));
});
afterAll(() => {
  rmSync(path.dirname(rootfs), { recursive: true, force: true });
  rmSync(hostDir, { recursive: true, force: true });
});

async function run(script: string, extra: Partial<SandboxOptions> = {}) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const result = await runInSandbox({
    rootfs,
    argv: ['/bin/sh', '-c', script],
    env: BASE_ENV,
    cwd: '/',
    uid: 0,
    gid: 0,
    network: 'none',
    isolation: 'auto',
    onStdout: (line) => stdout.push(line),
    onStderr: (line) => stderr.push(line),
    ...extra,
  });
  return { ...result, stdout, stderr };
}

function processesWithMarker(marker: string): number[] {
  const found: number[] = [];
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8') === `sleep\0${marker}\0`) found.push(Number(pid));
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

describe('detectIsolation', () => {
  it('picks chroot as root and explains why', async () => {
    const report = await detectIsolation();
    expect(report.isolation).toBe(process.getuid?.() === 0 ? 'chroot' : 'userns');
    expect(report.missingTools).toEqual([]);
    expect(report.reason).toMatch(/namespace/);
  });
});

describe.each(['chroot', 'userns'] as const)('runInSandbox with isolation %s', (isolation) => {
  const opts = { isolation };

  it('passes output line by line and returns the exit code', async () => {
    const ok = await run('echo hello; echo oops >&2; printf "no newline"', opts);
    expect(ok).toMatchObject({ exitCode: 0, stdout: ['hello', 'no newline'], stderr: ['oops'] });
    expect((await run('exit 42', opts)).exitCode).toBe(42);
  });

  it('gives the command exactly the requested environment and working directory', async () => {
    const env = ['PATH=/bin', 'WITH_SPACE=a b', 'EMPTY=', 'MULTI=line1\nline2'];
    const direct: string[] = [];
    const result = await runInSandbox({ rootfs, argv: ['/usr/bin/env'], env, cwd: '/tmp', uid: 0, gid: 0, network: 'none', isolation, onStdout: (line) => direct.push(line) });
    expect(result.exitCode).toBe(0);
    // The shell of the chain exports in its own order; the set is what must be exact.
    expect(direct.sort()).toEqual(['EMPTY=', 'MULTI=line1', 'PATH=/bin', 'WITH_SPACE=a b', 'line2']);
    const lines: string[] = [];
    await runInSandbox({ rootfs, argv: ['/bin/sh', '-c', 'pwd; echo "$WITH_SPACE"'], env, cwd: '/tmp', uid: 0, gid: 0, network: 'none', isolation, onStdout: (line) => lines.push(line) });
    expect(lines).toEqual(['/tmp', 'a b']);
  });

  it('switches to the uid, gid and supplementary groups', async () => {
    const result = await run('id -u; id -g; id -G; touch /tmp/owned && stat -c %u:%g /tmp/owned; rm /tmp/owned', { ...opts, uid: 1000, gid: 1000, supplementaryGids: [1000, 27] });
    expect(result.stdout).toEqual(['1000', '1000', '1000 27', '1000:1000']);
  });

  it('lets root chown inside (a full id range is mapped)', async () => {
    const result = await run('touch /tmp/c && chown 1234:4321 /tmp/c && stat -c %u:%g /tmp/c && rm /tmp/c', opts);
    expect(result.stdout).toEqual(['1234:4321']);
  });

  it('isolates the network with network none and shares it with network host', async () => {
    const none = await run('tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " "', opts);
    expect(none.stdout).toEqual(['lo']);
    const host = await run('tail -n +3 /proc/net/dev | wc -l', { ...opts, network: 'host' });
    const hostInterfaces = readFileSync('/proc/net/dev', 'utf8').trim().split('\n').length - 2;
    expect(Number(host.stdout[0])).toBe(hostInterfaces);
  });

  it('provides /proc of its own pid namespace, /dev nodes, /dev/shm and the generated /etc/hosts', async () => {
    const result = await run('echo $$; echo x > /dev/null; head -c 4 /dev/zero | wc -c; test -d /dev/shm && touch /dev/shm/x && echo shm; cat /etc/hosts | head -1; ls /proc | grep -c "^[0-9]"', opts);
    // Pid 1 is the sandbox's setup shell; the host's thousands of pids are not visible.
    expect(Number(result.stdout[0])).toBeLessThan(200);
    expect(result.stdout.slice(1, 4)).toEqual(['4', 'shm', '127.0.0.1\tlocalhost']);
    expect(Number(result.stdout[4])).toBeLessThan(5);
  });

  it('leaves only fds 0, 1 and 2 open for the command', async () => {
    const result = await run('ls /proc/self/fd', opts);
    // The 4th is the directory fd ls itself opened.
    expect(result.stdout).toEqual(['0', '1', '2', '3']);
  });

  it('mounts binds (read-only and read-write) and tmpfs, and leaves no mount stub behind', async () => {
    const source = path.join(hostDir, `bind-${isolation}`);
    mkdirSync(source);
    writeFileSync(path.join(source, 'secret'), 's3cret');
    const before = await scanTree(rootfs, { mode: 'redo', ignore: ['/proc', '/dev'] });
    const rw = path.join(hostDir, `rw-${isolation}`);
    mkdirSync(rw);
    const result = await run('cat /run/secrets/secret; echo; echo x > /run/secrets/new || echo read-only; echo y > /cache/out; test -d /scratch && touch /scratch/t && echo tmpfs', {
      ...opts,
      mounts: [
        { type: 'bind', source, target: '/run/secrets', readonly: true },
        { type: 'bind', source: rw, target: '/cache' },
        { type: 'tmpfs', target: '/scratch' },
      ],
    });
    expect(result.stdout).toEqual(['s3cret', 'read-only', 'tmpfs']);
    expect(readFileSync(path.join(rw, 'out'), 'utf8')).toBe('y\n');
    expect(existsSync(path.join(source, 'new'))).toBe(false);
    const leftovers = ['run', 'cache', 'scratch', 'etc/hosts', 'etc/resolv.conf'].filter((stub) => existsSync(path.join(rootfs, stub)));
    expect(leftovers).toEqual([]);
    const after = await scanTree(rootfs, { mode: 'redo', ignore: ['/proc', '/dev'] });
    expect(diffTree(before, after)).toEqual([]);
  });

  it('kills the command at the timeout', async () => {
    const started = Date.now();
    const result = await run('sleep 30', { ...opts, timeoutMs: 300 });
    expect(result.timedOut).toBe(true);
    expect(result.signal).toBe('SIGKILL');
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('kills the whole process tree on abort', async () => {
    const marker = `4${Math.floor(Math.random() * 1e6)}.${isolation.length}`;
    const controller = new AbortController();
    const running = run('sleep $M & (sleep $M & sleep $M) & trap "" TERM; wait', { ...opts, env: [...BASE_ENV, `M=${marker}`], signal: controller.signal });
    const deadline = Date.now() + 10_000;
    while (processesWithMarker(marker).length < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(processesWithMarker(marker)).toHaveLength(3);
    controller.abort(new Error('build interrupted'));
    await expect(running).rejects.toThrow('build interrupted');
    expect(processesWithMarker(marker)).toEqual([]);
  });

  it('cannot write outside its rootfs', async () => {
    const sentinel = path.join(hostDir, `sentinel-${isolation}`);
    writeFileSync(sentinel, 'original');
    const sentinelStat = statSync(sentinel);
    const hostFilesBefore = readdirSync(hostDir).sort();
    const attempts = [
      `echo pwned > /proc/1/root${sentinel}`,
      `echo pwned > /proc/self/root${sentinel}`,
      `echo pwned > /proc/1/cwd${sentinel}`,
      `ln -s ${sentinel} /tmp/link && echo pwned > /tmp/link`,
      `ln -s ${hostDir} /tmp/dirlink && echo pwned > /tmp/dirlink/escaped`,
      `mkdir -p /mnt/host && mount --bind / /mnt/host && echo pwned > /mnt/host${sentinel}`,
      `mount -t tmpfs none /tmp && echo mounted`,
      `mkdir -p /jail/bin && cp /bin/busybox /jail/bin/ && chroot /jail /bin/busybox sh -c "cd ../../../../..; /bin/busybox chroot . /bin/busybox sh -c 'echo pwned > ${sentinel}'"`,
      `mknod /tmp/disk b 254 0 && echo mknod`,
      `cd /..; cd ../..; echo pwned > .${sentinel}`,
      `echo 1 > /proc/sys/kernel/sysrq && echo sysctl`,
    ];
    for (const attempt of attempts) {
      const result = await run(attempt, opts);
      expect(result.stdout.filter((line) => /mounted|mknod|sysctl/.test(line)), attempt).toEqual([]);
    }
    expect(readFileSync(sentinel, 'utf8')).toBe('original');
    expect(statSync(sentinel).mtimeMs).toBe(sentinelStat.mtimeMs);
    expect(readdirSync(hostDir).sort()).toEqual(hostFilesBefore);
    await run('rm -rf /tmp/link /tmp/dirlink /mnt /jail /tmp/disk /tmp/escaped', opts);
  });
});

describe('runInSandbox argument safety', () => {
  it('passes paths and arguments without shell interpretation', async () => {
    const weird = path.join(hostDir, 'we ird $(touch injected) `x`;"');
    mkdirSync(weird);
    writeFileSync(path.join(weird, 'f'), 'ok');
    const result = await run('cat "/mnt/$1/f"', { argv: ['/bin/sh', '-c', 'cat "/mnt/w/f"; echo "$0"', '$(id)'], mounts: [{ type: 'bind', source: weird, target: '/mnt/w' }] });
    expect(result.stdout).toEqual(['ok$(id)']);
    expect(existsSync(path.join(process.cwd(), 'injected'))).toBe(false);
    expect(execFileSync('/bin/sh', ['-c', 'ls / | grep -c injected || true'], { encoding: 'utf8' }).trim()).toBe('0');
  });
});
