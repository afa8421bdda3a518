import { execFile } from 'node:child_process';
import { randomBytes, sign } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export type TokenAction = 'pull' | 'push' | 'delete' | '*';

export interface TokenUser {
  password: string;
  /** Actions this user may have on every repository. */
  actions: TokenAction[];
  /** An OAuth2 refresh token (docker's `identitytoken`) accepted for this user at POST /token. */
  refreshToken?: string;
}

/** One request the issuer answered. */
export interface TokenRequestRecord {
  method: string;
  /** The basic-auth user, or undefined for anonymous. */
  account: string | undefined;
  /** `repository:NAME:ACTIONS` as requested. */
  scopes: string[];
  /** `repository:NAME:ACTIONS` as granted. */
  granted: string[];
  status: number;
}

export interface TokenIssuerOptions {
  users: Record<string, TokenUser>;
  /** Issuer and service names, which the registry's config must repeat. */
  issuer?: string;
  service?: string;
  /** Token lifetime in seconds (default 300). */
  expiresIn?: number;
  /** Answer with `access_token` instead of `token` (both are allowed by the spec). */
  oauthField?: boolean;
}

export interface RunningTokenIssuer {
  /** `http://127.0.0.1:PORT/token`, the realm for the registry's config. */
  realm: string;
  issuer: string;
  service: string;
  /** PEM of the signing certificate: the registry's `rootcertbundle`. */
  certificatePath: string;
  requests: TokenRequestRecord[];
  /** Every token handed out, so tests can look for them where they must never appear. */
  tokens: string[];
  stop(): Promise<void>;
}

const base64url = (data: Buffer | string) => Buffer.from(data).toString('base64url');

/**
 * A small docker token service (https://distribution.github.io/distribution/spec/auth/token/):
 * checks basic credentials, grants each requested scope's actions that the user holds,
 * and signs an RS256 JWT carrying its certificate in `x5c`.
 */
export async function startTokenIssuer(options: TokenIssuerOptions): Promise<RunningTokenIssuer> {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-token-issuer-'));
  const keyPath = join(dir, 'key.pem');
  const certificatePath = join(dir, 'cert.pem');
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certificatePath, '-days', '2', '-subj', '/CN=tessera-token-issuer']);
  const privateKey = await readFile(keyPath, 'utf8');
  const certificatePem = await readFile(certificatePath, 'utf8');
  const certificateDer = Buffer.from(certificatePem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s/g, ''), 'base64');
  const issuer = options.issuer ?? 'tessera-test-issuer';
  const service = options.service ?? 'tessera-test-registry';
  const expiresIn = options.expiresIn ?? 300;
  const requests: TokenRequestRecord[] = [];
  const tokens: string[] = [];

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://issuer');
    // GET carries the request in the query; POST (OAuth2 refresh-token grant) in a form body.
    let form = url.searchParams;
    if (req.method === 'POST') {
      let text = '';
      for await (const chunk of req) text += String(chunk);
      form = new URLSearchParams(text);
    }
    const scopes = form.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
    const record: TokenRequestRecord = { method: req.method ?? '', account: undefined, scopes, granted: [], status: 200 };
    requests.push(record);
    const answer = (status: number, body: object) => {
      record.status = status;
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (url.pathname !== '/token' || (req.method !== 'GET' && req.method !== 'POST')) return answer(404, { error: 'not found' });
    if (form.get('service') !== service) return answer(400, { error: 'unknown service' });

    let user: TokenUser | undefined;
    const header = req.headers.authorization;
    if (req.method === 'POST') {
      const refresh = form.get('refresh_token');
      const found = Object.entries(options.users).find(([, u]) => u.refreshToken !== undefined && u.refreshToken === refresh);
      if (form.get('grant_type') !== 'refresh_token' || !found) return answer(401, { error: 'invalid_grant' });
      record.account = found[0];
      user = found[1];
    } else if (header) {
      const m = /^Basic (.+)$/i.exec(header);
      const decoded = m ? Buffer.from(m[1]!, 'base64').toString('utf8') : '';
      const colon = decoded.indexOf(':');
      const name = decoded.slice(0, colon);
      record.account = name;
      user = options.users[name];
      if (colon < 0 || !user || user.password !== decoded.slice(colon + 1)) return answer(401, { details: 'invalid credentials' });
    }

    const access: Array<{ type: string; name: string; actions: string[] }> = [];
    for (const scope of scopes) {
      const [type, ...rest] = scope.split(':');
      const actions = (rest.pop() ?? '').split(',');
      const name = rest.join(':');
      if (type !== 'repository' || !name) continue;
      const held = user?.actions ?? [];
      const granted = actions.filter((a) => held.includes('*') || held.includes(a as TokenAction));
      if (granted.length) {
        access.push({ type, name, actions: granted });
        record.granted.push(`${type}:${name}:${granted.join(',')}`);
      }
    }
    const now = Math.floor(Date.now() / 1000);
    const jwtHeader = { typ: 'JWT', alg: 'RS256', x5c: [certificateDer.toString('base64')] };
    const claims = { iss: issuer, sub: record.account ?? '', aud: service, exp: now + expiresIn, nbf: now - 5, iat: now, jti: randomBytes(8).toString('hex'), access };
    const signingInput = `${base64url(JSON.stringify(jwtHeader))}.${base64url(JSON.stringify(claims))}`;
    const token = `${signingInput}.${base64url(sign('sha256', Buffer.from(signingInput), privateKey))}`;
    tokens.push(token);
    const body = options.oauthField || req.method === 'POST' ? { access_token: token } : { token };
    answer(200, { ...body, expires_in: expiresIn, issued_at: new Date(now * 1000).toISOString() });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    issuer,
    service,
    certificatePath,
    requests,
    tokens,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
