import { readFileSync } from 'node:fs';
import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import type https from 'node:https';
import { pipeline, type Readable } from 'node:stream';
import { RegistryError } from '../errors';
import { Limiter } from './limiter';
import { networkError, type RequestContext } from './wire-errors';

// TLS loads only for https registries: it is a tenth of the CLI's start-up, and local registries are plain HTTP.
let httpsModule: typeof https | undefined;
const loadHttps = (): typeof https => (httpsModule ??= require('node:https') as typeof https);

export interface TransportOptions {
  /** Registry hosts (`host` or `host:port`) spoken to over plain HTTP. */
  insecureRegistries?: string[];
  /** Skip TLS certificate checks for every host (true) or for the hosts listed. */
  skipTlsVerify?: boolean | string[];
  /** A CA certificate (PEM file) to trust per host. */
  registryCertificates?: Record<string, string>;
  /** Requests in flight per host, body transfer included (default 8). */
  maxConcurrencyPerHost?: number;
  /** Socket inactivity allowed during a request, in ms (default: TESSERA_REGISTRY_TIMEOUT_MS from the environment, else 60 s). */
  timeoutMs?: number;
  /** Time allowed to open a connection, in ms (default: the smaller of timeoutMs and 15 s). */
  connectTimeoutMs?: number;
  /** Called with one line per request: method, URL without secret query values, status. Never headers. */
  log?: (line: string) => void;
}

export interface TransportRequest extends RequestContext {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  url: URL;
  headers?: Record<string, string | number | undefined>;
  /** A buffer, or a stream read exactly once. */
  body?: Buffer | Readable;
  /** Follow up to this many redirects (GET and HEAD only); Authorization is dropped when the origin changes. */
  followRedirects?: number;
}

/** A response whose body must be read to the end or discarded: it holds a concurrency slot until then. */
export interface TransportResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The URL that answered (after redirects). */
  url: URL;
  body: IncomingMessage;
  /** The body as text, read up to `limit` bytes (longer bodies are cut). */
  text(limit?: number): Promise<string>;
  /** Drain and drop the body. */
  discard(): void;
}

const LOGGED_QUERY_KEYS = new Set(['n', 'last', 'digest', 'mount', 'from', 'service', 'scope']);

/** A URL fit for a log line: query values other than known harmless ones are replaced. */
export function redactUrl(url: URL): string {
  const copy = new URL(url.href);
  copy.username = '';
  copy.password = '';
  for (const key of [...copy.searchParams.keys()]) {
    if (!LOGGED_QUERY_KEYS.has(key)) copy.searchParams.set(key, 'REDACTED');
  }
  return copy.href;
}

/** Lets every command (and tests) shorten the registry timeout without a flag on each. */
function timeoutFromEnvironment(): number | undefined {
  const text = process.env.TESSERA_REGISTRY_TIMEOUT_MS;
  return text && /^\d+$/.test(text) && Number(text) > 0 ? Number(text) : undefined;
}

function hostMatches(list: readonly string[], url: URL): boolean {
  return list.includes(url.host) || list.includes(url.hostname);
}

/** HTTP(S) with keep-alive agents, per-host TLS settings, per-host concurrency limits, timeouts and request logging. */
export class Transport {
  private readonly httpAgent = new http.Agent({ keepAlive: true });
  private readonly httpsAgents = new Map<string, https.Agent>();
  private readonly limiters = new Map<string, Limiter>();
  private readonly idleTimeout: number;
  private readonly connectTimeout: number;

  constructor(private readonly options: TransportOptions = {}) {
    this.idleTimeout = options.timeoutMs ?? timeoutFromEnvironment() ?? 60_000;
    this.connectTimeout = options.connectTimeoutMs ?? Math.min(this.idleTimeout, 15_000);
  }

  /** `http://host` for insecure registries, else `https://host`. */
  baseUrl(host: string): URL {
    const insecure = this.options.insecureRegistries ?? [];
    const url = new URL(`https://${host}`);
    if (hostMatches(insecure, url)) return new URL(`http://${host}`);
    return url;
  }

  get log(): ((line: string) => void) | undefined {
    return this.options.log;
  }

  async send(request: TransportRequest): Promise<TransportResponse> {
    let url = request.url;
    let headers = request.headers ?? {};
    for (let redirects = 0; ; redirects++) {
      const response = await this.sendOnce({ ...request, url, headers });
      const location = response.headers.location;
      const canFollow = (request.method === 'GET' || request.method === 'HEAD') && redirects < (request.followRedirects ?? 0);
      if (!canFollow || ![301, 302, 303, 307, 308].includes(response.status) || !location) return response;
      response.discard();
      const next = new URL(location, url);
      if (next.origin !== url.origin) headers = Object.fromEntries(Object.entries(headers).filter(([k]) => k.toLowerCase() !== 'authorization'));
      url = next;
    }
  }

