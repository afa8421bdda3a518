import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { pushBusyboxBase, runCommand } from '../../tools/images/index';
import { startHtpasswdRegistry, startTokenRegistry } from '../../tools/registry/auth';
import type { RunningRegistry } from '../../tools/registry/registry';
import { ensureCliBuilt, tessera } from './helpers';

const openRegistry = inject('registryHost');
const USER = 'builder';
const PASSWORD = `pw-${randomBytes(12).toString('hex')}`;
const SECRET = `secret-content-${randomBytes(12).toString('hex')}`;
const TOKEN = `token-marker-${randomBytes(12).toString('hex')}`;

let tmp: string;
let registry: RunningRegistry;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'tessera-secrets-'));
  await ensureCliBuilt();
  await pushBusyboxBase(openRegistry, 'reliability/busybox');
  registry = await startHtpasswdRegistry({ [USER]: PASSWORD });
}, 180_000);

afterAll(async () => {
  await registry?.stop();
  await rm(tmp, { recursive: true, force: true });
});

/** The forms a value could leak in: as is, and base64 (a Basic Authorization header, a docker config). */
function forms(label: string, value: string, alsoBase64: string[] = [value]): Array<[string, Buffer]> {
  return [[label, Buffer.from(value)], ...alsoBase64.map((v): [string, Buffer] => [`${label} (base64)`, Buffer.from(Buffer.from(v).toString('base64'))])];
}

const isGzip = (b: Buffer) => b.length > 2 && b[0] === 0x1f && b[1] === 0x8b;
const isTar = (b: Buffer) => b.length > 262 && b.toString('latin1', 257, 262) === 'ustar';

async function tarEntries(bytes: Buffer): Promise<Array<{ name: string; data: Buffer }>> {
  const entries: Array<{ name: string; data: Buffer }> = [];
  const extract = tar.extract();
  extract.on('entry', (header, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      entries.push({ name: header.name, data: Buffer.concat(chunks) });
      next();
    });
  });
  await new Promise<void>((resolve, reject) => {
    extract.on('finish', resolve);
    extract.on('error', reject);
    Readable.from([bytes]).pipe(extract);
  });
  return entries;
}

/** Where any marker occurs in `bytes`, looking inside gzip streams and tar archives (nested) too. */
async function scan(bytes: Buffer, where: string, markers: Array<[string, Buffer]>, found: string[]): Promise<void> {
  for (const [label, marker] of markers) if (bytes.includes(marker)) found.push(`${label} in ${where}`);
  if (isGzip(bytes)) return scan(gunzipSync(bytes), `${where} (gunzipped)`, markers, found);
  if (isTar(bytes)) for (const entry of await tarEntries(bytes)) await scan(entry.data, `${where}:${entry.name}`, markers, found);
}

async function scanTree(dir: string, markers: Array<[string, Buffer]>, found: string[]): Promise<number> {
  let files = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    await scan(await readFile(path), path, markers, found);
    files++;
  }
  return files;
}

