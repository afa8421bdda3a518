import { appendFile, mkdir, readFile, readdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pushRuntimeBase } from '../lib/base-image.mjs';
import { availableBuilders, checkPushedImage, dockerfileBuilders } from '../lib/builders.mjs';
import { repoRoot } from '../lib/dist.mjs';
import { run, runMeasured } from '../lib/measure.mjs';
import { ensureMonorepo, prunedContext } from '../lib/monorepo.mjs';
import { startRegistry, summariseAccessLog } from '../lib/registry.mjs';
import { markdownTable, printTable } from '../lib/report.mjs';
import { median, mib, ratio, seconds } from '../lib/stats.mjs';

/** S1–S5 in order on one working copy: each step changes something, then every image is rebuilt and pushed. */
const STEPS = [
  { id: 'S1', title: 'cold: every image, empty caches', change: async () => {} },
  { id: 'S2', title: 'no change: every image again', change: async () => {} },
  { id: 'S3', title: "one app's source changed (node-app-0)", change: (root, run) => appendFile(join(root, 'apps/node-app-0/src/file0.js'), `// bench change ${run}\n`) },
  { id: 'S4', title: 'shared core library changed (node-lib-00, in every Node app)', change: (root, run) => appendFile(join(root, 'libs/node-lib-00/src/file0.js'), `// bench change ${run}\n`) },
  { id: 'S5', title: 'third-party dependency upgraded (pkg-1: new version in node_modules and the lockfile)', change: async (root, run) => {
      const version = `9.${run}.${Date.now() % 100000}`;
      const manifestPath = join(root, 'node_modules/pkg-1/package.json');
      await writeFile(manifestPath, JSON.stringify({ ...JSON.parse(await readFile(manifestPath, 'utf8')), version }, null, 2));
      await appendFile(join(root, 'node_modules/pkg-1/index.js'), `// upgraded to ${version}\n`);
      const lockPath = join(root, 'package-lock.json');
      const lock = JSON.parse(await readFile(lockPath, 'utf8'));
      lock.packages['node_modules/pkg-1'].version = version;
      await writeFile(lockPath, JSON.stringify(lock, null, 2));
    } },
];

export const stepIds = STEPS.map((step) => step.id);

/**
 * The steps a run takes (`options.steps`, from `--scenario S2`: S1 and S2). Only a prefix of S1–S5 can be
 * run, as each step starts from the state the ones before it left.
 */
function selectedSteps(option) {
  if (!option) return STEPS;
  const ids = option.split(',');
  const prefix = STEPS.slice(0, ids.length);
  if (prefix.length !== ids.length || prefix.some((step, index) => step.id !== ids[index])) throw new Error(`S1–S5 can run only a prefix of ${stepIds.join(',')}, not ${option}`);
  return prefix;
}

