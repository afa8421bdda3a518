import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MediaType, RegistryClient, RegistryError, parseReference, type RegistryClientOptions } from '@tessera/oci';
import { startHtpasswdRegistry, startTokenRegistry } from '../../../tools/registry/auth';
import { manifestBytes, openBuffer, randomBlob, readAll } from './registry-helpers';

const PASSWORD = 'S3cret-Pa55word-xyz';
const WRONG = 'Wr0ng-Pa55word-abc';

/** Everything a user could see of an error: message, stack and causes. */
function visible(error: unknown): string {
  let text = '';
  for (let e = error as { message?: string; stack?: string; cause?: unknown } | undefined; e; e = e.cause as typeof e) {
    text += `${String(e)}\n${e.stack ?? ''}\n${JSON.stringify(e)}\n`;
  }
  return text;
}

async function roundTrip(client: RegistryClient, host: string, repository: string): Promise<void> {
  const ref = parseReference(`${host}/${repository}:v1`);
  const config = randomBlob(50, MediaType.ociConfig);
  await client.uploadBlob(ref, config.descriptor, openBuffer(config.bytes));
  await client.putManifest(ref, { bytes: manifestBytes(config.descriptor, []), mediaType: MediaType.ociManifest });
  expect((await readAll(await client.openBlob(ref, config.descriptor))).equals(config.bytes)).toBe(true);
  expect((await client.getManifest(ref)).mediaType).toBe(MediaType.ociManifest);
}

