import { mkdtemp, readFile, rename, rm, utimes, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistryProxy } from '../../../tools/faults/proxy';
import { pushBusyboxBase, runCommand, skopeoInspect } from '../../../tools/images/index';
import { startRegistry, type RunningRegistry } from '../../../tools/registry/registry';
import { buildImage, defaultBuildOptions, LISTED_TREE_MIN_SUBDIRECTORIES, verifyCacheDir, type BuildOptions } from '../src/index';
import { writeContext } from './cli-helpers';
import { rewriteKeepingTimes } from './tree-edits';

let registry: RunningRegistry;
let work: string;
let base: string;
let baseLayers: string[];

interface CacheRun {
  digest: string;
  hits: number[];
  misses: number[];
  timings: Record<string, number>;
}

/** Builds and reports which Dockerfile lines hit or missed the cache (from the build log). */
async function cachedBuild(dir: string, overrides: Partial<BuildOptions> = {}): Promise<CacheRun> {
  const lines: string[] = [];
  const benchmarkFile = join(work, `bench-${Math.random().toString(36).slice(2)}.json`);
  const result = await buildImage(
    defaultBuildOptions({
      context: dir,
      insecureRegistries: [registry.host],
      buildArgs: { BASE: base },
      cache: true,
      cacheCopyLayers: true,
      reproducible: true,
      benchmarkFile,
      log: (line) => lines.push(line),
      ...overrides,
      ...(overrides.buildArgs ? { buildArgs: { BASE: base, ...overrides.buildArgs } } : {}),
    }),
  );
  // Lookups run in parallel, so their log lines come in any order.
  const lineNumbers = (kind: string) =>
    lines
      .flatMap((l) => {
        const m = new RegExp(`cache ${kind} for line (\\d+)`).exec(l);
        return m ? [Number(m[1])] : [];
      })
      .sort((a, b) => a - b);
  return { digest: result.digest, hits: lineNumbers('hit'), misses: lineNumbers('miss'), timings: JSON.parse(await readFile(benchmarkFile, 'utf8')) };
}

