import { afterEach, describe, expect, inject, it } from 'vitest';
import { MediaType, RegistryClient, RegistryError, parseReference } from '@tessera/oci';
import { manifestBytes, openBuffer, randomBlob, readAll, uniqueRepository } from './registry-helpers';
import { startRegistryProxy } from '../../../tools/faults/proxy';

const upstream = inject('registryHost');
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function proxied(intercept: Parameters<typeof startRegistryProxy>[1], options: ConstructorParameters<typeof RegistryClient>[0] = {}) {
  const proxy = await startRegistryProxy(upstream, intercept);
  const log: string[] = [];
  const client = new RegistryClient({ insecureRegistries: [proxy.host], retry: { attempts: 5, baseDelayMs: 20 }, log: (l) => log.push(l), ...options });
  cleanups.push(() => proxy.stop(), () => client.close());
  return { proxy, client, log, repo: { registry: proxy.host, repository: uniqueRepository('retry') } };
}

describe('retries and fallbacks through a fault-injecting proxy', () => {
  it('retries 5xx answers with backoff and then succeeds', async () => {
    let failures = 2;
    const { proxy, client, log, repo } = await proxied((req, res) => {
      if (req.method === 'HEAD' && failures > 0) {
        failures--;
        res.writeHead(503).end();
        return true;
      }
      return false;
    });
    expect(await client.headBlob(repo, randomBlob(1).descriptor.digest)).toBeUndefined();
    expect(proxy.requests.filter((r) => r.method === 'HEAD')).toHaveLength(3);
    expect(log.filter((l) => l.startsWith('retrying blob head'))).toHaveLength(2);
  });

  it('waits as long as Retry-After says on 429', async () => {
    let limited = true;
    const { client, repo } = await proxied((req, res) => {
      if (limited) {
        limited = false;
        res.writeHead(429, { 'retry-after': '1', 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'TOOMANYREQUESTS', message: 'slow down' }] }));
        return true;
      }
      return false;
    });
    const started = Date.now();
    expect(await client.headBlob(repo, randomBlob(1).descriptor.digest)).toBeUndefined();
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
  });

  it('gives up after the attempt limit with the registry error', async () => {
    const { proxy, client, repo } = await proxied((_req, res) => {
      res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'UNKNOWN', message: 'disk on fire' }] }));
      return true;
    }, { retry: { attempts: 3, baseDelayMs: 10 } });
    await expect(client.listTags(repo)).rejects.toThrow(`tags list on ${proxy.host}/${repo.repository} failed: UNKNOWN (HTTP 500): disk on fire`);
    expect(proxy.requests).toHaveLength(3);
  });

  it('restarts a broken upload from a fresh open()', async () => {
    let broken = false;
    const { client, repo } = await proxied((req) => {
      if (req.method === 'PUT' && !broken) {
        broken = true;
        req.once('data', () => req.socket.destroy());
        return true;
      }
      return false;
    });
    const blob = randomBlob(3_000_000);
    let opened = 0;
    await client.uploadBlob(repo, blob.descriptor, async () => (opened++, openBuffer(blob.bytes)()));
    expect(opened).toBe(2);
    expect((await readAll(await client.openBlob(repo, blob.descriptor))).equals(blob.bytes)).toBe(true);
  });

  it('falls back to a chunked upload when the registry refuses a large PUT, and back again when it refuses PATCH', async () => {
    const tooLarge = await proxied((req, res) => {
      if (req.method === 'PUT' && Number(req.headers['content-length']) > 0) {
        res.writeHead(413).end();
        req.resume();
        return true;
      }
      return false;
    });
    const blob = randomBlob(300_000);
    await tooLarge.client.uploadBlob(tooLarge.repo, blob.descriptor, openBuffer(blob.bytes), { chunkSize: 100_000 });
    expect(tooLarge.proxy.requests.filter((r) => r.method === 'PATCH')).toHaveLength(3);
    expect(tooLarge.log.some((l) => l.includes('monolithic upload refused') && l.includes('trying a chunked upload'))).toBe(true);
    expect(await tooLarge.client.headBlob(tooLarge.repo, blob.descriptor.digest)).toEqual({ size: 300_000 });

    const noPatch = await proxied((req, res) => {
      if (req.method === 'PATCH') {
        res.writeHead(405).end();
        req.resume();
        return true;
      }
      return false;
    });
    await noPatch.client.uploadBlob(noPatch.repo, blob.descriptor, openBuffer(blob.bytes), { method: 'chunked', chunkSize: 100_000 });
    expect(await noPatch.client.headBlob(noPatch.repo, blob.descriptor.digest)).toEqual({ size: 300_000 });
  });

  it('times out a registry that does not answer, within bounded time', async () => {
    const { client, repo } = await proxied(() => true, { timeoutMs: 300, retry: { attempts: 2, baseDelayMs: 10 } });
    const started = Date.now();
    const error = (await client.getManifest({ ...repo, tag: 'x' }).catch((e: unknown) => e)) as RegistryError;
    expect(Date.now() - started).toBeLessThan(3000);
    expect(error).toBeInstanceOf(RegistryError);
    expect(error.code).toBe('TIMEOUT');
    expect(error.message).toContain(`manifest get on ${repo.registry}/${repo.repository} failed: TIMEOUT`);
  });

  it('keeps at most maxConcurrencyPerHost requests in flight', async () => {
    let inFlight = 0;
    let peak = 0;
    const { client, repo } = await proxied(
      async (_req, _res, forward) => {
        inFlight++;
        peak = Math.max(peak, inFlight);
        await new Promise((r) => setTimeout(r, 50));
        inFlight--;
        forward();
        return true;
      },
      { maxConcurrencyPerHost: 2 },
    );
    const ref = parseReference(`${repo.registry}/${repo.repository}:v1`);
    const config = randomBlob(10, MediaType.ociConfig);
    await client.uploadBlob(ref, config.descriptor, openBuffer(config.bytes));
    await client.putManifest(ref, { bytes: manifestBytes(config.descriptor, []), mediaType: MediaType.ociManifest });
    peak = 0;
    await Promise.all(Array.from({ length: 8 }, () => client.getManifest(ref)));
    expect(peak).toBe(2);
  });
});