export const nxMonorepo = {
  id: 'S1-S5',
  title: 'S1–S5: the 12-image monorepo (cold, no-op, app change, library change, dependency change)',
  async run({ options, log }) {
    const steps = selectedSteps(options.steps);
    const repo = await ensureMonorepo(options['work-dir'], options.seed, options.scale);
    const registry = await startRegistry();
    const base = await pushRuntimeBase(repo.root, registry.host);
    const builders = await availableBuilders(dockerfileBuilders({ host: registry.host, base }), log, options.contenders);
    if (builders.tessera) builders.tessera = nxTessera(registry.host, base); // Tessera's side is the Nx executor in layered mode
    const samples = {};
    try {
      for (let runIndex = 0; runIndex < options.runs; runIndex++) {
        for (const [name, builder] of Object.entries(builders)) {
          // A private working copy per run and builder: the changes below must not leak into the next run.
          const work = join(options['work-dir'], `s1-s5-copy-${name}`);
          await run('rm', ['-rf', work], { check: true });
          await run('cp', ['-a', repo.root, work], { check: true });
          await builder.cold();
          await builder.prepareWorkspace?.(work, runIndex);
          for (const step of steps) {
            await step.change(work, runIndex);
            registry.takeAccessLog();
            let ms = 0;
            let rssKiB = 0;
            let newLayers;
            if (builder.buildAll) {
              const result = await runMeasured(...builder.buildAll(work), { cwd: work, env: NX_ENV });
              if (result.code !== 0) throw new Error(`${step.id} ${name} failed (${result.code}):\n${(result.stderr || result.stdout).slice(-3000)}`);
              ms = result.ms;
              rssKiB = result.maxRssKiB;
              ({ newLayers } = await builder.check(work, runIndex, repo.apps));
            }
            for (const app of builder.buildAll ? [] : repo.apps) {
              // A namespace per run, as for Tessera: a cold run must not find blobs pushed by an earlier run.
              const reference = `${registry.host}/bench-${name}-r${runIndex}/${app.name}:${step.id.toLowerCase()}`;
              // The naive variant builds from a pruned context (made before the clock starts, as a CI prune step would).
              const context = builder.variant === 'naive' ? await prunedContext(work, app, join(`${work}-pruned`, app.name)) : work;
              const [command, args] = builder.command({ context, dockerfile: join(context, 'apps', app.name, `Dockerfile.${builder.variant ?? 'optimised'}`), reference });
              const result = await runMeasured(command, args, { cwd: repoRoot });
              if (result.code !== 0) throw new Error(`${step.id} ${name} ${app.name} failed (${result.code}):\n${(result.stderr || result.stdout).slice(-3000)}`);
              ms += result.ms;
              rssKiB = Math.max(rssKiB, result.maxRssKiB + (builder.daemonPeakRssKiB ? await builder.daemonPeakRssKiB() : 0));
              await checkPushedImage(reference);
            }
            const access = await summariseAccessLog(registry.takeAccessLog(), registry.dataDir);
            (samples[`${step.id} ${name}`] ??= []).push({ ms, rssKiB, ...access, ...(newLayers ? { upload: uploadAgainstNewLayers(access.uploaded, newLayers) } : {}) });
            if (step.id === 'S2' && builder.startupOnly) {
              // Nx alone (graph, plugin inference, task runner) on the same projects: S2 minus this is the executor's own time.
              const startup = await runMeasured(...builder.startupOnly(), { cwd: work, env: NX_ENV });
              if (startup.code !== 0) throw new Error(`nx start-up run failed (${startup.code}):\n${(startup.stderr || startup.stdout).slice(-3000)}`);
              (samples['nx start-up'] ??= []).push({ ms: startup.ms });
            }
            log(`${step.id} run ${runIndex + 1}/${options.runs} ${name}: ${seconds(ms)} s for ${repo.apps.length} images, ${mib(access.uploadedBytes)} MiB uploaded, ${access.requests} requests`);
          }
          await run('rm', ['-rf', work, `${work}-pruned`], { check: true });
        }
      }
    } finally {
      for (const builder of Object.values(builders)) await builder.stop();
      await registry.stop();
    }
    const headers = ['scenario', 'contender', 'median s (12 images)', 'runs (s)', 'vs Tessera', 'uploaded MiB', 'blob uploads', 'requests', 'peak RSS MiB'];
    const rows = [];
    for (const step of steps) {
      for (const [index, name] of Object.keys(builders).entries()) {
        const list = samples[`${step.id} ${name}`];
        const ms = median(list.map((s) => s.ms));
        const tessera = samples[`${step.id} tessera`];
        rows.push([index === 0 ? `${step.id}: ${step.title}` : '', name, seconds(ms), list.map((s) => seconds(s.ms)).join(', '), tessera ? ratio(ms, median(tessera.map((s) => s.ms))) : 'n/a', mib(median(list.map((s) => s.uploadedBytes))), median(list.map((s) => s.blobUploads)), median(list.map((s) => s.requests)), mib(median(list.map((s) => s.rssKiB)) * 1024)]);
      }
    }
    printTable(headers, rows);
    const startup = samples['nx start-up'] && median(samples['nx start-up'].map((s) => s.ms));
    const noChange = samples['S2 tessera'] && median(samples['S2 tessera'].map((s) => s.ms));
    const startupNote = startup
      ? `Nx's own start-up, measured after each S2 as \`nx run-many -t noop\` over the same ${repo.apps.length} projects (project graph with the plugin's inference, task runner, an \`nx:noop\` executor): median ${seconds(startup)} s (runs ${samples['nx start-up'].map((s) => seconds(s.ms)).join(', ')}). Tessera's S2 less that is the executor's own time for a no-change rerun of every image: **${seconds(Math.max(0, noChange - startup))} s** (goal: under 2 s).`
      : '';
    if (startupNote) log(startupNote);
    const uploadNotes = ['S3', 'S4', 'S5'].flatMap((id) => {
      const list = samples[`${id} tessera`]?.filter((s) => s.upload?.newBytes > 0);
      if (!list?.length) return [];
      const pick = (key) => median(list.map((s) => s.upload[key]));
      const kib = (bytes) => (bytes / 1024).toFixed(1);
      return [`${id}: Tessera wrote ${kib(pick('newBytes'))} KiB of new layers and uploaded ${kib(pick('layerBytes'))} KiB of layer blobs (${(pick('layerBytes') / pick('newBytes')).toFixed(2)}× the new layers; goal ≤ 1.1×) plus ${kib(pick('otherBytes'))} KiB of image configs (medians).`];
    });
    for (const note of uploadNotes) log(note);
    const markdown = [
      `## ${this.title}`,
      '',
      `The generated monorepo (${repo.apps.length} apps: 6 Node, 3 Python, 3 .NET; ${repo.libs.length} libraries; node_modules ${repo.nodeModules.files.toLocaleString('en')} files / ${mib(repo.nodeModules.bytes)} MiB). Each run takes a fresh copy of the repository and empty caches, then runs ${steps.length === STEPS.length ? 'S1 to S5 in order' : `${steps.map((step) => step.id).join(', ')} only (\`--scenario ${steps.at(-1).id}\`)`}; each step makes its change and then builds and pushes all ${repo.apps.length} images one after the other with the optimised Dockerfiles (\`apps/*/Dockerfile.optimised\`: dependency manifests first, one COPY per module, a RUN for dependencies, a RUN for the build), or, for the \`-naive\` contenders, with \`apps/*/Dockerfile.naive\` (\`COPY . .\` of a pruned context per app: the app, its libraries, the build script and its stack's third-party tree, hard-linked from the working copy before the clock starts). Times are the sum over the 12 images; uploaded bytes and requests come from the registry's access log for the whole step. Every image is checked after its push (Dockerfile builds: exists, base plus two COPY --from layers, the app's Cmd; Tessera: the digest the executor reports exists, with at least two non-empty layers and the Cmd). The images are not identical: the layered images hold each module's sources and the third-party tree as layers, while the Dockerfile images hold the RUN outputs, so the comparison is of the two ways to ship the same apps, not of byte-identical builds.`,
      '',
      markdownTable(headers, rows),
      '',
      ...(startupNote ? [startupNote, ''] : []),
      ...(uploadNotes.length ? [uploadNotes.join('\n'), ''] : []),
      'Tessera builds all 12 images with one `nx run-many -t image` (the `@tessera/nx` executor in layered mode: base, third-party, root files, one layer per module, the app; an image whose input hash is unchanged is skipped, a layer whose input hash is unchanged is not rewritten), with Nx and the plugin linked into the working copy\'s node_modules, a registry namespace of its own per run (so nothing is found from an earlier run), and each app\'s `"tessera"` block setting the runtime base and the Cmd (and, for the Python apps, the site-packages tree as the third-party layer). The Node images\' third-party layer holds only the npm packages the app\'s module closure reaches, where the Dockerfiles copy the whole `node_modules`; the generated .NET apps have no publish output for the layered mode to split, so Tessera\'s .NET images hold the modules\' sources but not the NuGet tree the Dockerfiles copy. BuildKit and buildah build the same images from the Dockerfiles, which also run the two RUN steps that the layered mode does not need. "vs Tessera" divides by Tessera\'s time for the step: above 1× is slower than Tessera.',
      '',
      '```sh',
      'NX_DAEMON=false NX_NO_CLOUD=true nx run-many -t image   # Tessera, all 12 images, per step',
      '```',
      '',
      'Commands per image:',
      '```sh',
      ...Object.entries(builders).filter(([name]) => name !== 'tessera').map(([, b]) => b.describe(`apps/APP/Dockerfile.${b.variant ?? 'optimised'}`)),
      '```',
    ].join('\n');
    return { markdown };
  },
};

const NX_ENV = { NX_DAEMON: 'false', NX_NO_CLOUD: 'true', NX_TUI: 'false' };
const nxBin = join(repoRoot, 'node_modules/.bin/nx');

/** Tessera through Nx: one command per step for all images; the plugin and Nx linked into the working copy. */
function nxTessera(host, base) {
  const namespace = (runIndex) => `${host}/bench-tessera-r${runIndex}`;
  return {
    tool: 'node',
    async cold() {},
    async stop() {},
    async prepareWorkspace(work, runIndex) {
      await mkdir(join(work, 'node_modules/@nx'), { recursive: true });
      await mkdir(join(work, 'node_modules/@tessera'), { recursive: true });
      await symlink(join(repoRoot, 'node_modules/nx'), join(work, 'node_modules/nx'));
      await symlink(join(repoRoot, 'node_modules/@nx/devkit'), join(work, 'node_modules/@nx/devkit'));
      await symlink(join(repoRoot, 'packages/nx'), join(work, 'node_modules/@tessera/nx'));
      await writeFile(join(work, 'nx.json'), JSON.stringify({ plugins: [{ plugin: '@tessera/nx/plugin', options: { registry: namespace(runIndex), insecureRegistries: [host], push: true } }] }, null, 2));
      for (const app of await readdir(join(work, 'apps'))) {
        const file = join(work, 'apps', app, 'project.json');
        const project = JSON.parse(await readFile(file, 'utf8'));
        const runtime = app.split('-')[0];
        // The Python images carry the site-packages tree as their third-party layer, as the Dockerfiles do.
        // The generated .NET apps have no publish output to split, so their images carry no NuGet layer.
        project.tessera = { base, runtime, cmd: ['/bin/sh', '-c', 'ls /app/dist'], ...(runtime === 'python' ? { pythonPackagesDir: 'third_party/python/site-packages' } : {}) };
        project.targets = { ...project.targets, noop: { executor: 'nx:noop' } };
        await writeFile(file, JSON.stringify(project, null, 2));
      }
      await run('git', ['init', '-q', work], { check: true });
    },
    buildAll: () => [process.execPath, [nxBin, 'run-many', '-t', 'image', '--outputStyle=stream']],
    startupOnly: () => [process.execPath, [nxBin, 'run-many', '-t', 'noop', '--outputStyle=stream', '--skipNxCache']],
    /** Checks every image and returns the layers this step wrote anew (digest → size). */
    async check(work, runIndex, apps) {
      const newLayers = new Map();
      for (const app of apps) {
        const report = JSON.parse(await readFile(join(work, 'dist/images', app.name, 'image.json'), 'utf8'));
        if (report.status === 'failed' || !report.digest) throw new Error(`${app.name}: executor reports ${report.status}`);
        await checkTesseraImage(`${namespace(runIndex)}/${app.name}@${report.digest}`);
        for (const layer of report.layers ?? []) if (layer.rebuilt) newLayers.set(layer.digest, layer.size);
      }
      return { newLayers };
    },
  };
}

/** Uploaded layer bytes against the bytes of the layers written anew (the rest of the upload is configs). */
function uploadAgainstNewLayers(uploaded, newLayers) {
  const newBytes = [...newLayers.values()].reduce((sum, size) => sum + size, 0);
  const layerBytes = uploaded.filter((blob) => newLayers.has(blob.digest)).reduce((sum, blob) => sum + blob.bytes, 0);
  const otherBytes = uploaded.filter((blob) => !newLayers.has(blob.digest)).reduce((sum, blob) => sum + blob.bytes, 0);
  return { newBytes, layerBytes, otherBytes };
}

/** A layered image: exists, has the base and at least one more non-empty layer, and the Cmd from the "tessera" block. */
async function checkTesseraImage(reference) {
  const manifest = JSON.parse((await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reference}`], { check: true })).stdout);
  const config = JSON.parse((await run('skopeo', ['inspect', '--config', '--tls-verify=false', `docker://${reference}`], { check: true })).stdout);
  if ((manifest.layers ?? []).filter((layer) => layer.size > 1024).length < 2) throw new Error(`${reference}: fewer than 2 non-empty layers`);
  if (JSON.stringify(config.config?.Cmd) !== JSON.stringify(['/bin/sh', '-c', 'ls /app/dist'])) throw new Error(`${reference}: Cmd ${JSON.stringify(config.config?.Cmd)}`);
}
