import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * What the proxy can do to one request:
 * - `status-500` / `status-502` / `status-503`: answer with that status (the registry never sees the request);
 * - `rate-limit`: answer 429 with `Retry-After`;
 * - `reset-request`: reset the connection while the request body is arriving (uploads only);
 * - `reset-response`: forward, then reset the connection halfway through the answer;
 * - `truncate-response`: forward, then close the connection cleanly halfway through the answer's body;
 * - `stall`: read the request and never answer, so the client must time out;
 * - `refuse-mount`: turn a cross-repository mount POST into a plain upload POST, so the registry answers 202.
 */
export type FaultKind =
  | 'status-500'
  | 'status-502'
  | 'status-503'
  | 'rate-limit'
  | 'reset-request'
  | 'reset-response'
  | 'truncate-response'
  | 'stall'
  | 'refuse-mount';

export const ALL_FAULTS: readonly FaultKind[] = [
  'status-500',
  'status-502',
  'status-503',
  'rate-limit',
  'reset-request',
  'reset-response',
  'truncate-response',
  'stall',
  'refuse-mount',
];

export interface ProxiedRequest {
  method: string;
  url: string;
  /** The fault injected into this request, if any. */
  fault?: FaultKind;
}

/** A request as a rule sees it, before anything is forwarded. */
export interface FaultRequestInfo {
  method: string;
  url: URL;
  headers: http.IncomingHttpHeaders;
  /** Position of this request among all the proxy has seen, from 0. */
  index: number;
}

/** Injects `fault` into requests `when` matches, at most `times` times (default: every match). */
export interface FaultRule {
  fault: FaultKind;
  when?: (request: FaultRequestInfo) => boolean;
  times?: number;
}

/** Answers a request itself (return true), or lets the proxy forward it (false); `forward` forwards it now. */
export type Interceptor = (req: http.IncomingMessage, res: http.ServerResponse, forward: () => void) => boolean | Promise<boolean>;

export interface FaultProxyOptions {
  /** `host:port` of the plain-HTTP registry behind the proxy. */
  target: string;
  /** Share of requests (0–1) given a random fault from `faults`, besides the rules. Default 0. */
  rate?: number;
  /** Faults drawn from at `rate`; a fault that does not apply to a request (a reset-request on a GET) is redrawn among those that do. Default ALL_FAULTS. */
  faults?: readonly FaultKind[];
  /** Seed of the random draws, so a failing run can be replayed. Default 1. */
  seed?: number;
  /** Checked first, in order. */
  rules?: FaultRule[];
  /** Custom answers, checked before the rules. */
  intercept?: Interceptor;
  /** `Retry-After` of a rate-limit answer, in seconds. Default 1. */
  retryAfterSeconds?: number;
  /** How long a stalled request is held before the connection is dropped, in ms. Default 120 s. */
  stallMs?: number;
}

export interface FaultProxy {
  /** `127.0.0.1:PORT`, to use as the registry host in references. */
  host: string;
  requests: ProxiedRequest[];
  /** How many times each fault was injected. */
  counts: Record<FaultKind, number>;
  /** Total faults injected. */
  faulted(): number;
  /** Changes the random fault rate from now on. */
  setRate(rate: number): void;
  stop(): Promise<void>;
}

/** mulberry32: small, seedable, good enough to pick faults. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hasRequestBody(info: FaultRequestInfo): boolean {
  return Number(info.headers['content-length'] ?? 0) > 0 || info.headers['transfer-encoding'] !== undefined;
}

function isMount(info: FaultRequestInfo): boolean {
  return info.method === 'POST' && info.url.searchParams.has('mount');
}

/** Whether `fault` can happen to this request at all. */
export function faultApplies(fault: FaultKind, info: FaultRequestInfo): boolean {
  if (fault === 'reset-request') return hasRequestBody(info);
  if (fault === 'refuse-mount') return isMount(info);
  return true;
}