  private agentFor(url: URL): http.Agent {
    if (url.protocol === 'http:') return this.httpAgent;
    let agent = this.httpsAgents.get(url.host);
    if (!agent) {
      const skip = this.options.skipTlsVerify;
      const caPath = this.options.registryCertificates?.[url.host] ?? this.options.registryCertificates?.[url.hostname];
      agent = new (loadHttps().Agent)({
        keepAlive: true,
        rejectUnauthorized: !(skip === true || (Array.isArray(skip) && hostMatches(skip, url))),
        ...(caPath ? { ca: readFileSync(caPath) } : {}),
      });
      this.httpsAgents.set(url.host, agent);
    }
    return agent;
  }

  private limiterFor(host: string): Limiter {
    let limiter = this.limiters.get(host);
    if (!limiter) {
      limiter = new Limiter(this.options.maxConcurrencyPerHost ?? 8);
      this.limiters.set(host, limiter);
    }
    return limiter;
  }

  private async sendOnce(request: TransportRequest & { headers: Record<string, string | number | undefined> }): Promise<TransportResponse> {
    const { url, method } = request;
    const started = Date.now();
    const logLine = (outcome: string) => this.options.log?.(`${method} ${redactUrl(url)} → ${outcome} (${Date.now() - started} ms)`);
    let agent: http.Agent;
    try {
      agent = this.agentFor(url);
    } catch (e) {
      throw new RegistryError(request.registry, request.repository, request.operation, undefined, 'TLS', `cannot read the CA certificate for ${url.host}: ${(e as Error).message}`);
    }
    const release = await this.limiterFor(url.host).acquire();
    const headers: Record<string, string | number> = { 'user-agent': 'tessera' };
    for (const [k, v] of Object.entries(request.headers)) if (v !== undefined) headers[k.toLowerCase()] = v;
    if (Buffer.isBuffer(request.body)) headers['content-length'] = request.body.length;
    else if (!request.body && ['PUT', 'POST', 'PATCH'].includes(method) && headers['content-length'] === undefined) headers['content-length'] = 0;

    return new Promise<TransportResponse>((resolve, reject) => {
      let settled = false;
      let bodyError: Error | undefined;
      const fail = (error: unknown) => {
        release();
        if (settled) return;
        settled = true;
        const mapped = bodyError ?? networkError(request, error, url.host);
        logLine(mapped instanceof RegistryError ? mapped.code : (mapped as Error).name);
        reject(mapped);
      };
      const timeoutError = (what: string) =>
        new RegistryError(request.registry, request.repository, request.operation, undefined, 'TIMEOUT', `${what} ${url.host}`);
      const req = (url.protocol === 'http:' ? http : loadHttps()).request(url, { method, headers, agent });
      req.setTimeout(this.idleTimeout, () => {
        const error = timeoutError(`no data for ${Math.round(this.idleTimeout / 1000)} s from`);
        if (currentResponse) currentResponse.destroy(error);
        req.destroy(error);
      });
      let currentResponse: IncomingMessage | undefined;
      req.once('socket', (socket) => {
        if (!socket.connecting) return;
        const timer = setTimeout(() => req.destroy(timeoutError(`cannot connect within ${Math.round(this.connectTimeout / 1000)} s to`)), this.connectTimeout);
        socket.once('connect', () => clearTimeout(timer));
        socket.once('close', () => clearTimeout(timer));
      });
      req.once('error', fail);
      req.once('response', (res) => {
        currentResponse = res;
        settled = true;
        logLine(String(res.statusCode));
        res.once('end', release);
        res.once('close', release);
        res.once('error', release);
        if (method === 'HEAD') res.resume();
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          url,
          body: res,
          discard: () => {
            res.resume();
          },
          text: (limit = 1 << 20) =>
            new Promise<string>((done, failText) => {
              // A HEAD answer has no body, and it was drained on arrival.
              if (method === 'HEAD' || res.readableEnded) return done('');
              const chunks: Buffer[] = [];
              let size = 0;
              res.on('data', (chunk: Buffer) => {
                if (size < limit) chunks.push(chunk.subarray(0, limit - size));
                size += chunk.length;
              });
              res.once('end', () => done(Buffer.concat(chunks).toString('utf8')));
              res.once('error', (e) => failText(networkError(request, e, url.host)));
            }),
        });
      });
      if (request.body && !Buffer.isBuffer(request.body)) {
        // An error of the source (say, a digest mismatch) is the real cause, not the aborted request.
        request.body.once('error', (error) => (bodyError ??= error));
        pipeline(request.body, req, (error) => {
          if (error && !settled) req.destroy(error);
        });
      } else {
        req.end(request.body);
      }
    });
  }

  /** Closes idle keep-alive connections. */
  close(): void {
    this.httpAgent.destroy();
    for (const agent of this.httpsAgents.values()) agent.destroy();
  }
}
