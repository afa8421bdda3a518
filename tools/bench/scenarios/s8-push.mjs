import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadDist, repoRoot, tesseraBin } from '../lib/dist.mjs';
import { runMeasured, run } from '../lib/measure.mjs';
import { writeOciLayout } from '../lib/oci-layout.mjs';
import { randomStream } from '../lib/random.mjs';
import { startRegistry, summariseAccessLog } from '../lib/registry.mjs';
import { markdownTable, printTable } from '../lib/report.mjs';
import { median, mib, ratio, seconds } from '../lib/stats.mjs';

const LAYER_COUNT = 8;
const LAYER_SHARES = [0.25, 0.2, 0.15, 0.12, 0.1, 0.08, 0.06, 0.04]; // base-like first, app-like last
const TAG = 'bench';

/** 500 MB × scale of incompressible data in 8 gzip layers, written once per seed and scale and reused. */
async function ensureLayout(workDir, seed, scale) {
  const layoutDir = join(workDir, `s8-layout-seed${seed}-scale${scale}`);
  const marker = join(layoutDir, 'manifest.json');
  if (existsSync(marker)) return { layoutDir, manifest: JSON.parse(await readFile(marker, 'utf8')) };
  await rm(layoutDir, { recursive: true, force: true });
  const { writeLayer } = loadDist('packages/builder/dist/layer/writer.js');
  const scratch = join(layoutDir, 'scratch');
  const totalBytes = Math.round(500e6 * scale);
  const layers = [];
  for (let index = 0; index < LAYER_COUNT; index++) {
    const layerBytes = Math.round(totalBytes * LAYER_SHARES[index]);
    const files = [];
    const random = randomStream(seed, `s8-layer-${index}`);
    for (let part = 0, left = layerBytes; left > 0; part++) {
      const fileBytes = Math.min(left, 16 << 20);
      const source = join(scratch, `${index}-${part}.bin`);
      await mkdir(scratch, { recursive: true });
      await new Promise((resolve, reject) => {
        const out = createWriteStream(source);
        out.once('error', reject);
        for (let written = 0; written < fileBytes; written += 1 << 20) out.write(random.next(Math.min(1 << 20, fileBytes - written)));
        out.end(resolve);
      });
      files.push({ path: `data/layer${index}/part${part}.bin`, type: 'file', mode: 0o644, uid: 0, gid: 0, size: fileBytes, source });
      left -= fileBytes;
    }
    const entries = [
      { path: 'data', type: 'directory', mode: 0o755, uid: 0, gid: 0 },
      { path: `data/layer${index}`, type: 'directory', mode: 0o755, uid: 0, gid: 0 },
      ...files,
    ];
    layers.push(await writeLayer(entries, { compression: 'gzip', level: 1, outputDir: join(layoutDir, 'layers'), mtime: new Date(0) }));
    await rm(scratch, { recursive: true, force: true });
  }
  const manifest = await writeOciLayout(layoutDir, TAG, layers);
  await rm(join(layoutDir, 'layers'), { recursive: true, force: true });
  await writeFile(marker, JSON.stringify(manifest));
  return { layoutDir, manifest };
}

/** The pushed manifest must list exactly the source layers: otherwise the run's figure is not reported. */
async function checkPushed(host, repository, expected) {
  const { stdout } = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${host}/${repository}:${TAG}`], { check: true });
  const pushed = JSON.parse(stdout);
  const digests = (pushed.layers ?? []).map((layer) => layer.digest);
  if (digests.length !== LAYER_COUNT || digests.some((digest, i) => digest !== expected.layers[i].digest)) {
    throw new Error(`${repository}: pushed manifest has layers ${digests.join(', ')}, expected the ${LAYER_COUNT} source layers`);
  }
}

const contenders = {
  tessera: (layoutDir, host, repository) => [process.execPath, [tesseraBin, 'copy', '--insecure-registry', host, `oci:${layoutDir}:${TAG}`, `docker://${host}/${repository}:${TAG}`]],
  skopeo: (layoutDir, host, repository) => ['skopeo', ['copy', '--dest-tls-verify=false', `oci:${layoutDir}:${TAG}`, `docker://${host}/${repository}:${TAG}`]],
};