describe('basic auth (htpasswd)', () => {
  let registry: Awaited<ReturnType<typeof startHtpasswdRegistry>>;
  let dir: string;
  beforeAll(async () => {
    registry = await startHtpasswdRegistry({ alice: PASSWORD });
    dir = await mkdtemp(join(tmpdir(), 'tessera-auth-test-'));
  });
  afterAll(async () => {
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const options = (extra: RegistryClientOptions, log?: string[]): RegistryClientOptions => ({
    insecureRegistries: [registry.host],
    retry: { attempts: 2, baseDelayMs: 10 },
    ...(log ? { log: (line) => log.push(line) } : {}),
    ...extra,
  });

  it('reads `auth` from config.json in DOCKER_CONFIG', async () => {
    const configDir = join(dir, 'docker-auth');
    await writeFileIn(configDir, 'config.json', JSON.stringify({ auths: { [`http://${registry.host}/v2/`]: { auth: Buffer.from(`alice:${PASSWORD}`).toString('base64') } } }));
    const client = new RegistryClient(options({ env: { HOME: dir, DOCKER_CONFIG: configDir } }));
    await roundTrip(client, registry.host, 'basic/config-json');
    client.close();
  });

  it('reads username/password from $REGISTRY_AUTH_FILE, and explicit credentials win over files', async () => {
    const authFile = join(dir, 'auth.json');
    await writeFile(authFile, JSON.stringify({ auths: { [registry.host]: { username: 'alice', password: PASSWORD } } }));
    const fromFile = new RegistryClient(options({ env: { HOME: join(dir, 'nowhere'), REGISTRY_AUTH_FILE: authFile } }));
    await roundTrip(fromFile, registry.host, 'basic/auth-file');
    const badFile = join(dir, 'bad.json');
    await writeFile(badFile, JSON.stringify({ auths: { [registry.host]: { username: 'alice', password: WRONG } } }));
    const explicit = new RegistryClient(options({ env: { HOME: dir, REGISTRY_AUTH_FILE: badFile }, credentials: { [registry.host]: { username: 'alice', password: PASSWORD } } }));
    await roundTrip(explicit, registry.host, 'basic/explicit');
  });

  it('asks a credHelpers program (docker-credential-NAME get) with the server URL on stdin', async () => {
    const bin = join(dir, 'bin');
    const seen = join(dir, 'helper-stdin');
    await writeFileIn(
      bin,
      'docker-credential-test',
      `#!/bin/sh\n[ "$1" = get ] || exit 2\ncat > '${seen}'\nprintf '{"ServerURL":"%s","Username":"alice","Secret":"${PASSWORD}"}' "$(cat '${seen}')"\n`,
    );
    await chmod(join(bin, 'docker-credential-test'), 0o755);
    const configDir = join(dir, 'docker-helper');
    await writeFileIn(configDir, 'config.json', JSON.stringify({ auths: {}, credHelpers: { [registry.host]: 'test' } }));
    const client = new RegistryClient(options({ env: { HOME: dir, DOCKER_CONFIG: configDir, PATH: `${bin}${delimiter}${process.env['PATH']}` } }));
    await roundTrip(client, registry.host, 'basic/helper');
    expect(await readFile(seen, 'utf8')).toBe(registry.host);
  });

  it('fails with wrong or missing credentials, naming the registry and never showing the password', async () => {
    const log: string[] = [];
    const client = new RegistryClient(options({ env: { HOME: dir }, credentials: { [registry.host]: { username: 'alice', password: WRONG } } }, log));
    const error = await client.getManifest(parseReference(`${registry.host}/basic/explicit:v1`)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegistryError);
    expect((error as RegistryError).code).toBe('UNAUTHORIZED');
    expect((error as RegistryError).message).toContain(`manifest get on ${registry.host}/basic/explicit failed: UNAUTHORIZED (HTTP 401): the registry rejected the credentials of user "alice"`);
    expect(log.length).toBeGreaterThan(0);
    for (const text of [visible(error), log.join('\n')]) {
      expect(text).not.toContain(WRONG);
      expect(text).not.toContain(Buffer.from(`alice:${WRONG}`).toString('base64'));
    }

    const anonymous = new RegistryClient(options({ env: { HOME: join(dir, 'nowhere') } }));
    await expect(anonymous.headBlob({ registry: registry.host, repository: 'basic/explicit' }, randomBlob(1).descriptor.digest)).rejects.toThrow(
      `blob head on ${registry.host}/basic/explicit failed: UNAUTHORIZED (HTTP 401): no credentials for ${registry.host}`,
    );
  });
});

describe('bearer tokens', () => {
  let registry: Awaited<ReturnType<typeof startTokenRegistry>>;
  beforeAll(async () => {
    registry = await startTokenRegistry({
      users: { writer: { password: PASSWORD, actions: ['pull', 'push', 'delete'], refreshToken: 'refresh-for-writer' }, reader: { password: PASSWORD, actions: ['pull'] } },
    });
  });
  afterAll(() => registry?.stop());

  const client = (username: string, password: string, log?: string[]) =>
    new RegistryClient({
      insecureRegistries: [registry.host],
      env: { HOME: tmpdir() + '/tessera-nowhere' },
      credentials: { [registry.host]: { username, password } },
      retry: { attempts: 2, baseDelayMs: 10 },
      ...(log ? { log: (line: string) => log.push(line) } : {}),
    });

  it('gets repository-scoped tokens, caches them, and asks for the source repository on mounts', async () => {
    const writer = client('writer', PASSWORD);
    const before = registry.issuer.requests.length;
    await roundTrip(writer, registry.host, 'token/app');
    const requests = registry.issuer.requests.slice(before);
    expect(requests.every((r) => r.account === 'writer' && r.status === 200)).toBe(true);
    expect(requests.map((r) => r.scopes)).toEqual([['repository:token/app:pull,push'], ['repository:token/app:pull']]);
    expect(requests[0]!.granted).toEqual(['repository:token/app:pull,push']);

    const blob = randomBlob(100);
    await writer.uploadBlob({ registry: registry.host, repository: 'token/base' }, blob.descriptor, openBuffer(blob.bytes));
    const mountsBefore = registry.issuer.requests.length;
    expect(await writer.mountBlob({ registry: registry.host, repository: 'token/app' }, blob.descriptor, 'token/base')).toBe(true);
    expect(registry.issuer.requests.slice(mountsBefore).map((r) => r.scopes)).toEqual([['repository:token/app:pull,push', 'repository:token/base:pull']]);
    expect(registry.log()).toMatch(/"POST \/v2\/token\/app\/blobs\/uploads\/\?mount=sha256%3A[0-9a-f]{64}&from=token%2Fbase HTTP\/1.1" 201/);
    writer.close();
  });

  it('lets a pull-only user read but not push, with a clear error', async () => {
    const reader = client('reader', PASSWORD);
    const ref = parseReference(`${registry.host}/token/app:v1`);
    expect((await reader.getManifest(ref)).mediaType).toBe(MediaType.ociManifest);
    const blob = randomBlob(10);
    const error = await reader.uploadBlob(ref, blob.descriptor, openBuffer(blob.bytes)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegistryError);
    expect((error as RegistryError).code).toBe('DENIED');
    expect((error as Error).message).toContain(`blob upload on ${registry.host}/token/app failed: DENIED (HTTP 401): user "reader" was not granted repository:token/app:pull,push`);
    expect(registry.issuer.requests.at(-1)).toMatchObject({ account: 'reader', scopes: ['repository:token/app:pull,push'], granted: ['repository:token/app:pull'] });
  });

  it('fails with a wrong password at the token service, without showing it', async () => {
    const log: string[] = [];
    const wrong = client('writer', WRONG, log);
    const error = await wrong.getManifest(parseReference(`${registry.host}/token/app:v1`)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegistryError);
    expect((error as RegistryError).code).toBe('UNAUTHORIZED');
    expect((error as Error).message).toContain(`auth on ${registry.host}/token/app failed: UNAUTHORIZED (HTTP 401): the token service at ${new URL(registry.issuer.realm).host} rejected user "writer"`);
    expect(log.some((l) => l.startsWith('GET http://127.0.0.1') && l.includes('/token?'))).toBe(true);
    for (const text of [visible(error), log.join('\n')]) expect(text).not.toContain(WRONG);
  });

  it('trades an identity token from config.json for access tokens (OAuth2 refresh grant)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tessera-identity-'));
    try {
      await writeFile(join(dir, 'config.json'), JSON.stringify({ auths: { [registry.host]: { auth: '', identitytoken: 'refresh-for-writer' } } }));
      const c = new RegistryClient({ insecureRegistries: [registry.host], dockerConfig: dir, env: {} });
      const before = registry.issuer.requests.length;
      expect((await c.getManifest(parseReference(`${registry.host}/token/app:v1`))).mediaType).toBe(MediaType.ociManifest);
      expect(registry.issuer.requests.slice(before)).toEqual([
        { method: 'POST', account: 'writer', scopes: ['repository:token/app:pull'], granted: ['repository:token/app:pull'], status: 200 },
      ]);
      c.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('accepts `access_token` in the token response', async () => {
    const oauth = await startTokenRegistry({ users: { writer: { password: PASSWORD, actions: ['*'] } }, oauthField: true });
    try {
      const c = new RegistryClient({ insecureRegistries: [oauth.host], credentials: { [oauth.host]: { username: 'writer', password: PASSWORD } } });
      await roundTrip(c, oauth.host, 'oauth/app');
      c.close();
    } finally {
      await oauth.stop();
    }
  });
});

async function writeFileIn(dir: string, name: string, content: string): Promise<void> {
  const { mkdir } = await import('node:fs/promises');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, name), content);
}
