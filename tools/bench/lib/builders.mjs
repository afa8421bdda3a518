import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDockerd } from './dockerd.mjs';
import { tesseraBin } from './dist.mjs';
import { run } from './measure.mjs';

const quote = (args) => args.map((a) => `'${a}'`).join(' ');

/**
 * The Dockerfile builders compared: each has a cold() that empties its caches, and a build-and-push
 * command measured as a whole. `build` is { context, dockerfile, reference } with absolute paths.
 * BuildKit and buildah also come as `-naive` contenders (own state), which build `Dockerfile.naive`
 * (`COPY . .` of a pruned context) instead of `Dockerfile.optimised`.
 */
export function dockerfileBuilders(target) {
  const naive = builderSet(target);
  return {
    ...builderSet(target),
    'buildah-naive': { ...naive.buildah, variant: 'naive' },
    'buildkit-naive': { ...naive.buildkit, variant: 'naive' },
  };
}

function builderSet({ host, base }) {
  const buildArg = `RUNTIME_IMAGE=${base}`;
  return {
    tessera: (() => {
      // Cold empties the layer cache (a fresh --cache-dir; the registry cache repo is per destination and run).
      let cacheDir;
      let cacheRepo;
      const clean = async () => {
        if (cacheDir) await rm(cacheDir, { recursive: true, force: true });
        cacheDir = undefined;
      };
      return {
        tool: 'node',
        describe: (dockerfile) =>
          `node packages/builder/bin/tessera.js build --context REPO --dockerfile ${dockerfile} --build-arg RUNTIME_IMAGE=BASE --insecure-registry HOST --destination REF --cache=true --cache-copy-layers --cache-dir DIR --cache-repo HOST/CACHE`,
        async cold() {
          await clean();
          cacheDir = await mkdtemp(join(tmpdir(), 'tessera-bench-cache-'));
          cacheRepo = `${host}/bench/s6-tessera-cache-${Date.now().toString(36)}`;
        },
        command: ({ context, dockerfile, reference }) => [
          process.execPath,
          [tesseraBin, 'build', '--context', context, '--dockerfile', dockerfile, '--build-arg', buildArg, '--insecure-registry', host, '--destination', reference, '--cache=true', '--cache-copy-layers', '--cache-dir', cacheDir, '--cache-repo', cacheRepo],
        ],
        stop: clean,
      };
    })(),
    buildah: (() => {
      let state;
      const buildah = (args) => ['buildah', '--root', join(state, 'root'), '--runroot', join(state, 'run'), '--storage-driver', 'overlay', ...args];
      const clean = async () => {
        if (!state) return;
        await run('sh', ['-c', `grep -o ' ${state}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l`]);
        await rm(state, { recursive: true, force: true });
        state = undefined;
      };
      return {
        tool: 'buildah',
        describe: (dockerfile) => `buildah --root R --runroot RR --storage-driver overlay bud --isolation=chroot --layers --tls-verify=false --build-arg RUNTIME_IMAGE=BASE -f ${dockerfile} -t REF REPO && buildah … push --tls-verify=false REF docker://REF`,
        async cold() {
          await clean();
          state = await mkdtemp(join(tmpdir(), 'tessera-bench-buildah-'));
        },
        command: ({ context, dockerfile, reference }) => {
          const bud = buildah(['bud', '--isolation=chroot', '--layers', '--tls-verify=false', '--build-arg', buildArg, '-f', dockerfile, '-t', reference, context]);
          const push = buildah(['push', '--tls-verify=false', reference, `docker://${reference}`]);
          return ['sh', ['-c', `${quote(bud)} > /dev/null && ${quote(push)} > /dev/null`]];
        },
        stop: clean,
      };
    })(),
    buildkit: (() => {
      let dockerd;
      return {
        tool: 'dockerd',
        describe: (dockerfile) => `DOCKER_BUILDKIT=1 docker build --network host --build-arg RUNTIME_IMAGE=BASE -f ${dockerfile} -t REF REPO && docker push REF   # private dockerd, started afresh (empty --data-root) for each cold start`,
        async cold() {
          await dockerd?.stop();
          dockerd = await startDockerd();
        },
        /** BuildKit runs inside dockerd (20.10), so the daemon's peak RSS since the cold start covers it. */
        daemonPeakRssKiB: () => dockerd.peakRssKiB(),
        command: ({ context, dockerfile, reference }) => {
          const env = Object.entries(dockerd.env).map(([k, v]) => `${k}='${v}'`).join(' ');
          return ['sh', ['-c', `${env} /usr/bin/docker build -q --network host --build-arg '${buildArg}' -f '${dockerfile}' -t '${reference}' '${context}' > /dev/null && ${env} /usr/bin/docker push -q '${reference}' > /dev/null`]];
        },
        async stop() {
          await dockerd?.stop();
          dockerd = undefined;
        },
      };
    })(),
  };
}

/** The builders whose tool is installed here, limited to `only` (comma-separated names, or `all`). */
export async function availableBuilders(all, log, only = 'all') {
  const wanted = only === 'all' ? Object.keys(all) : only.split(',').map((name) => name.trim());
  const available = {};
  for (const [name, builder] of Object.entries(all)) {
    if (!wanted.includes(name)) continue;
    if ((await run('sh', ['-c', `command -v ${builder.tool}`])).code === 0) available[name] = builder;
    else log(`${name} skipped: ${builder.tool} is not installed`);
  }
  return available;
}

const EXPECTED_CMD = ['/bin/sh', '-c', 'ls /app/dist'];

/** A generated app's image must exist with the base and the two COPY --from layers, and the app's Cmd. Returns its layer count. */
export async function checkPushedImage(reference) {
  const { stdout } = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reference}`], { check: true });
  const manifest = JSON.parse(stdout);
  const config = JSON.parse((await run('skopeo', ['inspect', '--config', '--tls-verify=false', `docker://${reference}`], { check: true })).stdout);
  const nonEmpty = (manifest.layers ?? []).filter((layer) => layer.size > 1024).length;
  if (nonEmpty < 3) throw new Error(`${reference}: ${nonEmpty} non-empty layers, expected the base and the two COPY --from layers`);
  if (JSON.stringify(config.config?.Cmd) !== JSON.stringify(EXPECTED_CMD)) throw new Error(`${reference}: Cmd ${JSON.stringify(config.config?.Cmd)}`);
  return manifest.layers.length;
}
