import { RegistryError } from '../errors';
import { parseWwwAuthenticate, type AuthChallenge } from './challenge';
import type { CredentialResolver, RegistryCredential } from './credentials';
import type { Transport } from './transport';
import { networkError, responseError, type RequestContext } from './wire-errors';

/** `repository:NAME:ACTIONS`, the scope a bearer token is asked for. */
export function repositoryScope(repository: string, actions: ReadonlyArray<'pull' | 'push' | 'delete'>): string {
  return `repository:${repository}:${actions.join(',')}`;
}

interface CachedToken {
  authorization: string;
  expiresAt: number;
}

/** What the token service answers (docker's token spec and OAuth2's). */
interface TokenResponse {
  token?: string;
  access_token?: string;
  expires_in?: number;
  issued_at?: string;
}

const EXPIRY_MARGIN_MS = 15_000;
const DEFAULT_TOKEN_LIFETIME_S = 60;

function basicAuthorization(credential: RegistryCredential): string {
  return 'Basic ' + Buffer.from(`${credential.username ?? ''}:${credential.password ?? ''}`).toString('base64');
}

/**
 * Authorization for registry requests: anonymous until a registry asks, then basic or bearer as its
 * challenge says. Bearer tokens are cached per (host, scope set) until shortly before they expire.
 */
export class Authenticator {
  /** The challenge each host answered with; absent until a 401 teaches it. */
  private readonly challenges = new Map<string, AuthChallenge>();
  private readonly tokens = new Map<string, CachedToken>();
  private readonly pending = new Map<string, Promise<CachedToken>>();

  constructor(
    private readonly transport: Transport,
    private readonly credentials: CredentialResolver,
  ) {}

  /** The Authorization header to send, from what is known already; undefined means try anonymously. */
  async authorization(host: string, scopes: string[], context: RequestContext): Promise<string | undefined> {
    const challenge = this.challenges.get(host);
    if (!challenge) return undefined;
    if (challenge.scheme === 'basic') {
      const credential = await this.credentials.get(host);
      return credential?.username !== undefined ? basicAuthorization(credential) : undefined;
    }
    return (await this.bearer(host, challenge, scopes, context)).authorization;
  }

  /** Handles a first 401: learns the challenge and returns a fresh Authorization to retry with. */
  async onUnauthorized(host: string, scopes: string[], wwwAuthenticate: string | string[] | undefined, previous: string | undefined, context: RequestContext): Promise<string> {
    const challenge = this.learn(host, wwwAuthenticate, context);
    const credential = await this.credentials.get(host);
    if (challenge.scheme === 'basic') {
      if (credential?.username === undefined) throw this.unauthorized(context, `no credentials for ${context.registry}`);
      const authorization = basicAuthorization(credential);
      if (authorization === previous) throw this.unauthorized(context, `the registry rejected the credentials of user ${JSON.stringify(credential.username)}`);
      return authorization;
    }
    this.tokens.delete(tokenKey(host, scopes));
    return (await this.bearer(host, challenge, scopes, context)).authorization;
  }

  /** The error for a 401 that came back although fresh authorization was sent. */
  async refused(host: string, scopes: string[], wwwAuthenticate: string | string[] | undefined, context: RequestContext): Promise<RegistryError> {
    this.tokens.delete(tokenKey(host, scopes));
    const challenge = parseWwwAuthenticate(wwwAuthenticate).find((c) => c.scheme === 'bearer' || c.scheme === 'basic');
    const credential = await this.credentials.get(host);
    const who = credential?.username !== undefined ? `user ${JSON.stringify(credential.username)}` : credential ? 'the identity token' : 'anonymous access';
    if (challenge?.params['error'] === 'insufficient_scope') {
      return new RegistryError(context.registry, context.repository, context.operation, 401, 'DENIED', `${who} was not granted ${scopes.join(' ')}`);
    }
    if (challenge?.scheme === 'basic') return this.unauthorized(context, `the registry rejected the credentials of ${who}`);
    return this.unauthorized(context, `the registry refused the token issued to ${who}`);
  }

  private learn(host: string, wwwAuthenticate: string | string[] | undefined, context: RequestContext): AuthChallenge {
    const challenges = parseWwwAuthenticate(wwwAuthenticate);
    const challenge = challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
    if (!challenge) {
      throw new RegistryError(context.registry, context.repository, context.operation, 401, 'UNAUTHORIZED', 'the registry asks for an authentication scheme tessera does not support');
    }
    this.challenges.set(host, challenge);
    return challenge;
  }

