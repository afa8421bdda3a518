import { join } from 'node:path';
import { pushRuntimeBase } from '../lib/base-image.mjs';
import { availableBuilders, checkPushedImage, dockerfileBuilders } from '../lib/builders.mjs';
import { repoRoot } from '../lib/dist.mjs';
import { runMeasured } from '../lib/measure.mjs';
import { ensureMonorepo } from '../lib/monorepo.mjs';
import { startRegistry, summariseAccessLog } from '../lib/registry.mjs';
import { markdownTable, printTable } from '../lib/report.mjs';
import { median, mib, ratio, seconds } from '../lib/stats.mjs';

const APP = 'node-app-0';
const DOCKERFILE = `apps/${APP}/Dockerfile.optimised`;
export const s6 = {
  id: 'S6',
  title: 'S6: Dockerfile build with RUN (3 stages), cold and warm',
  async run({ options, log }) {
    const repo = await ensureMonorepo(options['work-dir'], options.seed, options.scale);
    const registry = await startRegistry();
    // S6 is the optimised three-stage Dockerfile; the naive variants are S1–S5's.
    const builders = Object.fromEntries(Object.entries(dockerfileBuilders({ host: registry.host, base: await pushRuntimeBase(repo.root, registry.host) })).filter(([, b]) => !b.variant));
    const available = await availableBuilders(builders, log, options.contenders);
    const samples = Object.fromEntries(Object.keys(available).flatMap((name) => [[`${name} cold`, []], [`${name} warm`, []]]));
    try {
      for (let runIndex = 0; runIndex < options.runs; runIndex++) {
        for (const [name, contender] of Object.entries(available)) {
          await contender.cold();
          for (const phase of ['cold', 'warm']) {
            const tag = `${phase}-${runIndex}`;
            registry.takeAccessLog();
            const [command, args] = contender.command({ context: repo.root, dockerfile: join(repo.root, DOCKERFILE), reference: `${registry.host}/bench/s6-${name}:${tag}` });
            const result = await runMeasured(command, args, { cwd: repoRoot });
            if (result.code !== 0) throw new Error(`S6 ${name} ${phase} run ${runIndex} failed (${result.code}):\n${(result.stderr || result.stdout).slice(-3000)}`);
            if (contender.daemonPeakRssKiB) result.maxRssKiB += await contender.daemonPeakRssKiB();
            const access = await summariseAccessLog(registry.takeAccessLog(), registry.dataDir);
            const layers = await checkPushedImage(`${registry.host}/bench/s6-${name}:${tag}`);
            samples[`${name} ${phase}`].push({ ms: result.ms, rssKiB: result.maxRssKiB, layers, ...access });
            log(`S6 run ${runIndex + 1}/${options.runs} ${name} ${phase}: ${seconds(result.ms)} s, ${layers} layers, ${mib(access.uploadedBytes)} MiB uploaded, ${access.requests} requests, peak RSS ${mib(result.maxRssKiB * 1024)} MiB`);
          }
        }
      }
    } finally {
      for (const contender of Object.values(available)) await contender.stop();
      await registry.stop();
    }
    const summary = Object.fromEntries(
      Object.entries(samples).map(([key, list]) => [key, { ms: median(list.map((s) => s.ms)), rssKiB: median(list.map((s) => s.rssKiB)), uploadedBytes: median(list.map((s) => s.uploadedBytes)), requests: median(list.map((s) => s.requests)), layers: list[0].layers, all: list.map((s) => seconds(s.ms)).join(', ') }]),
    );
    const headers = ['contender', 'median s', 'runs (s)', 'time vs Tessera (same phase)', 'layers', 'uploaded MiB', 'requests', 'peak RSS MiB'];
    const rows = Object.entries(summary).map(([key, s]) => {
      const phase = key.split(' ')[1];
      return [key, seconds(s.ms), s.all, ratio(s.ms, summary[`tessera ${phase}`]?.ms ?? 0), s.layers, mib(s.uploadedBytes), s.requests, mib(s.rssKiB * 1024)];
    });
    printTable(headers, rows);
    const markdown = [
      `## ${this.title}`,
      '',
      `\`${DOCKERFILE}\` of the generated monorepo (${repo.nodeModules.files.toLocaleString('en')} files / ${mib(repo.nodeModules.bytes)} MiB in node_modules): stage \`deps\` copies the dependency manifests and the third-party tree, then a RUN "installs" it (\`cp -a\` into /app plus pruning: a RUN that creates ~${repo.nodeModules.files.toLocaleString('en')} files); stage \`build\` copies each module's manifest, then each module's sources, and a RUN concatenates them; the final stage copies both results onto the in-repo runtime base (busybox, pushed to the local registry). Every contender builds and pushes to the same local \`docker-registry\`; the measured time covers build and push. Cold: nothing cached (Tessera: a fresh --cache-dir and cache repository; buildah: a fresh --root; BuildKit: a new dockerd with an empty --data-root). Warm: the same build again right after. A run counts only if the pushed image exists with at least 3 non-empty layers and the app's Cmd. "time vs Tessera" divides by Tessera's time in the same phase: above 1× is slower than Tessera.`,
      '',
      markdownTable(headers, rows),
      '',
      'Tessera runs with `--cache=true --cache-copy-layers --cache-dir`, so its warm build looks every layer up in the cache; BuildKit and buildah reuse every step. buildah uses the overlay storage driver with chroot isolation. Peak RSS is the largest process the command waited for (for BuildKit: the docker client plus the dockerd daemon, whose peak since the cold start covers BuildKit, which runs inside it).',
      '',
      'Commands per run:',
      '```sh',
      ...Object.values(available).map((c) => c.describe(DOCKERFILE)),
      '```',
    ].join('\n');
    return { markdown, summary };
  },
};
