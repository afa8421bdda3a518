import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { pushBusyboxBase, readLayoutImage, skopeoInspect } from '../../tools/images/index';
import { ALL_FAULTS, startFaultProxy, type FaultKind, type FaultProxy } from '../../tools/faults/proxy';
import {
  ensureCliBuilt,
  listTags,
  missingBlobs,
  pullWithSkopeo,
  skopeoCanInspect,
  skopeoDigest,
  summarize,
  tessera,
  writeRandomFile,
} from './helpers';

const registry = inject('registryHost');
/** Short enough that a stalled request costs seconds, long enough for a loaded 2-core runner. */
const TIMEOUT_ENV = { TESSERA_REGISTRY_TIMEOUT_MS: '3000' };
const RUNS = Number(process.env.TESSERA_FAULT_RUNS ?? 20);
/** Runs of the build that push the 200 MB layer; the others push a smaller one to keep the suite near 3 minutes. */
const LARGE_BUILD_RUNS = Number(process.env.TESSERA_FAULT_LARGE_RUNS ?? 2);
const LARGE = 200 << 20;
const SMALL = 8 << 20;

let tmp: string;
const faultTotals = Object.fromEntries(ALL_FAULTS.map((f) => [f, 0])) as Record<FaultKind, number>;
const proxies: FaultProxy[] = [];

async function faultyProxy(seed: number, rate: number, rules: Parameters<typeof startFaultProxy>[0]['rules'] = []): Promise<FaultProxy> {
  const proxy = await startFaultProxy({ target: registry, rate, seed, rules, stallMs: 60_000 });
  proxies.push(proxy);
  return proxy;
}

function addCounts(proxy: FaultProxy): void {
  for (const [kind, n] of Object.entries(proxy.counts)) faultTotals[kind as FaultKind] += n;
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'tessera-faults-'));
  await ensureCliBuilt();
  await pushBusyboxBase(registry, 'reliability/busybox');
}, 180_000);

afterAll(async () => {
  for (const proxy of proxies) await proxy.stop();
  await rm(tmp, { recursive: true, force: true });
  console.log(`faults injected over the suite: ${JSON.stringify(faultTotals)}`);
});

