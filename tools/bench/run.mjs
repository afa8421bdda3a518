#!/usr/bin/env node
// Tessera benchmark harness: `npm run bench -- --scenario S8,S7 --scale 1 --runs 3`. Not a test; not run in CI.
import { mkdirSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from './lib/args.mjs';
import { repoRoot } from './lib/dist.mjs';
import { machineInfo, toolVersions } from './lib/machine.mjs';
import { environmentBlock, writeDocs } from './lib/report.mjs';
import { scenarios, scenarioOrder, stepIds } from './scenarios/index.mjs';

const HEADER = `# Benchmarks

Measured with \`tools/bench\` (not part of CI, not tests). Every figure is the median of at least three runs; a run whose work cannot be checked (image missing from the registry, wrong layer count, wrong snapshot) fails the harness instead of being reported. Each section below says when, on what machine and with which tool versions it was measured, so sections from different runs can sit side by side.

Reproduce (Node 22 from the repository, after a build):

\`\`\`sh
export PATH=$PWD/node_modules/.bin:$PATH
npx tsc -b packages/oci packages/builder packages/nx
npm run bench -- --scenario ${scenarioOrder.join(',')} --scale 1 --runs 3
\`\`\`

Flags: \`--scenario\` (comma-separated, default all; \`S1\` to \`S5\` run S1–S5 up to that step, since each step starts from the state the ones before it left, and get a section of their own such as \`S1-S5@4:to-s2\`), \`--scale\` (multiplies input sizes), \`--runs\` (≥ 3), \`--seed\` (generated data), \`--work-dir\` (generated inputs are cached there), \`--contenders\` (S6 and S1–S5: e.g. \`tessera,buildkit\`), \`--label\` (a name for a run's own sections, so a run with other contenders keeps the default sections), \`--no-docs\` (print only); \`--scenario docs\` only rewrites this file's header and keeps every section. Generated inputs live in a temporary directory and are never committed; \`node tools/bench/generate.mjs --out DIR\` writes the bench monorepo alone.

The machine these figures come from was shared with other work (parallel builds and test runs), which the load average under each section shows; with 2 cores, single runs varied by up to 3×, so compare medians and ratios, not single runs.

Contenders in S1–S5: \`tessera\` (the Nx plugin, layered mode), \`buildkit\` and \`buildah\` with \`apps/*/Dockerfile.optimised\`, and \`buildkit-naive\` and \`buildah-naive\` with \`apps/*/Dockerfile.naive\` (\`COPY . .\` of a pruned context). Each section lists the contenders it ran; \`--contenders\` picks them. buildah runs with the overlay storage driver and chroot isolation rather than the vfs driver: vfs copies the whole root filesystem for every layer, so overlay is buildah's faster setting here. Caches: BuildKit keeps its build cache in the daemon, which each run starts afresh (empty data root) for S1 and keeps warm through S2–S5; buildah keeps its \`--layers\` cache in its storage the same way. Neither uses an inline or registry cache: docker 20.10's CLI can export only an inline cache (\`BUILDKIT_INLINE_CACHE=1\`) and import it with \`--cache-from\`, which spares a fresh daemon the rebuild but is slower than a warm daemon's own cache, so the local cache is their best case here. Tessera starts a new process each step and has only its on-disk caches and the registry.

Not measured yet:
- buildah in S3–S5 at scale 4: the scale-4 buildah section has S1 and S2 only (\`--scenario S2\`), three runs of which took 79 minutes; each buildah step there takes 9–16 minutes, so S1–S5 three times would take about four hours. buildah's S1–S5 figures are from \`--scale 0.05\`, \`--scale 0.5\` and \`--scale 1\`; S6 has buildah at scale 1;
- buildah with the naive Dockerfiles (\`buildah-naive\`) at scales other than 1: its section has S1–S5 at \`--scale 1\`, about 18 minutes a run;
- builds of several images in parallel for BuildKit and buildah (S1–S5 build their 12 images one after the other; Nx runs Tessera's as one batch);
- pulls (only pushes), and registries over TLS or with auth.`;

/**
 * `S3` in --scenario stands for S1–S5 run up to S3 (`options.steps`); `S1-S5` beside it runs them all.
 * Returns the scenario ids with the steps replaced by `S1-S5`.
 */
function withSteps(ids, options) {
  const picked = ids.filter((id) => stepIds.includes(id));
  if (picked.length === 0) return ids;
  if (!ids.includes('S1-S5')) options.steps = stepIds.slice(0, Math.max(...picked.map((id) => stepIds.indexOf(id))) + 1).join(',');
  return [...new Set(ids.map((id) => (stepIds.includes(id) ? 'S1-S5' : id)))];
}

/**
 * `S1-S5`, `S1-S5@4`, or with --label `S1-S5@1:buildah`: a labelled run (other contenders) gets a section of
 * its own, as does a run of part of S1–S5 (`S1-S5@4:to-s2` unless labelled).
 */
function sectionId(id, { scale, label, steps }) {
  if (label && !/^[a-z0-9-]+$/.test(label)) throw new Error('--label takes lower-case letters, digits and dashes');
  if (!label && id === 'S1-S5' && steps) label = `to-${steps.split(',').at(-1).toLowerCase()}`;
  if (label) return `${id}@${scale}:${label}`;
  return Number(scale) === 1 ? id : `${id}@${scale}`;
}

async function main() {
  const options = parseArgs(process.argv.slice(2), {
    scenario: scenarioOrder.join(','),
    scale: 1,
    runs: 3,
    seed: 1,
    'work-dir': join(tmpdir(), 'tessera-bench'),
    contenders: 'all',
    label: '',
    'no-docs': false,
  });
  if (Number(process.versions.node.split('.')[0]) < 22) throw new Error(`Node 22 is needed (this is ${process.version}): export PATH=${repoRoot}/node_modules/.bin:$PATH`);
  if (options.runs < 3) throw new Error('--runs must be at least 3: every figure is a median of three or more runs');
  // `--scenario docs` measures nothing and only rewrites docs/benchmarks.md (header, kept sections).
  const selected = options.scenario === 'docs' ? [] : withSteps(options.scenario.split(',').map((id) => id.trim().toUpperCase()).filter(Boolean), options);
  for (const id of selected) if (!scenarios[id]) throw new Error(`unknown scenario ${id}; known: ${scenarioOrder.join(', ')}`);
  mkdirSync(options['work-dir'], { recursive: true });

  const environment = { machine: machineInfo(), versions: await toolVersions(repoRoot), date: new Date().toISOString().slice(0, 10), options };
  const log = (line) => console.error(line);
  log(environmentBlock(environment));
  const sections = new Map();
  const failures = [];
  for (const id of scenarioOrder.filter((id) => selected.includes(id))) {
    console.log(`\n== ${scenarios[id].title}`);
    try {
      const { markdown } = await scenarios[id].run({ options, log, environment });
      sections.set(sectionId(id, options), `${markdown}\n\n${environmentBlock({ ...environment, load: loadavg() })}`);
    } catch (error) {
      failures.push(id);
      console.error(`${id} failed; nothing is reported for it:\n${error.stack ?? error}`);
    }
  }
  if (!options['no-docs'] && (sections.size > 0 || options.scenario === 'docs')) {
    // GOALS is written by hand from the figures; a run keeps it.
    writeDocs(join(repoRoot, 'docs/benchmarks.md'), HEADER, sections, ['GOALS', ...scenarioOrder]);
    log(`\nwrote docs/benchmarks.md (${[...sections.keys()].join(', ')})`);
  }
  if (failures.length > 0) process.exitCode = 1;
}

main().catch((error) => {
  console.error(error.message ?? error);
  process.exitCode = 1;
});