describe('secrets never reach outputs', () => {
  it('registry password, --secret content and a secret-looking build arg: absent from logs, layers, config, manifest, layout and tar', async () => {
    const context = await mkdtemp(join(tmp, 'ctx-'));
    const secretFile = join(tmp, 'secret.txt');
    await writeFile(secretFile, SECRET);
    await writeFile(join(context, 'app.txt'), 'app\n');
    await writeFile(
      join(context, 'Dockerfile'),
      [
        `FROM ${openRegistry}/reliability/busybox`,
        'ARG API_TOKEN',
        // Uses the secret without printing it: its hash proves the RUN could read it.
        'RUN --mount=type=secret,id=mysecret sha256sum /run/secrets/mysecret | cut -d" " -f1 > /secret.sha256',
        // Uses the build arg without writing it to the filesystem.
        'RUN test -n "$API_TOKEN" && echo "token given" > /token-status',
        'COPY app.txt /app.txt',
        '',
      ].join('\n'),
    );
    const dockerConfig = await mkdtemp(join(tmp, 'docker-config-'));
    await writeFile(join(dockerConfig, 'config.json'), JSON.stringify({ auths: { [registry.host]: { auth: Buffer.from(`${USER}:${PASSWORD}`).toString('base64') } } }));
    const layout = join(tmp, 'layout');
    const tarPath = join(tmp, 'image.tar');
    const destination = `${registry.host}/reliability/secrets:v1`;
    const result = await tessera(
      [
        'build', '--context', context, '--destination', destination, '--insecure-registry', registry.host, '--insecure-registry', openRegistry,
        '--secret', `id=mysecret,src=${secretFile}`, '--build-arg', `API_TOKEN=${TOKEN}`, '--verbosity=trace',
        '--oci-layout-path', layout, '--tar-path', tarPath,
      ],
      { DOCKER_CONFIG: dockerConfig },
    );
    expect(result.code, result.stderr).toBe(0);
    // Trace really logged the requests, including the authenticated push.
    expect(result.stderr).toMatch(new RegExp(`PUT http://${registry.host.replace(/\./g, '\\.')}/v2/reliability/secrets/manifests/v1 → 201`));
    expect(result.stderr).toMatch(/warning: build arg API_TOKEN looks like a secret.*--secret id=api_token,env=API_TOKEN/);

    const markers = [
      ...forms('registry password', PASSWORD, [PASSWORD, `${USER}:${PASSWORD}`]),
      ...forms('--secret content', SECRET),
      ...forms('API_TOKEN build arg', TOKEN),
    ];
    const found: string[] = [];
    await scan(Buffer.from(result.stdout), 'stdout', markers, found);
    await scan(Buffer.from(result.stderr), 'stderr', markers, found);
    expect(await scanTree(layout, markers, found)).toBeGreaterThan(3);
    await scan(await readFile(tarPath), tarPath, markers, found);

    // What the registry stored and serves: manifest, config, and each layer (pulled with skopeo, digests checked).
    const pulled = join(tmp, 'pulled');
    const creds = ['--src-creds', `${USER}:${PASSWORD}`];
    await runCommand('skopeo', ['--insecure-policy', 'copy', '--quiet', '--src-tls-verify=false', ...creds, `docker://${destination}`, `oci:${pulled}:v1`]);
    expect(await scanTree(pulled, markers, found)).toBeGreaterThan(3);
    for (const what of ['--raw', '--config']) {
      const { stdout } = await runCommand('skopeo', ['inspect', what, '--tls-verify=false', '--creds', `${USER}:${PASSWORD}`, `docker://${destination}`]);
      await scan(Buffer.from(stdout), `skopeo inspect ${what}`, markers, found);
    }
    expect(await scanTree(join(registry.dir, 'data'), markers, found)).toBeGreaterThan(3);
    expect(found).toEqual([]);

    // Controls: the scan does find what is there, in plain files and inside gzipped layer tars.
    const control: string[] = [];
    await scanTree(dockerConfig, markers, control);
    expect(control).toEqual([expect.stringMatching(/^registry password \(base64\) in .*config\.json$/)]);
    const inLayers: string[] = [];
    await scanTree(layout, [['RUN output', Buffer.from('token given')]], inLayers);
    expect(inLayers.some((f) => /\(gunzipped\):.*token-status$/.test(f))).toBe(true);

    // The RUN did read the secret, and saw the build arg.
    const sha = (await runCommand('sha256sum', [secretFile])).stdout.split(' ')[0];
    const layers = await tarEntries(await readFile(tarPath));
    const allLayerFiles = (await Promise.all(layers.filter((e) => isTar(e.data) || isGzip(e.data)).map((e) => tarEntries(isGzip(e.data) ? gunzipSync(e.data) : e.data)))).flat();
    expect(allLayerFiles.find((f) => f.name.replace(/^\.?\//, '') === 'secret.sha256')?.data.toString()).toBe(`${sha}\n`);
    expect(allLayerFiles.find((f) => f.name.replace(/^\.?\//, '') === 'token-status')?.data.toString()).toBe('token given\n');

    // What history records for a RUN that uses a build arg: the instruction as written, not the value.
    const config = JSON.parse((await runCommand('skopeo', ['inspect', '--config', '--tls-verify=false', '--creds', `${USER}:${PASSWORD}`, `docker://${destination}`])).stdout) as {
      history: Array<{ created_by?: string }>;
    };
    const runHistory = config.history.map((h) => h.created_by ?? '').find((c) => c.includes('RUN') && c.includes('$API_TOKEN'));
    expect(runHistory).toBeDefined();
    expect(runHistory).not.toContain(TOKEN);
    console.log(`history of the RUN that uses API_TOKEN: ${runHistory}`);
  }, 180_000);

  it('bearer tokens from the token service: absent from every log line at trace verbosity and from errors', async () => {
    const tokenPassword = `tok-pw-${randomBytes(12).toString('hex')}`;
    const tokenRegistry = await startTokenRegistry({ users: { [USER]: { password: tokenPassword, actions: ['*'] } } });
    const config = join(tmp, 'token-docker-config');
    try {
      const auth = Buffer.from(`${USER}:${tokenPassword}`).toString('base64');
      await runCommand('mkdir', ['-p', config]);
      await writeFile(join(config, 'config.json'), JSON.stringify({ auths: { [tokenRegistry.host]: { auth } } }));
      const context = join(tmp, 'token-ctx');
      await runCommand('mkdir', ['-p', context]);
      await writeFile(join(context, 'Dockerfile'), 'FROM scratch\nCOPY Dockerfile /Dockerfile\n');
      const env = { DOCKER_CONFIG: config };
      const ok = await tessera(['build', '--context', context, '--destination', `${tokenRegistry.host}/secrets/token:1`, '--insecure-registry', tokenRegistry.host, '--verbosity=trace'], env);
      expect(ok.code, ok.stderr).toBe(0);
      // A refused push (pull-only scope is not it: use a wrong password) must not print a token either.
      await writeFile(join(config, 'config.json'), JSON.stringify({ auths: { [tokenRegistry.host]: { auth: Buffer.from(`${USER}:wrong`).toString('base64') } } }));
      const refused = await tessera(['build', '--context', context, '--destination', `${tokenRegistry.host}/secrets/token:2`, '--insecure-registry', tokenRegistry.host, '--verbosity=trace'], env);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain(tokenRegistry.host);
      const tokens = tokenRegistry.issuer.tokens;
      expect(tokens.length).toBeGreaterThan(0);
      const output = ok.stdout + ok.stderr + refused.stdout + refused.stderr;
      expect(output).toMatch(/(HEAD|PUT|POST) http:\/\/127\.0\.0\.1:\d+\/v2\//); // trace verbosity does log requests
      for (const token of tokens) {
        // The whole token and its claims and signature parts, each on its own.
        for (const part of [token, ...token.split('.').slice(1)]) expect(output).not.toContain(part);
      }
      expect(output).not.toContain(tokenPassword);
    } finally {
      await tokenRegistry.stop();
    }
  });
});

