import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CredentialResolver, configKeyRegistry, credentialFiles } from './credentials';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-credentials-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function configDir(name: string, config: object): Promise<string> {
  const path = join(dir, name);
  await mkdir(path, { recursive: true });
  await writeFile(join(path, 'config.json'), JSON.stringify(config));
  return path;
}

const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('credentials', () => {
  it('normalises config.json keys to registry names', () => {
    expect(configKeyRegistry('https://index.docker.io/v1/')).toBe('docker.io');
    expect(configKeyRegistry('registry-1.docker.io')).toBe('docker.io');
    expect(configKeyRegistry('http://127.0.0.1:5000/v2/')).toBe('127.0.0.1:5000');
    expect(configKeyRegistry('ghcr.io')).toBe('ghcr.io');
  });

  it('looks in DOCKER_CONFIG (else ~/.docker), then REGISTRY_AUTH_FILE', () => {
    expect(credentialFiles({ env: { HOME: '/h' } })).toEqual([join('/h', '.docker', 'config.json')]);
    expect(credentialFiles({ env: { HOME: '/h', DOCKER_CONFIG: '/d', REGISTRY_AUTH_FILE: '/p/auth.json' } })).toEqual([join('/d', 'config.json'), '/p/auth.json']);
    expect(credentialFiles({ dockerConfig: '/x/my.json', env: { DOCKER_CONFIG: '/d' } })).toEqual(['/x/my.json']);
  });

  it('reads auth, username/password and identity tokens, with Docker Hub under its v1 key', async () => {
    const docker = await configDir('plain', {
      auths: {
        'https://index.docker.io/v1/': { auth: b64('hubuser:hub:pass') },
        'reg.example.com': { username: 'u', password: 'p' },
        'id.example.com': { identitytoken: 'refresh-me' },
        'empty.example.com': {},
      },
    });
    const resolver = new CredentialResolver({ env: { DOCKER_CONFIG: docker } });
    expect(await resolver.get('registry-1.docker.io')).toEqual({ username: 'hubuser', password: 'hub:pass' });
    expect(await resolver.get('docker.io')).toEqual({ username: 'hubuser', password: 'hub:pass' });
    expect(await resolver.get('reg.example.com')).toEqual({ username: 'u', password: 'p' });
    expect(await resolver.get('id.example.com')).toEqual({ identityToken: 'refresh-me' });
    expect(await resolver.get('empty.example.com')).toBeUndefined();
    expect(await resolver.get('other.example.com')).toBeUndefined();
  });

  it('prefers explicit credentials, and falls through to the podman auth file', async () => {
    const docker = await configDir('partial', { auths: { 'a.io': { username: 'docker', password: 'x' } } });
    const podman = join(dir, 'auth.json');
    await writeFile(podman, JSON.stringify({ auths: { 'a.io': { username: 'podman', password: 'y' }, 'b.io': { auth: b64('podman:z') } } }));
    const resolver = new CredentialResolver({ env: { DOCKER_CONFIG: docker, REGISTRY_AUTH_FILE: podman }, credentials: { 'c.io': { username: 'me', password: 'w' } } });
    expect(await resolver.get('a.io')).toEqual({ username: 'docker', password: 'x' });
    expect(await resolver.get('b.io')).toEqual({ username: 'podman', password: 'z' });
    expect(await resolver.get('c.io')).toEqual({ username: 'me', password: 'w' });
  });

  it('runs credsStore and credHelpers programs, and treats "credentials not found" as none', async () => {
    const bin = join(dir, 'bin');
    await mkdir(bin, { recursive: true });
    const helper = (name: string, body: string) => writeFile(join(bin, `docker-credential-${name}`), `#!/bin/sh\n${body}\n`).then(() => chmod(join(bin, `docker-credential-${name}`), 0o755));
    await helper('store', 'read url; case "$url" in https://index.docker.io/v1/) echo \'{"Username":"<token>","Secret":"idtok"}\';; s.io) echo \'{"Username":"su","Secret":"sp"}\';; *) echo "credentials not found in native keychain"; exit 1;; esac');
    await helper('special', 'read url; echo "{\\"Username\\":\\"hu\\",\\"Secret\\":\\"hp-$url\\"}"');
    await helper('broken', 'echo "secret-output-must-not-leak"; exit 3');
    const docker = await configDir('helpers', { credsStore: 'store', credHelpers: { 'h.io': 'special', 'x.io': 'broken', 'm.io': 'missing' } });
    const resolver = new CredentialResolver({ env: { DOCKER_CONFIG: docker, PATH: `${bin}${delimiter}${process.env['PATH']}` } });
    expect(await resolver.get('docker.io')).toEqual({ identityToken: 'idtok' });
    expect(await resolver.get('s.io')).toEqual({ username: 'su', password: 'sp' });
    expect(await resolver.get('h.io')).toEqual({ username: 'hu', password: 'hp-h.io' });
    expect(await resolver.get('none.io')).toBeUndefined();
    const broken = await resolver.get('x.io').catch((e: unknown) => e as Error);
    expect((broken as Error).message).toBe('credential helper docker-credential-broken failed with exit code 3');
    await expect(resolver.get('m.io')).rejects.toThrow('cannot run credential helper docker-credential-missing: not found on PATH');
  });

  it('says which file is broken without quoting it', async () => {
    const path = join(dir, 'bad');
    await mkdir(path, { recursive: true });
    await writeFile(join(path, 'config.json'), '{"auths": {"a.io": {"auth": "c2VjcmV0"');
    const error = await new CredentialResolver({ env: { DOCKER_CONFIG: path } }).get('a.io').catch((e: unknown) => e as Error);
    expect((error as Error).message).toBe(`registry credentials file ${join(path, 'config.json')} is not valid JSON`);
  });
});
