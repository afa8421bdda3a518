import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startRegistry, type RunningRegistry } from './registry';
import { startTokenIssuer, type RunningTokenIssuer, type TokenIssuerOptions } from './token-issuer';

const run = promisify(execFile);

/** A registry that wants basic credentials from an htpasswd file (bcrypt entries: the only kind distribution accepts). */
export async function startHtpasswdRegistry(users: Record<string, string>, options: { tls?: boolean } = {}): Promise<RunningRegistry & { users: Record<string, string>; caPath?: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-htpasswd-'));
  const lines: string[] = [];
  for (const [user, password] of Object.entries(users)) lines.push((await run('htpasswd', ['-Bbn', user, password])).stdout.trim());
  const htpasswd = join(dir, 'htpasswd');
  await writeFile(htpasswd, lines.join('\n') + '\n');
  const tls = options.tls ? await makeCertificate(dir) : undefined;
  const registry = await startRegistry({
    https: options.tls ?? false,
    extraConfig: [tls ? tlsConfig(tls) : '', 'auth:', '  htpasswd:', '    realm: tessera-test', `    path: ${htpasswd}`].join('\n'),
  });
  return { ...registry, users, ...(tls ? { caPath: tls.certificate } : {}), stop: () => registry.stop().then(() => rm(dir, { recursive: true, force: true })) };
}

/** A registry served over TLS with a self-signed certificate for 127.0.0.1 and localhost; `caPath` is the PEM to trust. */
export async function startTlsRegistry(): Promise<RunningRegistry & { caPath: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-tls-'));
  const tls = await makeCertificate(dir);
  const registry = await startRegistry({ https: true, extraConfig: tlsConfig(tls) });
  return { ...registry, caPath: tls.certificate, stop: () => registry.stop().then(() => rm(dir, { recursive: true, force: true })) };
}

/** A registry that wants bearer tokens from a token issuer on 127.0.0.1, which grants each user's actions. */
export async function startTokenRegistry(options: TokenIssuerOptions): Promise<RunningRegistry & { issuer: RunningTokenIssuer }> {
  const issuer = await startTokenIssuer(options);
  try {
    const registry = await startRegistry({
      extraConfig: [
        'auth:',
        '  token:',
        `    realm: ${issuer.realm}`,
        `    service: ${issuer.service}`,
        `    issuer: ${issuer.issuer}`,
        `    rootcertbundle: ${issuer.certificatePath}`,
      ].join('\n'),
    });
    return { ...registry, issuer, stop: () => registry.stop().then(() => issuer.stop()) };
  } catch (e) {
    await issuer.stop();
    throw e;
  }
}

interface CertificateFiles {
  certificate: string;
  key: string;
}

async function makeCertificate(dir: string): Promise<CertificateFiles> {
  const files = { certificate: join(dir, 'registry.crt'), key: join(dir, 'registry.key') };
  await run('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2',
    '-keyout', files.key, '-out', files.certificate,
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ]);
  return files;
}

/** Indented to sit inside the `http:` section that startRegistry's config ends with. */
function tlsConfig(files: CertificateFiles): string {
  return ['  tls:', `    certificate: ${files.certificate}`, `    key: ${files.key}`].join('\n');
}
