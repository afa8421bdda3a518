import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { pushBusyboxBase } from '../../tools/images/index';
import { seededRandom } from '../../tools/faults/proxy';
import { ensureCliBuilt, incompleteTags, missingBlobs, pullWithSkopeo, skopeoDigest, startTessera, summarize, tessera, writeRandomFile } from './helpers';

const registry = inject('registryHost');
const KILLS = Number(process.env.TESSERA_CRASH_KILLS ?? 20);
/** Upper bound of the random wait between the first push request and the SIGKILL. */
const KILL_WINDOW_MS = 1500;

let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'tessera-crash-'));
  await ensureCliBuilt();
  await pushBusyboxBase(registry, 'reliability/busybox');
}, 180_000);

afterAll(() => rm(tmp, { recursive: true, force: true }));

/**
 * Starts `tessera ARGS --verbose`, waits for its first registry request matching `pushStarted`, then a seeded
 * random time, and SIGKILLs it. Returns whether the kill landed before the process finished.
 */
async function killDuringPush(args: string[], pushStarted: RegExp, delayMs: number): Promise<{ killed: boolean; stderr: string }> {
  const proc = startTessera(args);
  let armed = false;
  proc.child.stderr!.on('data', (chunk: Buffer) => {
    if (armed || !pushStarted.test(chunk.toString())) return;
    armed = true;
    setTimeout(() => proc.child.kill('SIGKILL'), delayMs);
  });
  const result = await proc.result;
  return { killed: result.signal === 'SIGKILL', stderr: result.stderr };
}

describe('SIGKILL during a push', () => {
  it(`build --cache with a --cache-dir, killed ${KILLS} times: no tag ever points to missing blobs, the cache stays clean, the rerun succeeds`, async () => {
    const random = seededRandom(4242);
    const context = await mkdtemp(join(tmp, 'ctx-'));
    const cacheDir = join(tmp, 'cache');
    const repository = `reliability/crash-${Date.now()}`;
    await writeFile(join(context, 'Dockerfile'), `FROM ${registry}/reliability/busybox\nARG ROUND\nRUN echo "round $ROUND" > /round\nCOPY fresh.bin /fresh.bin\nCOPY stable.txt /stable.txt\n`);
    await writeFile(join(context, 'stable.txt'), 'the same every round\n');
    const args = (round: number) => [
      'build', '--context', context, '--cache=true', '--cache-dir', cacheDir, '--cache-copy-layers',
      '--destination', `${registry}/${repository}:v1`, '--destination', `${registry}/${repository}:round-${round}`,
      '--insecure-registry', registry, '--build-arg', `ROUND=${round % 4}`, '--verbosity=debug',
    ];
    // The first request that writes to a registry: a blob HEAD before an upload, a POST, or a PUT.
    const pushStarted = new RegExp(`^(HEAD|POST|PUT) http://${registry.replace(/\./g, '\\.')}/v2/${repository}`, 'm');
    let killed = 0;
    const durations: number[] = [];
    for (let round = 0; round < KILLS; round++) {
      // New content each round, so every round has layers to upload (and cache) when the kill comes.
      await writeRandomFile(join(context, 'fresh.bin'), (8 + Math.floor(random() * 24)) << 20);
      const delay = Math.floor(random() * KILL_WINDOW_MS);
      const started = Date.now();
      const outcome = await killDuringPush(args(round), pushStarted, delay);
      durations.push(Date.now() - started);
      if (outcome.killed) killed++;
      else expect(outcome.stderr).toContain('pushed ');
      expect(await incompleteTags(registry, repository), `round ${round}, kill after ${delay} ms`).toEqual([]);
      expect(await incompleteTags(registry, `${repository}/cache`), `round ${round}, cache repo`).toEqual([]);
      const verify = await tessera(['cache', 'verify', '--cache-dir', cacheDir]);
      expect(verify.code, `round ${round}: ${verify.stdout}${verify.stderr}`).toBe(0);
    }
    console.log(`${summarize('killed builds', durations)}; ${killed} of ${KILLS} killed before they finished`);
    // Most kills must land mid-push, or the test proves little.
    expect(killed).toBeGreaterThanOrEqual(KILLS / 2);

    const rerun = await tessera(args(KILLS));
    expect(rerun.code, rerun.stderr).toBe(0);
    const digest = rerun.stdout.trim().split('\n').pop()!;
    expect(await skopeoDigest(`${registry}/${repository}:v1`)).toBe(digest);
    expect(await missingBlobs(registry, repository, 'v1')).toEqual([]);
    await pullWithSkopeo(`${registry}/${repository}:v1`, tmp);
    const verify = await tessera(['cache', 'verify', '--cache-dir', cacheDir]);
    expect(verify.code, verify.stdout).toBe(0);
  }, 900_000);

  it('copy killed mid-push leaves no tag to an incomplete image, and the rerun completes it', async () => {
    const random = seededRandom(77);
    const context = await mkdtemp(join(tmp, 'copy-ctx-'));
    for (const name of ['a.bin', 'b.bin', 'c.bin']) await writeRandomFile(join(context, name), 12 << 20);
    await writeFile(join(context, 'Dockerfile'), `FROM ${registry}/reliability/busybox\nCOPY a.bin /a\nCOPY b.bin /b\nCOPY c.bin /c\n`);
    const layout = join(tmp, 'copy-layout');
    const built = await tessera(['build', '--context', context, '--no-push', '--oci-layout-path', layout, '--insecure-registry', registry]);
    expect(built.code, built.stderr).toBe(0);
    const layoutDigest = (JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> }).manifests[0]!.digest;
    const repository = `reliability/crash-copy-${Date.now()}`;
    const args = ['copy', '--verbose', '--insecure-registry', registry, '--concurrency', '2', `oci:${layout}`, `docker://${registry}/${repository}:v1`];
    const pushStarted = new RegExp(`^(HEAD|POST|PUT) http://`, 'm');
    let killed = 0;
    for (let round = 0; round < 5; round++) {
      const outcome = await killDuringPush(args, pushStarted, Math.floor(random() * 400));
      if (outcome.killed) killed++;
      expect(await incompleteTags(registry, repository)).toEqual([]);
      // A round that was not killed in time finished the copy: nothing left to test.
      if (!outcome.killed) break;
    }
    expect(killed).toBeGreaterThan(0);
    const rerun = await tessera(args);
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(await skopeoDigest(`${registry}/${repository}:v1`)).toBe(layoutDigest);
    expect(await missingBlobs(registry, repository, 'v1')).toEqual([]);
    await pullWithSkopeo(`${registry}/${repository}:v1`, tmp);
  }, 300_000);
});