  private unauthorized(context: RequestContext, detail: string): RegistryError {
    return new RegistryError(context.registry, context.repository, context.operation, 401, 'UNAUTHORIZED', detail);
  }

  private bearer(host: string, challenge: AuthChallenge, scopes: string[], context: RequestContext): Promise<CachedToken> {
    const key = tokenKey(host, scopes);
    const cached = this.tokens.get(key);
    if (cached && cached.expiresAt > Date.now()) return Promise.resolve(cached);
    let pending = this.pending.get(key);
    if (!pending) {
      pending = this.fetchToken(host, challenge, scopes, context)
        .then((token) => {
          this.tokens.set(key, token);
          return token;
        })
        .finally(() => this.pending.delete(key));
      this.pending.set(key, pending);
    }
    return pending;
  }

  private async fetchToken(host: string, challenge: AuthChallenge, scopes: string[], context: RequestContext): Promise<CachedToken> {
    const realm = challenge.params['realm'];
    const authContext: RequestContext = { ...context, operation: 'auth' };
    if (!realm) throw new RegistryError(context.registry, context.repository, 'auth', 401, 'UNAUTHORIZED', 'the bearer challenge names no token realm');
    let realmUrl: URL;
    try {
      realmUrl = new URL(realm);
    } catch {
      throw new RegistryError(context.registry, context.repository, 'auth', 401, 'UNAUTHORIZED', 'the bearer challenge names an invalid token realm');
    }
    const credential = await this.credentials.get(host);
    const service = challenge.params['service'];
    const allScopes = [...new Set(scopes)].sort();
    let response;
    try {
      if (credential?.identityToken) {
        // An identity token is an OAuth2 refresh token: trade it at the realm by POST.
        const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: credential.identityToken, client_id: 'tessera' });
        if (service) form.set('service', service);
        if (allScopes.length) form.set('scope', allScopes.join(' '));
        response = await this.transport.send({
          ...authContext,
          method: 'POST',
          url: realmUrl,
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: Buffer.from(form.toString()),
        });
      } else {
        const url = new URL(realmUrl);
        if (service) url.searchParams.set('service', service);
        for (const scope of allScopes) url.searchParams.append('scope', scope);
        if (credential?.username) url.searchParams.set('account', credential.username);
        response = await this.transport.send({
          ...authContext,
          method: 'GET',
          url,
          headers: credential?.username !== undefined ? { authorization: basicAuthorization(credential) } : {},
        });
      }
    } catch (e) {
      throw networkError(authContext, e, realmUrl.host);
    }
    const text = await response.text(1 << 20);
    if (response.status === 401 || response.status === 403) {
      const who = credential?.username !== undefined ? `user ${JSON.stringify(credential.username)}` : credential ? 'the identity token' : 'anonymous access';
      throw new RegistryError(context.registry, context.repository, 'auth', response.status, 'UNAUTHORIZED', `the token service at ${realmUrl.host} rejected ${who}`);
    }
    if (response.status !== 200) throw responseError(authContext, response.status, response.headers, text);
    let body: TokenResponse;
    try {
      body = JSON.parse(text) as TokenResponse;
    } catch {
      throw new RegistryError(context.registry, context.repository, 'auth', response.status, 'UNAUTHORIZED', `the token service at ${realmUrl.host} answered with something other than JSON`);
    }
    const token = body.token ?? body.access_token;
    if (!token) throw new RegistryError(context.registry, context.repository, 'auth', response.status, 'UNAUTHORIZED', `the token service at ${realmUrl.host} returned no token`);
    const issuedAt = body.issued_at ? Date.parse(body.issued_at) : NaN;
    const start = Number.isFinite(issuedAt) && issuedAt <= Date.now() ? issuedAt : Date.now();
    const lifetimeMs = (body.expires_in && body.expires_in > 0 ? body.expires_in : DEFAULT_TOKEN_LIFETIME_S) * 1000;
    return { authorization: `Bearer ${token}`, expiresAt: start + Math.max(0, lifetimeMs - EXPIRY_MARGIN_MS) };
  }
}

function tokenKey(host: string, scopes: string[]): string {
  return `${host} ${[...new Set(scopes)].sort().join(' ')}`;
}
