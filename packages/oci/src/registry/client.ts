import { pipeline, Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { DigestStream, isDigest, sha256Digest } from '../digest';
import { DigestMismatchError, RegistryError, type RegistryOperation } from '../errors';
import type { RegistryLocation } from '../image';
import { MANIFEST_ACCEPT } from '../media-types';
import { normalizeRegistry, registryWireHost } from '../reference';
import type { Descriptor, RawManifest } from '../types';
import { Authenticator, repositoryScope } from './auth';
import { CredentialResolver, type CredentialOptions } from './credentials';
import { retryDelay, withRetry, type RetryPolicy } from './retry';
import { Transport, type TransportOptions, type TransportResponse } from './transport';
import { networkError, responseError, type RequestContext } from './wire-errors';

export interface RegistryClientOptions extends TransportOptions, CredentialOptions {
  /** Retries of network errors, 5xx and 429: attempts (default 5), baseDelayMs (250), maxDelayMs (10 s). */
  retry?: RetryPolicy;
}

/** A manifest reference: a tag or a digest (ImageReference fits). */
export interface ManifestLocation extends RegistryLocation {
  tag?: string;
  digest?: string;
}

export interface BlobUploadOptions {
  /** `monolithic` (POST, then one streamed PUT; the default) or `chunked` (PATCH per chunk, then PUT). Either falls back to the other when the registry refuses it. */
  method?: 'monolithic' | 'chunked';
  /** Bytes per PATCH for chunked uploads (default 16 MiB); one chunk is held in memory at a time. */
  chunkSize?: number;
  /** Try a cross-repository mount from this repository of the same registry first. */
  mountFrom?: string;
}

/** What an existing blob looks like from a HEAD. */
export interface BlobInfo {
  size: number;
}

type Body = Buffer | (() => Promise<Readable>);

interface SendInit {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  url: URL;
  headers?: Record<string, string | number | undefined>;
  body?: Body;
  followRedirects?: number;
}

const MAX_MANIFEST_BYTES = 4 << 20;
const DEFAULT_CHUNK_SIZE = 16 << 20;
/** Statuses with which a registry refuses an upload method (rather than the content). */
const METHOD_REFUSED = new Set([405, 411, 413, 416, 501]);

/**
 * A client for the OCI distribution API (Docker Registry HTTP API v2): manifests, blobs, tags, uploads and mounts.
 * Handles authentication (anonymous, basic, bearer), retries with backoff, and per-host concurrency.
 * Registry names may be given as in references (`docker.io`); requests go to the wire host.
 */
export class RegistryClient {
  private readonly transport: Transport;
  private readonly auth: Authenticator;
  private readonly retryPolicy: RetryPolicy;
  /**
   * Blob uploads of this client by registry and digest, with the repository each went to. A second
   * upload of the same blob to the same registry (a build pushing a layer to its destination and to
   * its cache repository at once) waits for the first and mounts it instead of sending it again.
   */
  private readonly uploads = new Map<string, { repository: string; done: Promise<unknown> }>();
  /**
   * Blobs this client has seen in a repository (a HEAD answered 200, an upload or mount finished), and
   * HEADs in flight. A build checks the same layer several times (early upload, push, cache entry);
   * each is asked once. Only "present" is remembered: a blob does not leave a repository mid-build,
   * but a missing one may arrive.
   */
  private readonly presentBlobs = new Map<string, Promise<BlobInfo | undefined>>();

  constructor(options: RegistryClientOptions = {}) {
    this.transport = new Transport(options);
    this.auth = new Authenticator(this.transport, new CredentialResolver(options));
    this.retryPolicy = options.retry ?? {};
  }

  /** The manifest's descriptor (media type, digest, size) without its body, or undefined when there is none. */
  async headManifest(ref: ManifestLocation): Promise<Descriptor | undefined> {
    const reference = manifestReference(ref);
    const context = this.context(ref, 'manifest head');
    return this.retrying(context, async () => {
      const res = await this.send(context, [repositoryScope(ref.repository, ['pull'])], {
        method: 'HEAD',
        url: this.url(ref, `/v2/${ref.repository}/manifests/${reference}`),
        headers: { accept: MANIFEST_ACCEPT.join(', ') },
      });
      if (res.status === 404) return undefined;
      await expectStatus(res, [200], context);
      const digest = headerString(res.headers['docker-content-digest']) ?? (isDigest(reference) ? reference : undefined);
      if (!digest) return descriptorOf(await this.getManifest(ref));
      return { mediaType: mediaTypeOf(res.headers['content-type']) ?? '', digest, size: Number(res.headers['content-length'] ?? 0) };
    });
  }

  /** The manifest's exact bytes; the digest is checked against the reference or the registry's Docker-Content-Digest. */
  async getManifest(ref: ManifestLocation): Promise<RawManifest> {
    const reference = manifestReference(ref);
    const context = this.context(ref, 'manifest get');
    return this.retrying(context, async () => {
      const res = await this.send(context, [repositoryScope(ref.repository, ['pull'])], {
        method: 'GET',
        url: this.url(ref, `/v2/${ref.repository}/manifests/${reference}`),
        headers: { accept: MANIFEST_ACCEPT.join(', ') },
        followRedirects: 5,
      });
      await expectStatus(res, [200], context);
      const bytes = await readLimited(res, MAX_MANIFEST_BYTES, context);
      const digest = sha256Digest(bytes);
      const claimed = isDigest(reference) ? reference : headerString(res.headers['docker-content-digest']);
      if (claimed && claimed.startsWith('sha256:') && claimed !== digest) throw new DigestMismatchError(`manifest ${ref.repository}:${reference}`, claimed, digest);
      let mediaType = mediaTypeOf(res.headers['content-type']);
      if (!mediaType || mediaType === 'application/json' || mediaType === 'text/plain') mediaType = embeddedMediaType(bytes) ?? mediaType ?? '';
      return { bytes, mediaType, digest };
    });
  }

  /** Stores a manifest under `target.tag`, or by its digest when there is no tag. Its blobs must be pushed first. */
  async putManifest(target: ManifestLocation, manifest: Pick<RawManifest, 'bytes' | 'mediaType'>): Promise<RawManifest> {
    const digest = sha256Digest(manifest.bytes);
    const reference = target.tag ?? digest;
    const context = this.context(target, 'manifest put');
    return this.retrying(context, async () => {
      const res = await this.send(context, [repositoryScope(target.repository, ['pull', 'push'])], {
        method: 'PUT',
        url: this.url(target, `/v2/${target.repository}/manifests/${reference}`),
        headers: { 'content-type': manifest.mediaType },
        body: manifest.bytes,
      });
      await expectStatus(res, [200, 201, 202], context);
      res.discard();
      const answered = headerString(res.headers['docker-content-digest']);
      if (answered && answered.startsWith('sha256:') && answered !== digest) throw new DigestMismatchError(`manifest stored at ${target.repository}:${reference}`, digest, answered);
      return { bytes: manifest.bytes, mediaType: manifest.mediaType, digest };
    });
  }

  /** Deletes a manifest by digest (a tag is resolved first; every tag on that manifest goes with it). */
  async deleteManifest(ref: ManifestLocation): Promise<void> {
    const context = this.context(ref, 'manifest delete');
    let digest = ref.digest;
    if (!digest) {
      const found = await this.headManifest(ref);
      if (!found) throw new RegistryError(context.registry, ref.repository, 'manifest delete', 404, 'MANIFEST_UNKNOWN', `no manifest tagged ${ref.tag}`);
      digest = found.digest;
    }
    await this.retrying(context, async () => {
      const res = await this.send(context, [repositoryScope(ref.repository, ['pull', 'push', 'delete'])], {
        method: 'DELETE',
        url: this.url(ref, `/v2/${ref.repository}/manifests/${digest}`),
      });
      await expectStatus(res, [200, 202], context);
      res.discard();
    });
  }

  /** Every tag of a repository, following the registry's `Link` pagination; `pageSize` asks for `n` per page. */
  async listTags(repo: RegistryLocation, options: { pageSize?: number } = {}): Promise<string[]> {
    const context = this.context(repo, 'tags list');
    const tags: string[] = [];
    let url: URL | undefined = this.url(repo, `/v2/${repo.repository}/tags/list`);
    if (options.pageSize) url.searchParams.set('n', String(options.pageSize));
    const seen = new Set<string>();
    while (url && !seen.has(url.href)) {
      seen.add(url.href);
      const pageUrl: URL = url;
      const page = await this.retrying(context, async () => {
        const res = await this.send(context, [repositoryScope(repo.repository, ['pull'])], { method: 'GET', url: pageUrl });
        await expectStatus(res, [200], context);
        const body = JSON.parse((await readLimited(res, 16 << 20, context)).toString('utf8')) as { tags?: string[] | null };
        return { tags: body.tags ?? [], next: nextLink(headerString(res.headers.link), pageUrl) };
      });
      tags.push(...page.tags);
      url = page.next;
    }
    return tags;
  }

  /** The blob's size when the repository has it, else undefined. */
  async headBlob(repo: RegistryLocation, digest: string): Promise<BlobInfo | undefined> {
    const key = this.blobKey(repo, digest);
    let known = this.presentBlobs.get(key);
    if (!known) {
      known = this.askBlob(repo, digest);
      this.presentBlobs.set(key, known);
      // A missing blob (or a failed HEAD) is asked again next time.
      known.then(
        (info) => info === undefined && this.presentBlobs.delete(key),
        () => this.presentBlobs.delete(key),
      );
    }
    return known;
  }

  private blobKey(repo: RegistryLocation, digest: string): string {
    return `${registryWireHost(repo.registry)}\0${repo.repository}\0${digest}`;
  }

  private markPresent(repo: RegistryLocation, descriptor: Pick<Descriptor, 'digest' | 'size'>): void {
    this.presentBlobs.set(this.blobKey(repo, descriptor.digest), Promise.resolve({ size: descriptor.size }));
  }

  private async askBlob(repo: RegistryLocation, digest: string): Promise<BlobInfo | undefined> {
    const context = this.context(repo, 'blob head');
    return this.retrying(context, async () => {
      const res = await this.send(context, [repositoryScope(repo.repository, ['pull'])], {
        method: 'HEAD',
        url: this.url(repo, `/v2/${repo.repository}/blobs/${digest}`),
        followRedirects: 5,
      });
      if (res.status === 404) return undefined;
      await expectStatus(res, [200], context);
      return { size: Number(res.headers['content-length'] ?? -1) };
    });
  }

  /**
   * The blob's bytes as a stream (redirects followed) that fails unless they match the descriptor's digest and size.
   * A connection lost mid-body is resumed with a Range request (within the retry policy), so a long download
   * survives a reset without starting over. The stream holds one of the host's request slots until it ends or is destroyed.
   */
  async openBlob(repo: RegistryLocation, descriptor: Pick<Descriptor, 'digest' | 'size'>): Promise<Readable> {
    const context = this.context(repo, 'blob get');
    const request = (offset: number) =>
      this.retrying(context, async () => {
        const r = await this.send(context, [repositoryScope(repo.repository, ['pull'])], {
          method: 'GET',
          url: this.url(repo, `/v2/${repo.repository}/blobs/${descriptor.digest}`),
          headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
          followRedirects: 5,
        });
        await expectStatus(r, offset > 0 ? [200, 206] : [200], context);
        return r;
      });
    const first = await request(0);
    const attempts = this.retryPolicy.attempts ?? 5;
    const log = this.transport.log;
    const policy = this.retryPolicy;
    async function* resumingBody(): AsyncGenerator<Buffer> {
      let res = first;
      let received = 0;
      for (let failures = 0; ; ) {
        try {
          // A registry that ignores Range answers 200 from the first byte: skip what we already have.
          let skip = res.status === 200 ? received : 0;
          for await (const data of res.body as AsyncIterable<Buffer>) {
            let chunk = data;
            if (skip > 0) {
              const dropped = Math.min(skip, chunk.length);
              skip -= dropped;
              chunk = chunk.subarray(dropped);
              if (chunk.length === 0) continue;
            }
            received += chunk.length;
            yield chunk;
          }
          // A complete answer of the wrong length is not a network fault: the digest check reports it.
          return;
        } catch (error) {
          const mapped = networkError(context, error, context.host);
          if (!mapped.retryable || ++failures >= attempts) throw mapped;
          const delay = retryDelay(failures, policy, mapped);
          log?.(`resuming blob get on ${context.registry}/${repo.repository} at byte ${received} in ${Math.round(delay)} ms (attempt ${failures + 1} of ${attempts}): ${mapped.message}`);
          await sleep(delay);
          res = await request(received);
        }
      }
    }
    const verified = new DigestStream({ digest: descriptor.digest, size: descriptor.size, what: `blob ${descriptor.digest} from ${context.registry}/${repo.repository}` });
    pipeline(Readable.from(resumingBody()), verified, () => undefined); // errors reach the reader through `verified`
    return verified;
  }

  /**
   * Mounts a blob from another repository of the same registry. True when mounted;
   * false when the registry wants an upload instead (the upload session it opened is cancelled).
   */
  async mountBlob(repo: RegistryLocation, descriptor: Pick<Descriptor, 'digest'>, fromRepository: string): Promise<boolean> {
    const start = await this.retrying(this.context(repo, 'blob mount'), () => this.startUpload(repo, descriptor, fromRepository));
    if (start === 'mounted') return true;
    await this.cancelUpload(repo, start);
    return false;
  }

  /**
   * Uploads a blob. `open` gives the content from its first byte; it is called again for each retry.
   * The content is streamed (never held whole in memory) and checked against the descriptor.
   */
  async uploadBlob(repo: RegistryLocation, descriptor: Pick<Descriptor, 'digest' | 'size'>, open: () => Promise<Readable>, options: BlobUploadOptions = {}): Promise<void> {
    const key = `${registryWireHost(repo.registry)}\0${descriptor.digest}`;
    const earlier = this.uploads.get(key);
    if (earlier && earlier.repository !== repo.repository) {
      // Failures of the earlier upload are its caller's; here they only mean there is nothing to mount.
      const mounted = await earlier.done.then(
        () => true,
        () => false,
      );
      if (mounted && (await this.mountBlob(repo, descriptor, earlier.repository).catch(() => false))) {
        this.markPresent(repo, descriptor);
        return;
      }
    }
    const done = this.sendBlob(repo, descriptor, open, options);
    this.uploads.set(key, { repository: repo.repository, done });
    await done;
    this.markPresent(repo, descriptor);
  }

  private async sendBlob(repo: RegistryLocation, descriptor: Pick<Descriptor, 'digest' | 'size'>, open: () => Promise<Readable>, options: BlobUploadOptions): Promise<void> {
    const context = this.context(repo, 'blob upload');
    await this.retrying(context, async () => {
      const start = await this.startUpload(repo, descriptor, options.mountFrom);
      if (start === 'mounted') return;
      const first = options.method ?? 'monolithic';
      try {
        await this.finishUpload(repo, descriptor, open, start, first, options);
      } catch (error) {
        if (!(error instanceof RegistryError) || !(METHOD_REFUSED.has(error.status ?? 0) || error.code === 'UNSUPPORTED')) throw error;
        const other = first === 'monolithic' ? 'chunked' : 'monolithic';
        this.transport.log?.(`${first} upload refused by ${context.registry} (${error.code}); trying a ${other} upload`);
        const again = await this.startUpload(repo, descriptor);
        if (again === 'mounted') return;
        await this.finishUpload(repo, descriptor, open, again, other, options);
      }
    });
  }

  /** Closes idle connections. */
  close(): void {
    this.transport.close();
  }

  private async finishUpload(repo: RegistryLocation, descriptor: Pick<Descriptor, 'digest' | 'size'>, open: () => Promise<Readable>, location: URL, method: 'monolithic' | 'chunked', options: BlobUploadOptions): Promise<void> {
    const context = this.context(repo, 'blob upload');
    const scopes = [repositoryScope(repo.repository, ['pull', 'push'])];
    const verifiedContent = async () => {
      const source = await open();
      const verified = new DigestStream({ digest: descriptor.digest, size: descriptor.size, what: `upload of ${descriptor.digest}` });
      pipeline(source, verified, () => undefined);
      return verified;
    };
    let finalLocation = location;
    let finalBody: Body | undefined;
    if (method === 'monolithic') {
      finalBody = verifiedContent;
    } else {
      const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
      let offset = 0;
      for await (const chunk of chunksOf(await verifiedContent(), chunkSize)) {
        const res = await this.send(context, scopes, {
          method: 'PATCH',
          url: finalLocation,
          headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${offset + chunk.length - 1}` },
          body: chunk,
        });
        await expectStatus(res, [202, 204], context);
        res.discard();
        finalLocation = this.uploadLocation(res, finalLocation, context);
        offset += chunk.length;
      }
    }
    const url = new URL(finalLocation);
    url.searchParams.set('digest', descriptor.digest);
    const res = await this.send(context, scopes, {
      method: 'PUT',
      url,
      headers: { 'content-type': 'application/octet-stream', ...(finalBody ? { 'content-length': descriptor.size } : {}) },
      ...(finalBody ? { body: finalBody } : {}),
    });
    await expectStatus(res, [201, 204], context);
    res.discard();
    const stored = headerString(res.headers['docker-content-digest']);
    if (stored && stored.startsWith('sha256:') && stored !== descriptor.digest) throw new DigestMismatchError(`blob stored by ${context.registry}`, descriptor.digest, stored);
  }

  /** Opens an upload session (trying a mount first when `from` is given): 'mounted', or the URL to upload to. Callers retry. */
  private async startUpload(repo: RegistryLocation, descriptor: Pick<Descriptor, 'digest'>, from?: string): Promise<'mounted' | URL> {
    const mounting = from !== undefined && from !== repo.repository;
    const context = this.context(repo, mounting ? 'blob mount' : 'blob upload');
    const url = this.url(repo, `/v2/${repo.repository}/blobs/uploads/`);
    const scopes = [repositoryScope(repo.repository, ['pull', 'push'])];
    if (mounting) {
      url.searchParams.set('mount', descriptor.digest);
      url.searchParams.set('from', from);
      scopes.push(repositoryScope(from, ['pull']));
    }
    const res = await this.send(context, scopes, { method: 'POST', url });
    await expectStatus(res, mounting ? [201, 202] : [202], context);
    res.discard();
    if (res.status === 201) return 'mounted';
    return this.uploadLocation(res, url, context);
  }

  private async cancelUpload(repo: RegistryLocation, location: URL): Promise<void> {
    const context = this.context(repo, 'blob upload');
    try {
      const res = await this.send(context, [repositoryScope(repo.repository, ['pull', 'push'])], { method: 'DELETE', url: location });
      res.discard();
    } catch {
      // Best effort: the registry expires abandoned sessions anyway.
    }
  }

  private uploadLocation(res: TransportResponse, base: URL, context: RequestContext): URL {
    const location = headerString(res.headers.location);
    if (!location) throw new RegistryError(context.registry, context.repository, context.operation, res.status, 'BLOB_UPLOAD_INVALID', 'the registry gave no upload Location');
    return new URL(location, base);
  }

  /** Sends with authorization, re-authorizing once on a 401. A streamed body is opened afresh for the second try. */
  private async send(context: RequestContext & { host: string }, scopes: string[], init: SendInit): Promise<TransportResponse> {
    let authorization = await this.auth.authorization(context.host, scopes, context);
    for (let attempt = 0; ; attempt++) {
      const body = typeof init.body === 'function' ? await init.body() : init.body;
      const res = await this.transport.send({
        ...context,
        method: init.method,
        url: init.url,
        headers: { ...init.headers, authorization },
        ...(body ? { body } : {}),
        followRedirects: init.followRedirects ?? 0,
      });
      if (res.status !== 401) return res;
      res.discard();
      if (body && !Buffer.isBuffer(body)) body.destroy();
      if (attempt > 0) throw await this.auth.refused(context.host, scopes, res.headers['www-authenticate'], context);
      authorization = await this.auth.onUnauthorized(context.host, scopes, res.headers['www-authenticate'], authorization, context);
    }
  }

  private retrying<T>(context: RequestContext, task: () => Promise<T>): Promise<T> {
    const attempts = this.retryPolicy.attempts ?? 5;
    return withRetry(task, this.retryPolicy, (error, delay, attempt) =>
      this.transport.log?.(`retrying ${context.operation} on ${context.registry}/${context.repository ?? ''} in ${Math.round(delay)} ms (attempt ${attempt + 1} of ${attempts}): ${error.message}`),
    );
  }

  private context(repo: RegistryLocation, operation: RegistryOperation): RequestContext & { host: string } {
    return { registry: normalizeRegistry(repo.registry), repository: repo.repository, operation, host: registryWireHost(repo.registry) };
  }

  private url(repo: RegistryLocation, path: string): URL {
    return new URL(path, this.transport.baseUrl(registryWireHost(repo.registry)));
  }
}

function manifestReference(ref: ManifestLocation): string {
  const reference = ref.digest ?? ref.tag;
  if (!reference) throw new TypeError(`manifest reference for ${ref.registry}/${ref.repository} has neither a tag nor a digest`);
  return reference;
}

function descriptorOf(manifest: RawManifest): Descriptor {
  return { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.bytes.length };
}

function headerString(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function mediaTypeOf(contentType: string | undefined): string | undefined {
  const type = contentType?.split(';')[0]?.trim();
  return type || undefined;
}

function embeddedMediaType(bytes: Buffer): string | undefined {
  try {
    const value = (JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown }).mediaType;
    return typeof value === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Throws the registry's error unless the status is expected. */
async function expectStatus(res: TransportResponse, expected: number[], context: RequestContext): Promise<void> {
  if (expected.includes(res.status)) return;
  throw responseError(context, res.status, res.headers, await res.text(64 << 10));
}

async function readLimited(res: TransportResponse, limit: number, context: RequestContext): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) {
        res.body.destroy();
        throw new RegistryError(context.registry, context.repository, context.operation, res.status, 'MANIFEST_INVALID', `response larger than ${limit} bytes`);
      }
      chunks.push(chunk);
    }
  } catch (error) {
    // A connection lost mid-body is a network error like any other, so the caller's retry covers it.
    throw networkError(context, error, res.url.host);
  }
  return Buffer.concat(chunks);
}

/** The `rel="next"` target of a Link header, resolved against the current URL. */
export function nextLink(link: string | undefined, base: URL): URL | undefined {
  if (!link) return undefined;
  for (const part of link.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>\s*;(.*)$/.exec(part);
    if (m && /\brel\s*=\s*"?next"?/i.test(m[2]!)) return new URL(m[1]!, base);
  }
  return undefined;
}

/** Cuts a stream into buffers of `size` bytes (the last may be shorter). */
async function* chunksOf(stream: Readable, size: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let length = 0;
  for await (const data of stream as AsyncIterable<Buffer>) {
    let rest = data;
    while (length + rest.length >= size) {
      const take = size - length;
      parts.push(rest.subarray(0, take));
      yield Buffer.concat(parts);
      parts = [];
      length = 0;
      rest = rest.subarray(take);
    }
    if (rest.length) {
      parts.push(rest);
      length += rest.length;
    }
  }
  if (length) yield Buffer.concat(parts);
}