describe('tessera copy through a proxy that faults 10% of requests', () => {
  let layout: string;
  let layoutDigest: string;

  beforeAll(async () => {
    // A four-layer source image: the busybox base and three COPY layers of random bytes.
    const context = await mkdtemp(join(tmp, 'copy-ctx-'));
    for (const [name, size] of [['a.bin', 1 << 20], ['b.bin', 3 << 20], ['c.bin', 6 << 20]] as const) await writeRandomFile(join(context, name), size);
    await writeFile(join(context, 'Dockerfile'), `FROM ${registry}/reliability/busybox\nCOPY a.bin /a\nCOPY b.bin /b\nCOPY c.bin /c\n`);
    layout = join(tmp, 'copy-layout');
    const built = await tessera(['build', '--context', context, '--no-push', '--oci-layout-path', layout, '--insecure-registry', registry]);
    expect(built.code, built.stderr).toBe(0);
    layoutDigest = (await readLayoutImage(layout, 'latest')).manifestDigest;
  }, 120_000);

  it(`copies a multi-layer image from an OCI layout ${RUNS} times out of ${RUNS}, every digest verified`, async () => {
    const durations: number[] = [];
    const failures: string[] = [];
    for (let run = 0; run < RUNS; run++) {
      // Besides the random faults, every other run loses one upload mid-body, so that fault is always exercised.
      const proxy = await faultyProxy(1000 + run, 0.1, run % 2 ? [] : [{ fault: 'reset-request', when: (r) => r.method === 'PUT' && r.url.pathname.includes('/blobs/uploads/'), times: 1 }]);
      const repository = `reliability/copy-${run}-${Date.now()}`;
      const started = Date.now();
      const result = await tessera(['copy', '--insecure-registry', proxy.host, `oci:${layout}:latest`, `docker://${proxy.host}/${repository}:v1`], TIMEOUT_ENV);
      durations.push(Date.now() - started);
      addCounts(proxy);
      await proxy.stop();
      if (result.code !== 0) {
        failures.push(`run ${run} (seed ${1000 + run}, faults ${JSON.stringify(proxy.requests.filter((r) => r.fault).map((r) => `${r.fault} ${r.method} ${r.url}`))}): ${result.stderr.trim()}`);
        continue;
      }
      // Checked directly against the registry, not through the proxy.
      expect(await skopeoDigest(`${registry}/${repository}:v1`)).toBe(layoutDigest);
      expect(await missingBlobs(registry, repository, 'v1')).toEqual([]);
      await pullWithSkopeo(`${registry}/${repository}:v1`, tmp);
    }
    console.log(summarize('copy with 10% faults', durations));
    expect(failures).toEqual([]);
    expect(Object.values(faultTotals).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
  }, 600_000);
});

describe('tessera build pushing through a proxy that faults 10% of requests', () => {
  let largeContext: string;
  let smallContext: string;
  const dockerfile = (proxyHost: string) =>
    `FROM ${proxyHost}/reliability/busybox\nARG RUN_ID\nRUN echo "run $RUN_ID" > /run-marker && test -x /bin/busybox\nCOPY big.bin /data/big.bin\n`;

  beforeAll(async () => {
    largeContext = await mkdtemp(join(tmp, 'large-ctx-'));
    smallContext = await mkdtemp(join(tmp, 'small-ctx-'));
    await writeRandomFile(join(largeContext, 'big.bin'), LARGE);
    await writeRandomFile(join(smallContext, 'big.bin'), SMALL);
  }, 120_000);

  it(`builds, pulls the base and pushes ${RUNS} times out of ${RUNS} (${LARGE_BUILD_RUNS} with a 200 MB layer), every digest verified`, async () => {
    const durations: number[] = [];
    const failures: string[] = [];
    for (let run = 0; run < RUNS; run++) {
      // The base layer's mount is refused once per run (too rare at random), forcing an upload.
      const proxy = await faultyProxy(2000 + run, 0.1, [{ fault: 'refuse-mount', times: 1 }]);
      const context = run < LARGE_BUILD_RUNS ? largeContext : smallContext;
      await writeFile(join(context, 'Dockerfile'), dockerfile(proxy.host));
      const repository = `reliability/build-${run}-${Date.now()}`;
      const started = Date.now();
      const result = await tessera(
        ['build', '--context', context, '--destination', `${proxy.host}/${repository}:v1`, '--insecure-registry', proxy.host, '--push-retry', '4', '--build-arg', `RUN_ID=${run}`],
        TIMEOUT_ENV,
      );
      durations.push(Date.now() - started);
      addCounts(proxy);
      await proxy.stop();
      if (result.code !== 0) {
        failures.push(`run ${run} (seed ${2000 + run}, faults ${JSON.stringify(proxy.requests.filter((r) => r.fault).map((r) => `${r.fault} ${r.method} ${r.url}`))}): ${result.stderr.trim().split('\n').slice(-3).join(' | ')}`);
        continue;
      }
      const digest = result.stdout.trim().split('\n').pop();
      expect(await skopeoDigest(`${registry}/${repository}:v1`)).toBe(digest);
      expect(await missingBlobs(registry, repository, 'v1')).toEqual([]);
      const manifest = await skopeoInspect(`${registry}/${repository}:v1`, 'raw');
      expect(manifest.layers).toHaveLength(3);
      expect(manifest.layers[2].size).toBeGreaterThan(run < LARGE_BUILD_RUNS ? LARGE : SMALL);
      await pullWithSkopeo(`${registry}/${repository}:v1`, tmp);
    }
    console.log(summarize('build with 10% faults', durations));
    expect(failures).toEqual([]);
    // Over both suites every kind of fault happened at least once.
    for (const kind of ALL_FAULTS) expect(faultTotals[kind], kind).toBeGreaterThan(0);
  }, 900_000);
});

describe('every request faulted', () => {
  it('tessera copy fails within a bounded time with a one-line error, and no tag appears', async () => {
    const proxy = await faultyProxy(3000, 1);
    const repository = `reliability/copy-fail-${Date.now()}`;
    const layout = join(tmp, 'fail-layout');
    const built = await tessera(['build', '--context', await writeContextWith(tmp), '--no-push', '--oci-layout-path', layout, '--insecure-registry', registry]);
    expect(built.code, built.stderr).toBe(0);
    const started = Date.now();
    const result = await tessera(['copy', '--insecure-registry', proxy.host, `oci:${layout}`, `docker://${proxy.host}/${repository}:v1`], TIMEOUT_ENV);
    const elapsed = Date.now() - started;
    expect(result.code).toBe(1);
    // 5 attempts, each at most the 3 s timeout, plus backoff (at most 0.25+0.5+1+2 s): well under 30 s.
    expect(elapsed).toBeLessThan(30_000);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^tessera: .*failed: (UNAVAILABLE|TOOMANYREQUESTS|UNREACHABLE|TIMEOUT)/);
    expect(await listTags(registry, repository)).toEqual([]);
    expect(await skopeoCanInspect(`${registry}/${repository}:v1`)).toBe(false);
  }, 120_000);

  it('tessera build fails within a bounded time with a one-line error, and no tag appears', async () => {
    const proxy = await faultyProxy(3001, 1);
    const repository = `reliability/build-fail-${Date.now()}`;
    const context = await writeContextWith(tmp);
    const started = Date.now();
    // The base comes straight from the registry: the faults hit the push.
    const result = await tessera(['build', '--context', context, '--destination', `${proxy.host}/${repository}:v1`, '--insecure-registry', proxy.host, '--insecure-registry', registry, '--push-retry', '2'], TIMEOUT_ENV);
    const elapsed = Date.now() - started;
    expect(result.code).toBe(1);
    // 5 attempts at most 3 s each plus at most 3.75 s of backoff, plus the build itself.
    expect(elapsed).toBeLessThan(45_000);
    const errors = result.stderr.trim().split('\n').filter((l) => l.startsWith('tessera: '));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/failed: (UNAVAILABLE|TOOMANYREQUESTS|UNREACHABLE|TIMEOUT)/);
    expect(await listTags(registry, repository)).toEqual([]);
    expect(await skopeoCanInspect(`${registry}/${repository}:v1`)).toBe(false);
  }, 120_000);

  it('when only manifest uploads fail, the blobs arrive but no tag points at them', async () => {
    const proxy = await faultyProxy(3002, 0, [{ fault: 'status-503', when: (r) => r.method === 'PUT' && r.url.pathname.includes('/manifests/') }]);
    const repository = `reliability/manifest-fail-${Date.now()}`;
    const context = await writeContextWith(tmp);
    const result = await tessera(['build', '--context', context, '--destination', `${proxy.host}/${repository}:v1`, '--insecure-registry', proxy.host, '--insecure-registry', registry], TIMEOUT_ENV);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/manifest put on .* failed: UNAVAILABLE \(HTTP 503\)/);
    expect(proxy.requests.some((r) => r.method === 'PUT' && r.url.includes('/blobs/uploads/') && !r.fault)).toBe(true);
    expect(await listTags(registry, repository)).toEqual([]);
  }, 120_000);
});

async function writeContextWith(parent: string): Promise<string> {
  const context = await mkdtemp(join(parent, 'fail-ctx-'));
  await writeRandomFile(join(context, 'data.bin'), 1 << 20);
  await writeFile(join(context, 'Dockerfile'), `FROM ${registry}/reliability/busybox\nCOPY data.bin /data.bin\n`);
  return context;
}