export const s8 = {
  id: 'S8',
  title: 'S8: push a 500 MB, 8-layer image from an OCI layout',
  async run({ options, log }) {
    const { layoutDir, manifest } = await ensureLayout(options['work-dir'], options.seed, options.scale);
    const imageBytes = manifest.layers.reduce((sum, layer) => sum + layer.size, 0);
    log(`S8: layout ${layoutDir} (${mib(imageBytes)} MiB in ${LAYER_COUNT} layers)`);
    await run('sh', ['-c', `cat ${layoutDir}/blobs/sha256/* > /dev/null`]); // same warm page cache for both
    const samples = { tessera: [], skopeo: [] };
    for (let runIndex = 0; runIndex < options.runs; runIndex++) {
      const order = runIndex % 2 === 0 ? ['tessera', 'skopeo'] : ['skopeo', 'tessera'];
      for (const name of order) {
        const registry = await startRegistry(); // fresh storage: nothing to skip or mount
        try {
          const repository = `bench/s8-${name}-${runIndex}`;
          const [command, args] = contenders[name](layoutDir, registry.host, repository);
          const result = await runMeasured(command, args, { cwd: repoRoot });
          if (result.code !== 0) throw new Error(`S8 ${name} run ${runIndex} failed (${result.code}):\n${result.stderr.slice(-2000)}`);
          const access = await summariseAccessLog(registry.takeAccessLog(), registry.dataDir);
          await checkPushed(registry.host, repository, manifest);
          samples[name].push({ ms: result.ms, rssKiB: result.maxRssKiB, ...access });
          log(`S8 run ${runIndex + 1}/${options.runs} ${name}: ${seconds(result.ms)} s, ${mib(access.uploadedBytes)} MiB uploaded, ${access.requests} requests, peak RSS ${mib(result.maxRssKiB * 1024)} MiB`);
        } finally {
          await registry.stop();
        }
      }
    }
    const summary = Object.fromEntries(
      Object.entries(samples).map(([name, list]) => [
        name,
        {
          ms: median(list.map((s) => s.ms)),
          rssKiB: median(list.map((s) => s.rssKiB)),
          uploadedBytes: median(list.map((s) => s.uploadedBytes)),
          requests: median(list.map((s) => s.requests)),
          blobUploads: median(list.map((s) => s.blobUploads)),
          all: list.map((s) => seconds(s.ms)).join(', '),
        },
      ]),
    );
    const headers = ['contender', 'median s', 'runs (s)', 'MB/s', 'speed vs Tessera', 'uploaded MiB', 'requests', 'blob PUTs', 'peak RSS MiB'];
    const rows = Object.entries(summary).map(([name, s]) => [
      name,
      seconds(s.ms),
      s.all,
      (imageBytes / 1e6 / (s.ms / 1000)).toFixed(0),
      ratio(summary.tessera.ms, s.ms).replace('×', '×'),
      mib(s.uploadedBytes),
      s.requests,
      s.blobUploads,
      mib(s.rssKiB * 1024),
    ]);
    printTable(headers, rows);
    const speedup = summary.skopeo.ms / summary.tessera.ms;
    const markdown = [
      `## ${this.title}`,
      '',
      `An OCI layout of ${mib(imageBytes)} MiB (incompressible seeded data, gzip level 1, ${LAYER_COUNT} layers of 25 % down to 4 %) is copied to a local \`docker-registry\` over plain HTTP. Each run uses a fresh registry, so every blob is uploaded; the contenders alternate order between runs, and the layout is in the page cache for both. A run counts only if the pushed manifest lists the ${LAYER_COUNT} source layers (checked with \`skopeo inspect --raw\`). Uploaded bytes are the sizes of the blobs whose upload finished (\`PUT …/blobs/uploads/…?digest=\`) in the registry's access log. "speed vs Tessera" is the contender's time divided into Tessera's: above 1× means faster than Tessera.`,
      '',
      markdownTable(headers, rows),
      '',
      `**Result:** Tessera is ${speedup.toFixed(2)}× skopeo's speed (goal: ≥ 1.0×) — ${speedup >= 1 ? 'goal met' : 'goal not met'}.`,
      '',
      'Commands per run:',
      '```sh',
      `node packages/builder/bin/tessera.js copy --insecure-registry HOST oci:LAYOUT:${TAG} docker://HOST/bench/s8-tessera-N:${TAG}`,
      `skopeo copy --dest-tls-verify=false oci:LAYOUT:${TAG} docker://HOST/bench/s8-skopeo-N:${TAG}`,
      '```',
    ].join('\n');
    return { markdown, summary };
  },
};
