import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { TesseraError } from '../errors';
import { DOCKER_HUB, DOCKER_HUB_CONFIG_KEY, normalizeRegistry } from '../reference';

/** What a registry login can hold. `identityToken` is an OAuth2 refresh token for the token service. */
export interface RegistryCredential {
  username?: string;
  password?: string;
  identityToken?: string;
}

/** The parts of docker's `config.json` (and podman's `auth.json`) that hold credentials. */
export interface DockerConfigFile {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
}

export interface CredentialOptions {
  /** Explicit credentials per registry host; they win over every file. */
  credentials?: Record<string, { username: string; password: string }>;
  /**
   * A docker config directory or `config.json` path to read instead of the default
   * (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`). `$REGISTRY_AUTH_FILE` is read after it.
   */
  dockerConfig?: string;
  /** Environment to read DOCKER_CONFIG, REGISTRY_AUTH_FILE, HOME and PATH from; defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** How long a credential helper may take, in milliseconds (default 30 s). */
  helperTimeoutMs?: number;
}

/** The files to look in, in order. */
export function credentialFiles(options: Pick<CredentialOptions, 'dockerConfig' | 'env'> = {}): string[] {
  const env = options.env ?? process.env;
  const files: string[] = [];
  const dockerDir = options.dockerConfig ?? env['DOCKER_CONFIG'];
  if (dockerDir) files.push(dockerDir.endsWith('.json') ? dockerDir : join(dockerDir, 'config.json'));
  else files.push(join(env['HOME'] || homedir(), '.docker', 'config.json'));
  if (env['REGISTRY_AUTH_FILE']) files.push(env['REGISTRY_AUTH_FILE']);
  return files;
}

/** The registry a config.json key names: keys may carry a scheme and a path (`https://index.docker.io/v1/`). */
export function configKeyRegistry(key: string): string {
  const host = key.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '');
  return normalizeRegistry(host);
}

/** The server URL docker uses for a registry with credential helpers. */
function helperServerUrl(registry: string): string {
  return normalizeRegistry(registry) === DOCKER_HUB ? DOCKER_HUB_CONFIG_KEY : registry;
}

/**
 * Finds credentials for registries the way docker and podman do: explicit credentials first, then each
 * config file in turn: `credHelpers[host]`, then an `auths` entry, then `credsStore`.
 * Results (including "none") are cached per host for the life of the resolver.
 */
export class CredentialResolver {
  private readonly cache = new Map<string, Promise<RegistryCredential | undefined>>();

  constructor(private readonly options: CredentialOptions = {}) {}

  /** Credentials for a registry host (`127.0.0.1:5000`, `docker.io`, `registry-1.docker.io`, …), or undefined for anonymous. */
  get(registry: string): Promise<RegistryCredential | undefined> {
    const key = normalizeRegistry(registry);
    let found = this.cache.get(key);
    if (!found) {
      found = this.resolve(key);
      this.cache.set(key, found);
      found.catch(() => this.cache.delete(key));
    }
    return found;
  }

  /** Forget a host's credentials, e.g. after the registry rejected them. */
  forget(registry: string): void {
    this.cache.delete(normalizeRegistry(registry));
  }

  private async resolve(registry: string): Promise<RegistryCredential | undefined> {
    for (const [host, credential] of Object.entries(this.options.credentials ?? {})) {
      if (normalizeRegistry(host) === registry) return { username: credential.username, password: credential.password };
    }
    for (const file of credentialFiles(this.options)) {
      const config = await readConfigFile(file);
      if (!config) continue;
      const found = await this.fromConfig(config, registry, file);
      if (found) return found;
    }
    return undefined;
  }

  private async fromConfig(config: DockerConfigFile, registry: string, file: string): Promise<RegistryCredential | undefined> {
    for (const [key, helper] of Object.entries(config.credHelpers ?? {})) {
      if (configKeyRegistry(key) === registry) return runCredentialHelper(helper, helperServerUrl(registry), this.options);
    }
    for (const [key, entry] of Object.entries(config.auths ?? {})) {
      if (configKeyRegistry(key) !== registry || !entry) continue;
      const credential = authEntryCredential(entry, file, key);
      if (credential) return credential;
    }
    if (config.credsStore) return runCredentialHelper(config.credsStore, helperServerUrl(registry), this.options);
    return undefined;
  }
}

async function readConfigFile(file: string): Promise<DockerConfigFile | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw new TesseraError(`cannot read registry credentials from ${file}: ${(e as Error).message}`, 'CREDENTIALS');
  }
  try {
    return JSON.parse(text) as DockerConfigFile;
  } catch {
    // The parser's message may quote the file's content, which holds secrets.
    throw new TesseraError(`registry credentials file ${file} is not valid JSON`, 'CREDENTIALS');
  }
}

function authEntryCredential(entry: NonNullable<DockerConfigFile['auths']>[string], file: string, key: string): RegistryCredential | undefined {
  const credential: RegistryCredential = {};
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) throw new TesseraError(`the "auth" entry for ${key} in ${file} is not base64 of user:password`, 'CREDENTIALS');
    credential.username = decoded.slice(0, colon);
    credential.password = decoded.slice(colon + 1);
  } else if (entry.username !== undefined) {
    credential.username = entry.username;
    credential.password = entry.password ?? '';
  }
  if (entry.identitytoken) credential.identityToken = entry.identitytoken;
  return credential.username !== undefined || credential.identityToken ? credential : undefined;
}

/**
 * Runs `docker-credential-<helper> get` with the server URL on stdin; JSON `{Username, Secret}` comes back.
 * A Username of `<token>` means Secret is an identity token.
 */
export function runCredentialHelper(helper: string, serverUrl: string, options: Pick<CredentialOptions, 'env' | 'helperTimeoutMs'> = {}): Promise<RegistryCredential | undefined> {
  const program = `docker-credential-${helper}`;
  return new Promise((resolve, reject) => {
    const child = spawn(program, ['get'], { stdio: ['pipe', 'pipe', 'pipe'], env: options.env ?? process.env });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new TesseraError(`credential helper ${program} did not answer within ${Math.round((options.helperTimeoutMs ?? 30_000) / 1000)} s`, 'CREDENTIALS'));
    }, options.helperTimeoutMs ?? 30_000);
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdin.on('error', () => undefined); // a helper may exit before reading stdin
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new TesseraError(`cannot run credential helper ${program}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found on PATH' : e.message}`, 'CREDENTIALS'));
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      const out = stdout.trim();
      if (code !== 0) {
        // docker's helpers say "credentials not found in native keychain" for an unknown server
        if (/credentials not found/i.test(out + stderr)) resolve(undefined);
        else reject(new TesseraError(`credential helper ${program} failed with exit code ${code}`, 'CREDENTIALS'));
        return;
      }
      let parsed: { Username?: string; Secret?: string };
      try {
        parsed = JSON.parse(out) as { Username?: string; Secret?: string };
      } catch {
        reject(new TesseraError(`credential helper ${program} printed something other than JSON`, 'CREDENTIALS'));
        return;
      }
      if (!parsed.Secret) resolve(undefined);
      else if (parsed.Username === '<token>') resolve({ identityToken: parsed.Secret });
      else resolve({ username: parsed.Username ?? '', password: parsed.Secret });
    });
    child.stdin.end(serverUrl);
  });
}
