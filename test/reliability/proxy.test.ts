import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { canonicalJsonBytes, MediaType, RegistryClient, RegistryError, sha256Digest, type Descriptor } from '@tessera/oci';
import { startFaultProxy, type FaultProxy, type FaultRule } from '../../tools/faults/proxy';

const registry = inject('registryHost');
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

function blob(size: number, mediaType: string = MediaType.ociLayerGzip): { bytes: Buffer; descriptor: Descriptor } {
  const bytes = randomBytes(size);
  return { bytes, descriptor: { mediaType, digest: sha256Digest(bytes), size } };
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A client through a proxy with these rules, and a repository holding one 4 MB layer and a manifest. */
async function setup(rules: FaultRule[]): Promise<{ proxy: FaultProxy; client: RegistryClient; repo: { registry: string; repository: string }; layer: ReturnType<typeof blob>; log: string[] }> {
  const repository = `reliability/proxy-${randomBytes(4).toString('hex')}`;
  const direct = new RegistryClient({ insecureRegistries: [registry] });
  const layer = blob(4 << 20);
  const config = blob(20, MediaType.ociConfig);
  const target = { registry, repository };
  await direct.uploadBlob(target, layer.descriptor, async () => Readable.from([layer.bytes]));
  await direct.uploadBlob(target, config.descriptor, async () => Readable.from([config.bytes]));
  await direct.putManifest({ ...target, tag: 'v1' }, { bytes: canonicalJsonBytes({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: config.descriptor, layers: [layer.descriptor] }), mediaType: MediaType.ociManifest });
  direct.close();
  const proxy = await startFaultProxy({ target: registry, rules, stallMs: 10_000 });
  const log: string[] = [];
  const client = new RegistryClient({ insecureRegistries: [proxy.host], retry: { attempts: 4, baseDelayMs: 10 }, timeoutMs: 500, log: (l) => log.push(l) });
  cleanups.push(() => proxy.stop(), () => client.close());
  return { proxy, client, repo: { registry: proxy.host, repository }, layer, log };
}

const blobGet = (r: { method: string; url: URL }) => r.method === 'GET' && r.url.pathname.includes('/blobs/sha256:');
const manifestGet = (r: { method: string; url: URL }) => r.method === 'GET' && r.url.pathname.includes('/manifests/');

describe('the fault proxy against the registry client', () => {
  for (const fault of ['reset-response', 'truncate-response'] as const) {
    it(`a manifest whose answer is cut (${fault}) is fetched again`, async () => {
      const { proxy, client, repo } = await setup([{ fault, when: manifestGet, times: 1 }]);
      const manifest = await client.getManifest({ ...repo, tag: 'v1' });
      expect(JSON.parse(manifest.bytes.toString()).schemaVersion).toBe(2);
      expect(proxy.counts[fault]).toBe(1);
      expect(proxy.requests.filter((r) => r.method === 'GET')).toHaveLength(2);
    });

    it(`a blob download cut halfway (${fault}) resumes with a Range request and verifies`, async () => {
      const { proxy, client, repo, layer, log } = await setup([{ fault, when: blobGet, times: 2 }]);
      const bytes = await readAll(await client.openBlob(repo, layer.descriptor));
      expect(bytes.equals(layer.bytes)).toBe(true);
      expect(proxy.counts[fault]).toBe(2);
      expect(log.filter((l) => l.startsWith('resuming blob get'))).toHaveLength(2);
    });
  }

  it('a blob download that keeps failing ends in a retryable registry error naming the registry', async () => {
    const { client, repo, layer } = await setup([{ fault: 'reset-response', when: blobGet }]);
    const error = (await readAll(await client.openBlob(repo, layer.descriptor)).catch((e: unknown) => e)) as RegistryError;
    expect(error).toBeInstanceOf(RegistryError);
    expect(error.message).toContain(`blob get on ${repo.registry}/${repo.repository} failed: UNREACHABLE`);
  });

  it('a stalled request times out and is retried', async () => {
    const { proxy, client, repo, layer } = await setup([{ fault: 'stall', when: (r) => r.method === 'HEAD', times: 1 }]);
    const started = Date.now();
    expect(await client.headBlob(repo, layer.descriptor.digest)).toEqual({ size: layer.descriptor.size });
    expect(Date.now() - started).toBeGreaterThanOrEqual(450);
    expect(proxy.counts.stall).toBe(1);
  });

  it('a refused mount (202) turns into an upload that completes', async () => {
    const { proxy, client, repo, layer } = await setup([{ fault: 'refuse-mount' }]);
    const other = { ...repo, repository: `${repo.repository}-copy` };
    await client.uploadBlob(other, layer.descriptor, async () => Readable.from([layer.bytes]), { mountFrom: repo.repository });
    expect(proxy.counts['refuse-mount']).toBe(1);
    expect(proxy.requests.some((r) => r.method === 'PUT' && r.url.includes('/blobs/uploads/'))).toBe(true);
    expect(await client.headBlob(other, layer.descriptor.digest)).toEqual({ size: layer.descriptor.size });
  });

  it('an upload reset mid-body is sent again from a fresh open()', async () => {
    const { proxy, client, repo } = await setup([{ fault: 'reset-request', when: (r) => r.method === 'PUT', times: 1 }]);
    const fresh = blob(3 << 20);
    let opened = 0;
    await client.uploadBlob(repo, fresh.descriptor, async () => (opened++, Readable.from([fresh.bytes])));
    expect(opened).toBe(2);
    expect(proxy.counts['reset-request']).toBe(1);
    expect(await client.headBlob(repo, fresh.descriptor.digest)).toEqual({ size: fresh.descriptor.size });
  });

  it('picks faults at the seeded rate, the same ones for the same seed', async () => {
    const run = async (seed: number) => {
      const proxy = await startFaultProxy({ target: registry, rate: 0.3, seed, faults: ['status-503', 'rate-limit'], retryAfterSeconds: 0 });
      cleanups.push(() => proxy.stop());
      for (let i = 0; i < 40; i++) await fetch(`http://${proxy.host}/v2/`);
      return proxy.requests.map((r) => r.fault ?? '-');
    };
    const first = await run(7);
    expect(await run(7)).toEqual(first);
    const faulted = first.filter((f) => f !== '-').length;
    expect(faulted).toBeGreaterThan(4);
    expect(faulted).toBeLessThan(24);
  });
});
