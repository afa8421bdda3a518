import { describe, expect, inject, it } from 'vitest';
import { DigestMismatchError, MediaType, RegistryClient, RegistryError, parseReference, sha256Digest } from '@tessera/oci';
import { startRegistry } from '../../../tools/registry/registry';
import { manifestBytes, openBuffer, randomBlob, readAll, uniqueRepository } from './registry-helpers';
import { startRegistryProxy } from '../../../tools/faults/proxy';

const host = inject('registryHost');
const client = () => new RegistryClient({ insecureRegistries: [host], retry: { attempts: 2, baseDelayMs: 10 } });

describe('RegistryClient against docker-registry', () => {
  it('pushes blobs monolithically and in chunks and reads them back verified', async () => {
    const c = client();
    const repo = { registry: host, repository: uniqueRepository('blobs') };
    const small = randomBlob(1000);
    const chunked = randomBlob(2_500_000);
    expect(await c.headBlob(repo, small.descriptor.digest)).toBeUndefined();
    await c.uploadBlob(repo, small.descriptor, openBuffer(small.bytes));
    await c.uploadBlob(repo, chunked.descriptor, openBuffer(chunked.bytes), { method: 'chunked', chunkSize: 1 << 20 });
    expect(await c.headBlob(repo, small.descriptor.digest)).toEqual({ size: 1000 });
    expect(await c.headBlob(repo, chunked.descriptor.digest)).toEqual({ size: 2_500_000 });
    expect((await readAll(await c.openBlob(repo, small.descriptor))).equals(small.bytes)).toBe(true);
    expect((await readAll(await c.openBlob(repo, chunked.descriptor))).equals(chunked.bytes)).toBe(true);
    c.close();
  });

  it('refuses content that does not match its descriptor, on upload and on download', async () => {
    const c = client();
    const repo = { registry: host, repository: uniqueRepository('mismatch') };
    const blob = randomBlob(5000);
    const wrong = Buffer.from(blob.bytes);
    wrong[0] = wrong[0]! ^ 1;
    await expect(c.uploadBlob(repo, blob.descriptor, openBuffer(wrong))).rejects.toBeInstanceOf(DigestMismatchError);
    expect(await c.headBlob(repo, blob.descriptor.digest)).toBeUndefined();
    await c.uploadBlob(repo, blob.descriptor, openBuffer(blob.bytes));
    const stream = await c.openBlob(repo, { digest: blob.descriptor.digest, size: 4999 });
    await expect(readAll(stream)).rejects.toBeInstanceOf(DigestMismatchError);
    c.close();
  });

  it.each([
    ['OCI', MediaType.ociManifest, MediaType.ociConfig],
    ['Docker', MediaType.dockerManifest, MediaType.dockerConfig],
  ])('pushes and reads %s manifests by tag and digest, with exact bytes', async (_name, manifestType, configType) => {
    const c = client();
    const ref = parseReference(`${host}/${uniqueRepository('manifest')}:v1`);
    const config = randomBlob(200, configType);
    const layer = randomBlob(300, manifestType === MediaType.dockerManifest ? MediaType.dockerLayerGzip : MediaType.ociLayerGzip);
    for (const blob of [config, layer]) await c.uploadBlob(ref, blob.descriptor, openBuffer(blob.bytes));
    // Pretty-printed bytes: the digest must cover exactly these bytes, not a re-serialisation.
    const bytes = Buffer.from(JSON.stringify(JSON.parse(manifestBytes(config.descriptor, [layer.descriptor], manifestType).toString()), null, 3));
    const pushed = await c.putManifest(ref, { bytes, mediaType: manifestType });
    expect(pushed.digest).toBe(sha256Digest(bytes));

    const byTag = await c.getManifest(ref);
    expect(byTag.bytes.equals(bytes)).toBe(true);
    expect(byTag.mediaType).toBe(manifestType);
    expect(byTag.digest).toBe(pushed.digest);
    const byDigest = await c.getManifest(ref.withDigest(pushed.digest));
    expect(byDigest.bytes.equals(bytes)).toBe(true);
    expect(await c.headManifest(ref)).toEqual({ mediaType: manifestType, digest: pushed.digest, size: bytes.length });

    // Pushing by digest alone stores it untagged in another repository.
    const other = { registry: host, repository: uniqueRepository('untagged') };
    for (const blob of [config, layer]) await c.uploadBlob(other, blob.descriptor, openBuffer(blob.bytes), { mountFrom: ref.repository });
    await c.putManifest(other, { bytes, mediaType: manifestType });
    expect((await c.getManifest({ ...other, digest: pushed.digest })).digest).toBe(pushed.digest);
    expect(await c.headManifest({ ...other, tag: 'v1' })).toBeUndefined();
    c.close();
  });

  it('lists tags across pages and deletes manifests', async () => {
    const c = client();
    const ref = parseReference(`${host}/${uniqueRepository('tags')}:t0`);
    const config = randomBlob(100, MediaType.ociConfig);
    await c.uploadBlob(ref, config.descriptor, openBuffer(config.bytes));
    const tags = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
    const digests = new Map<string, string>();
    for (const tag of tags) {
      // A different manifest per tag: deleting one must not take the others with it.
      const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: config.descriptor, layers: [], annotations: { tag } }));
      digests.set(tag, (await c.putManifest(ref.withTag(tag), { bytes, mediaType: MediaType.ociManifest })).digest);
    }
    // Debian's registry (distribution 2.8) ignores `n` on tags/list; a proxy pages its answer the way distribution 3 does.
    const proxy = await startRegistryProxy(host, async (req, res) => {
      const url = new URL(req.url ?? '', 'http://proxy');
      if (!url.pathname.endsWith('/tags/list') || !url.searchParams.has('n')) return false;
      const all = (await c.listTags(ref)).sort();
      const n = Number(url.searchParams.get('n'));
      const last = url.searchParams.get('last');
      const rest = last ? all.filter((t) => t > last) : all;
      const page = rest.slice(0, n);
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (rest.length > n) headers['link'] = `<${url.pathname}?n=${n}&last=${page[page.length - 1]}>; rel="next"`;
      res.writeHead(200, headers).end(JSON.stringify({ name: ref.repository, tags: page }));
      return true;
    });
    const log: string[] = [];
    const paged = new RegistryClient({ insecureRegistries: [proxy.host], log: (line) => log.push(line) });
    try {
      expect(await paged.listTags({ registry: proxy.host, repository: ref.repository }, { pageSize: 3 })).toEqual(tags);
      expect(proxy.requests.map((r) => r.url)).toEqual([
        `/v2/${ref.repository}/tags/list?n=3`,
        `/v2/${ref.repository}/tags/list?n=3&last=c`,
        `/v2/${ref.repository}/tags/list?n=3&last=f`,
      ]);
      expect(log[0]).toMatch(new RegExp(`^GET http://${proxy.host}/v2/${ref.repository}/tags/list\\?n=3 → 200 \\(\\d+ ms\\)$`));
    } finally {
      paged.close();
      await proxy.stop();
    }
    // Against the registry itself, asking for pages still returns every tag.
    expect((await c.listTags(ref, { pageSize: 3 })).sort()).toEqual(tags);

    await c.deleteManifest(ref.withTag('c'));
    await c.deleteManifest(ref.withDigest(digests.get('d')!));
    expect((await c.listTags(ref)).sort()).toEqual(['a', 'b', 'e', 'f', 'g']);
    expect(await c.headManifest(ref.withTag('c'))).toBeUndefined();
    await expect(c.getManifest(ref.withDigest(digests.get('d')!))).rejects.toThrow(/MANIFEST_UNKNOWN/);
    c.close();
  });

  it('mounts a blob across repositories instead of uploading it', async () => {
    const registry = await startRegistry();
    try {
      const c = new RegistryClient({ insecureRegistries: [registry.host] });
      const from = { registry: registry.host, repository: 'base/image' };
      const to = { registry: registry.host, repository: 'app/image' };
      const blob = randomBlob(100_000);
      await c.uploadBlob(from, blob.descriptor, openBuffer(blob.bytes));
      const before = registry.log().length;
      let opened = 0;
      await c.uploadBlob(to, blob.descriptor, async () => (opened++, openBuffer(blob.bytes)()), { mountFrom: from.repository });
      expect(opened).toBe(0);
      expect(await c.mountBlob({ registry: registry.host, repository: 'third/image' }, blob.descriptor, from.repository)).toBe(true);
      const after = registry.log().slice(before);
      const hex = blob.descriptor.digest.slice(7);
      expect(after).toMatch(new RegExp(`"POST /v2/app/image/blobs/uploads/\\?mount=sha256%3A${hex}&from=base%2Fimage HTTP/1.1" 201`));
      expect(after).not.toMatch(/"(PUT|PATCH) \/v2\/app\/image\/blobs\/uploads/);
      expect(await new RegistryClient({ insecureRegistries: [registry.host] }).headBlob(to, blob.descriptor.digest)).toEqual({ size: 100_000 });
      // A mount from a repository without the blob falls back to an upload.
      const missing = randomBlob(10);
      expect(await c.mountBlob(to, missing.descriptor, 'base/image')).toBe(false);
      await c.uploadBlob(to, missing.descriptor, openBuffer(missing.bytes), { mountFrom: 'nowhere/here' });
      expect(await new RegistryClient({ insecureRegistries: [registry.host] }).headBlob(to, missing.descriptor.digest)).toEqual({ size: 10 });
      c.close();
    } finally {
      await registry.stop();
    }
  });

  it('sends a blob once when it is uploaded to two repositories of a registry at the same time: the second mounts it', async () => {
    const c = client();
    const first = { registry: host, repository: uniqueRepository('dedup-a') };
    const second = { registry: host, repository: uniqueRepository('dedup-b') };
    const blob = randomBlob(300_000);
    let opened = 0;
    const open = async () => (opened++, openBuffer(blob.bytes)());
    await Promise.all([c.uploadBlob(first, blob.descriptor, open), c.uploadBlob(second, blob.descriptor, open)]);
    expect(opened).toBe(1);
    // A fresh client asks the registry: this one would answer from what it uploaded.
    const check = client();
    expect(await check.headBlob(first, blob.descriptor.digest)).toEqual({ size: 300_000 });
    expect(await check.headBlob(second, blob.descriptor.digest)).toEqual({ size: 300_000 });

    // When the first upload fails there is nothing to mount: the second sends the blob itself.
    const other = randomBlob(1000);
    const wrong = Buffer.from(other.bytes);
    wrong[0] = wrong[0]! ^ 1;
    const third = { registry: host, repository: uniqueRepository('dedup-c') };
    const [failed, sent] = await Promise.allSettled([
      c.uploadBlob(first, other.descriptor, openBuffer(wrong)),
      c.uploadBlob(third, other.descriptor, openBuffer(other.bytes)),
    ]);
    expect(failed.status).toBe('rejected');
    expect(sent.status).toBe('fulfilled');
    expect(await check.headBlob(third, other.descriptor.digest)).toEqual({ size: 1000 });
    c.close();
    check.close();
  });

  it('asks about a blob once per repository: concurrent HEADs share one request, a blob it uploaded is not asked about, a missing one is asked again', async () => {
    const registry = await startRegistry();
    try {
      const c = new RegistryClient({ insecureRegistries: [registry.host] });
      const repo = { registry: registry.host, repository: 'seen/once' };
      const present = randomBlob(2000);
      await new RegistryClient({ insecureRegistries: [registry.host] }).uploadBlob(repo, present.descriptor, openBuffer(present.bytes));
      const heads = (digest: string, since: number) => registry.log().slice(since).split('\n').filter((l) => l.includes(`"HEAD /v2/seen/once/blobs/${digest}`)).length;

      let mark = registry.log().length;
      const answers = await Promise.all([1, 2, 3].map(() => c.headBlob(repo, present.descriptor.digest)));
      expect(answers).toEqual([{ size: 2000 }, { size: 2000 }, { size: 2000 }]);
      expect(await c.headBlob(repo, present.descriptor.digest)).toEqual({ size: 2000 });
      expect(heads(present.descriptor.digest, mark)).toBe(1);

      const later = randomBlob(500);
      mark = registry.log().length;
      expect(await c.headBlob(repo, later.descriptor.digest)).toBeUndefined();
      await c.uploadBlob(repo, later.descriptor, openBuffer(later.bytes));
      expect(await c.headBlob(repo, later.descriptor.digest)).toEqual({ size: 500 });
      expect(heads(later.descriptor.digest, mark)).toBe(1);
      // Another repository of the same registry is another question.
      expect(await c.headBlob({ ...repo, repository: 'seen/elsewhere' }, later.descriptor.digest)).toBeUndefined();
      c.close();
    } finally {
      await registry.stop();
    }
  });

  it('gives clear errors, fast, for missing repositories, tags and blobs', async () => {
    const c = client();
    const started = Date.now();
    const missingRepo = parseReference(`${host}/${uniqueRepository('nothing')}:latest`);
    const error = await c.getManifest(missingRepo).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegistryError);
    expect((error as RegistryError).status).toBe(404);
    expect((error as RegistryError).message).toContain(`manifest get on ${host}/${missingRepo.repository} failed`);
    expect((error as RegistryError).code).toMatch(/^(MANIFEST_UNKNOWN|NAME_UNKNOWN)$/);
    expect(await c.headManifest(missingRepo)).toBeUndefined();
    await expect(c.listTags(missingRepo)).rejects.toThrow(/NAME_UNKNOWN/);
    await expect(c.openBlob(missingRepo, randomBlob(1).descriptor)).rejects.toThrow(/BLOB_UNKNOWN/);
    expect(Date.now() - started).toBeLessThan(3000);
    c.close();
  });

  it('gives a clear UNREACHABLE error for a closed port within bounded time', async () => {
    const registry = await startRegistry();
    const closedHost = registry.host;
    await registry.stop();
    const c = new RegistryClient({ insecureRegistries: [closedHost], retry: { attempts: 3, baseDelayMs: 50 } });
    const started = Date.now();
    const error = (await c.getManifest(parseReference(`${closedHost}/a/b:c`)).catch((e: unknown) => e)) as RegistryError;
    expect(Date.now() - started).toBeLessThan(5000);
    expect(error).toBeInstanceOf(RegistryError);
    expect(error.code).toBe('UNREACHABLE');
    expect(error.message).toContain(`manifest get on ${closedHost}/a/b failed: UNREACHABLE`);
    expect(error.message).toContain('ECONNREFUSED');
  });
});