/**
 * An HTTP proxy on 127.0.0.1 in front of a real registry that injects faults by rule and at a seeded random rate.
 * Everything else is forwarded unchanged, except that `Location` headers are rewritten to point at the proxy.
 */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const { target } = options;
  const random = seededRandom(options.seed ?? 1);
  let rate = options.rate ?? 0;
  const faults = options.faults ?? ALL_FAULTS;
  const rules = (options.rules ?? []).map((rule) => ({ ...rule, left: rule.times ?? Infinity }));
  const requests: ProxiedRequest[] = [];
  const counts = Object.fromEntries(ALL_FAULTS.map((f) => [f, 0])) as Record<FaultKind, number>;
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();

  const choose = (info: FaultRequestInfo): FaultKind | undefined => {
    for (const rule of rules) {
      if (rule.left > 0 && faultApplies(rule.fault, info) && (!rule.when || rule.when(info))) {
        rule.left--;
        return rule.fault;
      }
    }
    if (rate <= 0 || random() >= rate) return undefined;
    const applicable = faults.filter((f) => faultApplies(f, info));
    return applicable.length ? applicable[Math.floor(random() * applicable.length)] : undefined;
  };

  const server = http.createServer(async (req, res) => {
    const record: ProxiedRequest = { method: req.method ?? '', url: req.url ?? '' };
    const info: FaultRequestInfo = { method: record.method, url: new URL(record.url, `http://${target}`), headers: req.headers, index: requests.length };
    requests.push(record);
    const forward = (path = req.url ?? '/', onAnswer: (answer: http.IncomingMessage, headers: http.OutgoingHttpHeaders) => void = pipeAnswer) => {
      const upstream = http.request(`http://${target}${path}`, { method: req.method, headers: { ...req.headers, host: target } }, (answer) => {
        const headers: http.OutgoingHttpHeaders = { ...answer.headers };
        // Locations name the registry; keep the client talking to the proxy.
        if (typeof headers.location === 'string') headers.location = headers.location.replace(`//${target}`, `//${req.headers.host}`);
        onAnswer(answer, headers);
      });
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    };
    const pipeAnswer = (answer: http.IncomingMessage, headers: http.OutgoingHttpHeaders) => {
      res.writeHead(answer.statusCode ?? 502, headers);
      answer.pipe(res);
    };
    if (options.intercept && (await options.intercept(req, res, () => forward()))) return;

    const fault = choose(info);
    if (!fault) return forward();
    record.fault = fault;
    counts[fault]++;
    switch (fault) {
      case 'status-500':
      case 'status-502':
      case 'status-503': {
        req.resume();
        const status = Number(fault.slice('status-'.length));
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: `injected ${status}` }] }));
        return;
      }
      case 'rate-limit':
        req.resume();
        res
          .writeHead(429, { 'content-type': 'application/json', 'retry-after': String(options.retryAfterSeconds ?? 1) })
          .end(JSON.stringify({ errors: [{ code: 'TOOMANYREQUESTS', message: 'injected rate limit' }] }));
        return;
      case 'reset-request': {
        // Let some of the body arrive (and reach the registry), then cut the connection mid-upload.
        let received = 0;
        const half = Math.max(1, Number(req.headers['content-length'] ?? 2) / 2);
        const upstream = http.request(`http://${target}${req.url}`, { method: req.method, headers: { ...req.headers, host: target } });
        upstream.on('error', () => undefined);
        req.on('data', (chunk: Buffer) => {
          received += chunk.length;
          upstream.write(chunk);
          if (received >= half) {
            upstream.destroy();
            req.socket.resetAndDestroy();
          }
        });
        req.on('end', () => {
          upstream.destroy();
          req.socket.resetAndDestroy();
        });
        return;
      }
      case 'reset-response':
      case 'truncate-response':
        return forward(req.url, (answer, headers) => {
          const cut = () => (fault === 'reset-response' ? req.socket.resetAndDestroy() : req.socket.end());
          const length = Number(answer.headers['content-length'] ?? 0);
          if (req.method === 'HEAD' || length < 2) {
            answer.resume();
            return cut();
          }
          res.writeHead(answer.statusCode ?? 502, headers);
          let sent = 0;
          answer.on('data', (chunk: Buffer) => {
            if (sent >= length / 2) return;
            const part = chunk.subarray(0, Math.ceil(length / 2) - sent);
            sent += part.length;
            res.write(part);
            if (sent >= length / 2) {
              answer.destroy();
              // Give the written half a moment to leave before the connection goes.
              const timer = setTimeout(() => (timers.delete(timer), cut()), 20);
              timers.add(timer);
            }
          });
        });
      case 'stall': {
        req.resume();
        const timer = setTimeout(() => (timers.delete(timer), req.socket.destroy()), options.stallMs ?? 120_000);
        timers.add(timer);
        req.socket.once('close', () => (clearTimeout(timer), timers.delete(timer)));
        return;
      }
      case 'refuse-mount': {
        const url = new URL(info.url);
        url.searchParams.delete('mount');
        url.searchParams.delete('from');
        return forward(url.pathname + url.search);
      }
    }
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    requests,
    counts,
    faulted: () => Object.values(counts).reduce((a, b) => a + b, 0),
    setRate: (next) => {
      rate = next;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        for (const timer of timers) clearTimeout(timer);
        for (const socket of sockets) socket.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A plain forwarding proxy with a custom `intercept` and no random faults. */
export function startRegistryProxy(target: string, intercept: Interceptor = () => false): Promise<FaultProxy> {
  return startFaultProxy({ target, intercept });
}
