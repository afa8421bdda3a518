import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { canonicalJsonBytes, MediaType, sha256Digest, type Descriptor, type ImageManifest } from '@tessera/oci';

/** A random blob and its descriptor. */
export function randomBlob(size: number, mediaType: string = MediaType.ociLayerGzip): { bytes: Buffer; descriptor: Descriptor } {
  const bytes = randomBytes(size);
  return { bytes, descriptor: { mediaType, digest: sha256Digest(bytes), size } };
}

export const openBuffer = (bytes: Buffer) => async () => Readable.from([bytes]);

/** A unique repository name per test, so tests never see each other's tags. */
export function uniqueRepository(prefix: string): string {
  return `tessera-test/${prefix}-${randomBytes(4).toString('hex')}`;
}

/** A minimal image manifest over the given config and layers. */
export function manifestBytes(config: Descriptor, layers: Descriptor[], mediaType: string = MediaType.ociManifest): Buffer {
  const manifest: ImageManifest = { schemaVersion: 2, mediaType, config, layers };
  return canonicalJsonBytes(manifest);
}

export async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export interface ProxiedRequest {
  method: string;
  url: string;
}

/**
 * An HTTP proxy in front of a real registry, to inject faults or features the Debian registry lacks.
 * `intercept` may answer a request itself (return true); otherwise the request is forwarded unchanged.
 */
export async function startRegistryProxy(
  target: string,
  intercept: (req: http.IncomingMessage, res: http.ServerResponse, forward: () => void) => boolean | Promise<boolean> = () => false,
): Promise<{ host: string; requests: ProxiedRequest[]; stop(): Promise<void> }> {
  const requests: ProxiedRequest[] = [];
  const server = http.createServer(async (req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '' });
    const forward = () => {
      const upstream = http.request(`http://${target}${req.url}`, { method: req.method, headers: { ...req.headers, host: target } }, (answer) => {
        const headers = { ...answer.headers };
        // Locations name the registry; keep the client talking to the proxy.
        if (typeof headers.location === 'string') headers.location = headers.location.replace(`//${target}`, `//${req.headers.host}`);
        res.writeHead(answer.statusCode ?? 502, headers);
        answer.pipe(res);
      });
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    };
    if (!(await intercept(req, res, forward))) forward();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