/** Requests in the registry's access log after `mark` (a length of the log). */
function requestsSince(mark: number): string[] {
  return registry
    .log()
    .slice(mark)
    .split('\n')
    .filter((l) => /"(GET|HEAD|PUT|POST|PATCH|DELETE) \/v2\//.test(l));
}

const MULTI_STAGE = [
  'ARG BASE',
  'FROM ${BASE} AS build',
  'WORKDIR /src',
  'COPY app/ ./',
  'RUN cat *.txt > /bundle.txt',
  'FROM ${BASE}',
  'COPY --from=build /bundle.txt /app/bundle.txt',
  'RUN wc -c /app/bundle.txt > /app/size',
  'CMD ["cat", "/app/bundle.txt"]',
].join('\n');

beforeAll(async () => {
  registry = await startRegistry();
  work = await mkdtemp(join(tmpdir(), 'tessera-cache-test-'));
  const pushed = await pushBusyboxBase(registry.host, 'cache/busybox');
  base = pushed.reference;
  baseLayers = (await skopeoInspect(base, 'raw')).layers.map((l: { digest: string }) => l.digest);
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
  await registry.stop();
});

describe('layer cache in a registry repository', () => {
  it('rebuilds an unchanged multi-stage Dockerfile from the cache: all hits, no unpack, no base download, no upload, same digest', async () => {
    const dir = await writeContext(work, { Dockerfile: MULTI_STAGE, 'app/a.txt': 'alpha\n', 'app/b.txt': 'beta\n' });
    const destination = `${registry.host}/cache/app:1`;
    const first = await cachedBuild(dir, { destinations: [destination] });
    expect(first.hits).toEqual([]);
    expect(first.misses.sort()).toEqual([4, 5, 7, 8]);
    expect(first.timings.unpack).toBeGreaterThanOrEqual(0);

    const mark = registry.log().length;
    const second = await cachedBuild(dir, { destinations: [destination] });
    expect(second.misses).toEqual([]);
    expect(second.hits.sort()).toEqual([4, 5, 7, 8]);
    expect(second.timings.unpack).toBeUndefined();
    expect(second.digest).toBe(first.digest);
    const requests = requestsSince(mark);
    expect(requests.filter((l) => /"GET \/v2\/[^ ]*\/blobs\/sha256:/.test(l) && baseLayers.some((d) => l.includes(d)))).toEqual([]);
    expect(requests.filter((l) => /"(PUT|PATCH) \/v2\/[^ ]*\/blobs\/uploads\//.test(l))).toEqual([]);
    expect(requests.length).toBeGreaterThan(0);
  });

  it('keeps probing after a miss: in COPY a; COPY b with only a changed, b hits', async () => {
    const dockerfile = 'ARG BASE\nFROM ${BASE}\nCOPY a.txt /a.txt\nCOPY b.txt /b.txt\n';
    const dir = await writeContext(work, { Dockerfile: dockerfile, 'a.txt': 'one\n', 'b.txt': 'two\n' });
    const destination = `${registry.host}/cache/probe:1`;
    await cachedBuild(dir, { destinations: [destination] });
    await writeFile(join(dir, 'a.txt'), 'changed\n');
    const after = await cachedBuild(dir, { destinations: [destination] });
    expect(after.misses).toEqual([3]);
    expect(after.hits).toEqual([4]);
  });

  it("looks a stage's layers up in parallel, not one after another", async () => {
    const dockerfile = 'ARG BASE\nFROM ${BASE}\nCOPY a.txt /a.txt\nCOPY b.txt /b.txt\nCOPY c.txt /c.txt\nRUN cat /a.txt /b.txt /c.txt > /all.txt\n';
    const dir = await writeContext(work, { Dockerfile: dockerfile, 'a.txt': 'a\n', 'b.txt': 'b\n', 'c.txt': 'c\n' });
    await cachedBuild(dir, { destinations: [`${registry.host}/cache/parallel:1`] });
    // Each cache lookup is held until three are waiting (or a second passes): only parallel lookups meet.
    let waiting = 0;
    let mostWaiting = 0;
    const arrivals: Array<() => void> = [];
    const proxy = await startRegistryProxy(registry.host, async (req, res) => {
      if (!/^\/v2\/cache\/parallel\/cache\/manifests\//.test(req.url ?? '')) return false;
      mostWaiting = Math.max(mostWaiting, ++waiting);
      res.once('close', () => waiting--);
      arrivals.splice(0).forEach((wake) => wake());
      const deadline = Date.now() + 1000;
      while (waiting < 3 && Date.now() < deadline) await new Promise<void>((wake) => (arrivals.push(wake), setTimeout(wake, 50)));
      return false;
    });
    try {
      const warm = await cachedBuild(dir, { destinations: [`${proxy.host}/cache/parallel:1`], insecureRegistries: [registry.host, proxy.host] });
      expect(warm.hits).toEqual([3, 4, 5, 6]);
      expect(mostWaiting).toBeGreaterThanOrEqual(3);
    } finally {
      await proxy.stop();
    }
  });
});

describe('cache keys miss when an input changes', () => {
  const destination = () => `${registry.host}/cache/keys:1`;

  it('a renamed file in a copied directory', async () => {
    const dir = await writeContext(work, { Dockerfile: 'ARG BASE\nFROM ${BASE}\nCOPY src/ /src/\n', 'src/x.txt': 'x\n' });
    await cachedBuild(dir, { destinations: [destination()] });
    expect((await cachedBuild(dir, { destinations: [destination()] })).hits).toEqual([3]);
    await rename(join(dir, 'src/x.txt'), join(dir, 'src/y.txt'));
    expect((await cachedBuild(dir, { destinations: [destination()] })).misses).toEqual([3]);
  });

  it('a different --chown', async () => {
    const dir = await writeContext(work, { Dockerfile: 'ARG BASE\nFROM ${BASE}\nCOPY --chown=1000:1000 f.txt /f.txt\n', 'f.txt': 'f\n' });
    await cachedBuild(dir, { destinations: [destination()] });
    await writeFile(join(dir, 'Dockerfile'), 'ARG BASE\nFROM ${BASE}\nCOPY --chown=1001:1000 f.txt /f.txt\n');
    expect((await cachedBuild(dir, { destinations: [destination()] })).misses).toEqual([3]);
  });

  it('a changed ARG used in a COPY', async () => {
    const dir = await writeContext(work, { Dockerfile: 'ARG BASE\nFROM ${BASE}\nARG DEST=/one\nCOPY f.txt ${DEST}\n', 'f.txt': 'f\n' });
    await cachedBuild(dir, { destinations: [destination()] });
    expect((await cachedBuild(dir, { destinations: [destination()] })).hits).toEqual([4]);
    expect((await cachedBuild(dir, { destinations: [destination()], buildArgs: { DEST: '/two' } })).misses).toEqual([4]);
  });

  it('a changed file behind COPY --from=stage', async () => {
    const dockerfile = 'ARG BASE\nFROM ${BASE} AS gen\nCOPY in.txt /in.txt\nRUN cp /in.txt /out.txt\nFROM ${BASE}\nCOPY --from=gen /out.txt /final.txt\n';
    const dir = await writeContext(work, { Dockerfile: dockerfile, 'in.txt': 'v1\n' });
    await cachedBuild(dir, { destinations: [destination()] });
    expect((await cachedBuild(dir, { destinations: [destination()] })).hits).toEqual([3, 4, 6]);
    await writeFile(join(dir, 'in.txt'), 'v2\n');
    const changed = await cachedBuild(dir, { destinations: [destination()] });
    expect(changed.misses).toEqual([3, 4, 6]);
  });

  it('a changed base image digest', async () => {
    const dir = await writeContext(work, { Dockerfile: 'ARG BASE\nFROM ${BASE}\nRUN echo hi > /hi\n' });
    await cachedBuild(dir, { destinations: [destination()] });
    expect((await cachedBuild(dir, { destinations: [destination()] })).hits).toEqual([3]);
    // Same content under another repository with a different media-type family: a different manifest digest.
    const other = await pushBusyboxBase(registry.host, 'cache/busybox-docker', { format: 'docker' });
    expect((await cachedBuild(dir, { destinations: [destination()], buildArgs: { BASE: other.reference } })).misses).toEqual([3]);
  });

  it('a changed secret value hits, a different secret id misses', async () => {
    const secret = join(work, 'secret-value');
    await writeFile(secret, 'first');
    const dockerfile = (id: string) => `ARG BASE\nFROM \${BASE}\nRUN --mount=type=secret,id=${id} echo used-secret > /used\n`;
    const dir = await writeContext(work, { Dockerfile: dockerfile('token') });
    await cachedBuild(dir, { destinations: [destination()], secrets: { token: { src: secret } } });
    await writeFile(secret, 'second');
    expect((await cachedBuild(dir, { destinations: [destination()], secrets: { token: { src: secret } } })).hits).toEqual([3]);
    await writeFile(join(dir, 'Dockerfile'), dockerfile('other'));
    expect((await cachedBuild(dir, { destinations: [destination()], secrets: { other: { src: secret } } })).misses).toEqual([3]);
  });
});

describe('layer cache in a directory', () => {
  it('works with no registry at all, and treats entries older than --cache-ttl as misses', async () => {
    const cacheDir = join(work, 'dir-cache');
    const dir = await writeContext(work, { Dockerfile: 'FROM scratch\nCOPY a.txt /a.txt\n', 'a.txt': 'a\n' });
    const options = { noPush: true, cacheDir, buildArgs: {} };
    expect((await cachedBuild(dir, options)).misses).toEqual([2]);
    expect((await cachedBuild(dir, options)).hits).toEqual([2]);
    const old = new Date(Date.now() - 3 * 3600_000);
    for (const entry of await import('node:fs/promises').then((fs) => fs.readdir(join(cacheDir, 'entries')))) {
      const file = join(cacheDir, 'entries', entry);
      const json = JSON.parse(await readFile(file, 'utf8'));
      json.createdAt = old.toISOString();
      await writeFile(file, JSON.stringify(json));
      await utimes(file, old, old);
    }
    expect((await cachedBuild(dir, { ...options, cacheTtlMs: 3600_000 })).misses).toEqual([2]);
  });

  it('answers an unchanged COPY from its remembered walk, and still misses when a copied file changes behind an equal size and mtime', async () => {
    const cacheDir = join(work, 'walk-cache');
    const dir = await writeContext(work, { Dockerfile: 'FROM scratch\nCOPY src/ /src/\nCOPY b.txt /b.txt\n', 'src/a.txt': 'aaa\n', 'src/deep/c.txt': 'c\n', 'b.txt': 'b\n' });
    const layout = join(work, 'walk-layout');
    const options = { noPush: true, cacheDir, buildArgs: {}, ociLayoutPath: layout };
    const first = await cachedBuild(dir, options);
    expect(first.misses).toEqual([2, 3]);
    const walks = JSON.parse(await readFile(join(cacheDir, 'content-hashes.walks.json'), 'utf8')) as Record<string, string>;
    expect(Object.keys(walks)).toHaveLength(2);
    const again = await cachedBuild(dir, options);
    expect(again.hits).toEqual([2, 3]);
    expect(again.digest).toBe(first.digest);

    await rewriteKeepingTimes(join(dir, 'src/a.txt'), 'AAA\n');
    const rewritten = await cachedBuild(dir, options);
    expect(rewritten.misses).toEqual([2]);
    expect(rewritten.hits).toEqual([3]);
    expect(rewritten.digest).not.toBe(first.digest);
    const bundle = join(work, 'walk-bundle');
    await runCommand('umoci', ['unpack', '--rootless', '--image', `${layout}:latest`, bundle]);
    expect(await readFile(join(bundle, 'rootfs/src/a.txt'), 'utf8')).toBe('AAA\n');
  });

  it('answers a big directory COPY from its find listing, honours `**/name` ignores there, and without find walks it', async () => {
    const cacheDir = join(work, 'listing-cache');
    const files: Record<string, string> = { Dockerfile: 'FROM scratch\nCOPY deps/ /deps/\n', '.dockerignore': '**/Dockerfile.*\n' };
    for (let i = 0; i < LISTED_TREE_MIN_SUBDIRECTORIES + 2; i++) files[`deps/pkg${i}/index.js`] = `module.exports = ${i};\n`;
    files['deps/pkg0/Dockerfile.dev'] = 'FROM a\n';
    const dir = await writeContext(work, files);
    const layout = join(work, 'listing-layout');
    const options = { noPush: true, cacheDir, buildArgs: {}, ociLayoutPath: layout };
    const first = await cachedBuild(dir, options);
    expect(first.misses).toEqual([2]);
    expect((await cachedBuild(dir, options)).hits).toEqual([2]);
    // An ignored file below changes: the listing leaves it out, so the layer still hits.
    await writeFile(join(dir, 'deps/pkg0/Dockerfile.dev'), 'FROM b\n');
    expect((await cachedBuild(dir, options)).hits).toEqual([2]);

    const file = join(dir, 'deps/pkg7/index.js');
    await rewriteKeepingTimes(file, 'module.exports = 70;\n');
    const changed = await cachedBuild(dir, options);
    expect(changed.misses).toEqual([2]);
    const bundle = join(work, 'listing-bundle');
    await runCommand('umoci', ['unpack', '--rootless', '--image', `${layout}:latest`, bundle]);
    expect(await readFile(join(bundle, 'rootfs/deps/pkg7/index.js'), 'utf8')).toBe('module.exports = 70;\n');
    expect(existsSync(join(bundle, 'rootfs/deps/pkg0/Dockerfile.dev'))).toBe(false);

    // Without find on the PATH the tree is walked in Node: the same answers, by another walk key (a
    // new one in the memo shows the builds above took the listing).
    const walkKeys = async () => Object.keys(JSON.parse(await readFile(join(cacheDir, 'content-hashes.walks.json'), 'utf8'))).length;
    const keysBefore = await walkKeys();
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      expect((await cachedBuild(dir, options)).misses).toEqual([]);
      expect(await walkKeys()).toBe(keysBefore + 1);
      await writeFile(file, 'module.exports = 71;\n');
      expect((await cachedBuild(dir, options)).misses).toEqual([2]);
    } finally {
      process.env.PATH = path;
    }
  });

  it('keeps unpacked base trees by chain ID, so a later RUN copies the base instead of extracting it', async () => {
    const cacheDir = join(work, 'unpack-cache');
    const logs: string[] = [];
    const dir = await writeContext(work, { Dockerfile: 'ARG BASE\nFROM ${BASE}\nARG N\nRUN echo $N > /n\n' });
    const options = (n: string) => ({ noPush: true, cacheDir, cache: false, buildArgs: { BASE: base, N: n }, insecureRegistries: [registry.host], log: (l: string) => logs.push(l) });
    await buildImage(defaultBuildOptions({ context: dir, ...options('1') }));
    expect(logs.filter((l) => l.startsWith('rootfs:'))).toEqual([`rootfs: 0 of ${baseLayers.length} layers copied from the unpack cache, the rest extracted`]);
    logs.length = 0;
    await buildImage(defaultBuildOptions({ context: dir, ...options('2') }));
    expect(logs.filter((l) => l.startsWith('rootfs:'))).toEqual([`rootfs: ${baseLayers.length} of ${baseLayers.length} layers copied from the unpack cache, the rest extracted`]);
    expect((await verifyCacheDir(cacheDir)).clean).toBe(true);
  });

  it('stays intact when four builds share it at once', async () => {
    const cacheDir = join(work, 'shared-cache');
    const contexts = await Promise.all(
      [1, 2, 3, 4].map((n) =>
        writeContext(work, { Dockerfile: 'ARG BASE\nFROM ${BASE}\nCOPY common.txt /common.txt\nCOPY own.txt /own.txt\nRUN cat /common.txt /own.txt > /both\n', 'common.txt': 'shared\n', 'own.txt': `build ${n}\n` }),
      ),
    );
    const runs = await Promise.all(contexts.map((dir) => cachedBuild(dir, { noPush: true, cacheDir })));
    expect(runs).toHaveLength(4);
    const report = await verifyCacheDir(cacheDir);
    expect(report.clean).toBe(true);
    expect(report.entriesChecked).toBeGreaterThanOrEqual(4 * 2 + 1);
    const again = await Promise.all(contexts.map((dir) => cachedBuild(dir, { noPush: true, cacheDir })));
    for (const run of again) expect(run.misses).toEqual([]);
  });
});
