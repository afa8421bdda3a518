import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from './measure.mjs';

/**
 * A private dockerd (Debian docker.io) for BuildKit, as the shared tooling notes describe:
 * its own data/exec roots and socket, no iptables, no bridge. Loopback registries are insecure by default.
 */
export async function startDockerd() {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-bench-dockerd-'));
  const socket = join(dir, 'sock');
  const args = ['--data-root', join(dir, 'root'), '--exec-root', join(dir, 'exec'), '--pidfile', join(dir, 'pid'), '-H', `unix://${socket}`, '--iptables=false', '--ip6tables=false', '--bridge=none'];
  const child = spawn('dockerd', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let output = '';
  child.stderr.on('data', (chunk) => (output = (output + chunk).slice(-20_000)));
  const env = { DOCKER_HOST: `unix://${socket}`, DOCKER_BUILDKIT: '1', DOCKER_CONFIG: join(dir, 'client') };
  const deadline = Date.now() + 30_000;
  while ((await run('/usr/bin/docker', ['version'], { env })).code !== 0) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`dockerd did not start:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  return {
    env,
    /** dockerd's peak RSS since it started (BuildKit runs inside it in Docker 20.10). */
    peakRssKiB: async () => Number(/VmHWM:\s+(\d+)/.exec(await readFile(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0),
    docker: (dockerArgs, options = {}) => run('/usr/bin/docker', dockerArgs, { ...options, env: { ...env, ...options.env } }),
    async stop() {
      if (child.exitCode === null) {
        await new Promise((resolve) => {
          const kill = setTimeout(() => child.kill('SIGKILL'), 15_000);
          child.once('exit', () => (clearTimeout(kill), resolve()));
          child.kill('SIGTERM');
        });
      }
      await run('umount', [join(dir, 'exec/netns/default')]);
      await run('sh', ['-c', `grep -o ' ${dir}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l`]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
