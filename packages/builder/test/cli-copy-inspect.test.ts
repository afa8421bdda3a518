import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startRegistry, type RunningRegistry } from '../../../tools/registry/registry';
import { writeRandomImage, writeRandomIndex } from '../../oci/test/store-fixtures';
import { ensureCliBuilt, run, tessera } from './cli-helpers';

async function skopeoInspect(...args: string[]): Promise<{ Digest: string; Layers: string[]; Architecture: string }> {
  return JSON.parse((await run('skopeo', ['inspect', '--tls-verify=false', ...args])).stdout);
}

let work: string;
let host: string;
let imageDigest: string;
let indexDigest: string;
let childDigests: string[];

beforeAll(async () => {
  await ensureCliBuilt();
  work = await mkdtemp(join(tmpdir(), 'tessera-cli-'));
  host = inject('registryHost');
  const seed = join(work, 'seed');
  imageDigest = (await writeRandomImage(seed, 'v1', { layerCount: 2 })).manifest.digest;
  const multi = await writeRandomIndex(seed, 'multi', [
    { os: 'linux', architecture: 'amd64' },
    { os: 'linux', architecture: 'arm64', variant: 'v8' },
  ]);
  indexDigest = multi.index.digest;
  childDigests = multi.children.map((c) => c.digest);
  await run('skopeo', ['copy', '--dest-tls-verify=false', `oci:${seed}:v1`, `docker://${host}/cli/app:v1`]);
  await run('skopeo', ['copy', '--all', '--dest-tls-verify=false', `oci:${seed}:multi`, `docker://${host}/cli/multi:v1`]);
});
afterAll(() => rm(work, { recursive: true, force: true }));

function expectOneLineError(result: CliResult, code: number, message: RegExp): void {
  expect(result.code).toBe(code);
  expect(result.stderr.endsWith('\n')).toBe(true);
  expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(result.stderr).toMatch(/^tessera: /);
  expect(result.stderr).toMatch(message);
  expect(result.stderr).not.toMatch(/\n\s+at /);
}

describe('tessera CLI', () => {
  it('prints help for the program and for each command', async () => {
    const top = await tessera(['--help']);
    expect(top.code).toBe(0);
    expect(top.stdout).toMatch(/copy\s+Copy an image/);
    expect(top.stdout).toMatch(/inspect\s+Show an image/);
    for (const command of ['copy', 'inspect']) {
      const help = await tessera([command, '--help']);
      expect(help.code).toBe(0);
      for (const flag of ['--insecure-registry HOST', '--skip-tls-verify', '--registry-certificate HOST=CA.pem', '--username', '--password', '--platform', '--verbose', '--debug']) {
        expect(help.stdout).toContain(flag);
      }
    }
    expect((await tessera([])).code).toBe(2);
  });

  it('fails with one line and a non-zero exit on usage mistakes', async () => {
    expectOneLineError(await tessera(['copy', '--bogus', 'a', 'b']), 2, /unknown flag --bogus/);
    expectOneLineError(await tessera(['frobnicate']), 2, /unknown command "frobnicate"/);
    expectOneLineError(await tessera(['copy', 'oci:x']), 2, /copy takes SRC DST \(got 1 argument\)/);
    expectOneLineError(await tessera(['inspect', '--platform']), 2, /--platform needs a value/);
    expectOneLineError(await tessera(['inspect', '--username', 'u', `docker://${host}/cli/app:v1`]), 2, /--username needs --password/);
    expectOneLineError(await tessera(['inspect', '--password', 'p', `docker://${host}/cli/app:v1`]), 2, /--password needs --username/);
    // a password left in the environment does not get in the way of anonymous access
    expect((await tessera(['inspect', '--insecure-registry', host, `docker://${host}/cli/app:v1`], { TESSERA_PASSWORD: 'unused' })).code).toBe(0);
  });

  it('reports a bad reference and a missing image in one line, with a stack only under --debug', async () => {
    expectOneLineError(await tessera(['inspect', 'docker://Not A/Reference']), 1, /invalid image reference "Not A\/Reference"/);
    expectOneLineError(await tessera(['copy', 'dir:/tmp/x', 'oci:/tmp/y']), 1, /unknown transport "dir"/);
    expectOneLineError(await tessera(['inspect', '--insecure-registry', host, `docker://${host}/cli/missing:v1`]), 1, /MANIFEST_UNKNOWN|NAME_UNKNOWN/);
    expectOneLineError(await tessera(['inspect', `oci:${join(work, 'nowhere')}`]), 1, /not an OCI image layout/);
    const debug = await tessera(['inspect', '--debug', `oci:${join(work, 'nowhere')}`]);
    expect(debug.code).toBe(1);
    expect(debug.stderr).toMatch(/\n\s+at /);
  });

  it('copies registry → OCI layout → registry → docker-archive', async () => {
    const layout = join(work, 'layout');
    const pulled = await tessera(['copy', '--insecure-registry', host, `docker://${host}/cli/app:v1`, `oci:${layout}:pulled`]);
    expect(pulled.stderr).toBe('');
    expect(pulled.code).toBe(0);
    expect(pulled.stdout).toContain(imageDigest);
    expect((await skopeoInspect(`oci:${layout}:pulled`)).Digest).toBe(imageDigest);

    const pushed = await tessera(['copy', '--insecure-registry', host, '--verbose', `oci:${layout}:pulled`, `docker://${host}/cli/pushed:v2`]);
    expect(pushed.code).toBe(0);
    expect(pushed.stderr).toMatch(/PUT .*\/v2\/cli\/pushed\/manifests\/v2/);
    expect((await skopeoInspect(`docker://${host}/cli/pushed:v2`)).Digest).toBe(imageDigest);

    const archive = join(work, 'app.tar');
    const saved = await tessera(['copy', '--insecure-registry', host, `docker://${host}/cli/pushed:v2`, `docker-archive:${archive}:cli/app:v2`]);
    expect(saved.code).toBe(0);
    expect((await skopeoInspect(`docker-archive:${archive}`)).Layers).toHaveLength(2);
  });

  it('inspects an image: manifest and config, --raw and --config', async () => {
    const base = ['inspect', '--insecure-registry', host, `docker://${host}/cli/app:v1`];
    const shown = await tessera(base);
    expect(shown.code).toBe(0);
    const parsed = JSON.parse(shown.stdout);
    expect(parsed.digest).toBe(imageDigest);
    expect(parsed.manifest.layers).toHaveLength(2);
    expect(parsed.config.config.Cmd).toEqual(['/bin/sh']);

    const raw = await tessera([...base, '--raw']);
    expect('sha256:' + createHash('sha256').update(raw.stdout).digest('hex')).toBe(imageDigest);
    const config = JSON.parse((await tessera([...base, '--config'])).stdout);
    expect(config.rootfs.diff_ids).toHaveLength(2);
  });

  it('lists the platforms of an index and selects one with --platform', async () => {
    const shown = await tessera(['inspect', '--insecure-registry', host, `${host}/cli/multi:v1`]);
    expect(shown.code).toBe(0);
    const parsed = JSON.parse(shown.stdout);
    expect(parsed.digest).toBe(indexDigest);
    expect(parsed.platforms.map((p: { platform: string; digest: string }) => [p.platform, p.digest])).toEqual([
      ['linux/amd64', childDigests[0]],
      ['linux/arm64/v8', childDigests[1]],
    ]);
    const arm = JSON.parse((await tessera(['inspect', '--insecure-registry', host, '--platform', 'linux/arm64', `${host}/cli/multi:v1`])).stdout);
    expect(arm.digest).toBe(childDigests[1]);
    expect(arm.config.architecture).toBe('arm64');

    const layout = join(work, 'arm');
    const copied = await tessera(['copy', '--insecure-registry', host, '--platform=linux/arm64', `docker://${host}/cli/multi:v1`, `oci:${layout}:arm`]);
    expect(copied.code).toBe(0);
    expect((await skopeoInspect(`oci:${layout}:arm`)).Architecture).toBe('arm64');
    const all = await tessera(['copy', '--insecure-registry', host, '--all', `docker://${host}/cli/multi:v1`, `oci:${layout}:all`]);
    expect(all.code).toBe(0);
    expect(all.stdout).toContain(indexDigest);
    expectOneLineError(
      await tessera(['copy', '--insecure-registry', host, '--platform', 'linux/s390x', `docker://${host}/cli/multi:v1`, `oci:${layout}:x`]),
      1,
      /no image for platform linux\/s390x/,
    );
  });

  describe('with a password-protected registry', () => {
    let secured: RunningRegistry;
    const password = 'pa55-w0rd-never-shown';
    beforeAll(async () => {
      const dir = await mkdtemp(join(tmpdir(), 'tessera-htpasswd-'));
      const htpasswd = join(dir, 'htpasswd');
      await writeFile(htpasswd, (await run('htpasswd', ['-Bbn', 'alice', password])).stdout);
      secured = await startRegistry({ extraConfig: ['auth:', '  htpasswd:', '    realm: tessera', `    path: ${htpasswd}`].join('\n') });
    });
    afterAll(() => secured?.stop());

    it('takes the password from TESSERA_PASSWORD and never prints it', async () => {
      const target = `docker://${secured.host}/private/app:v1`;
      const source = `docker://${host}/cli/app:v1`;
      const flags = ['--insecure-registry', host, '--insecure-registry', secured.host, '--verbose'];
      const denied = await tessera(['copy', ...flags, source, target]);
      expect(denied.code).toBe(1);
      expect(denied.stderr).toMatch(/UNAUTHORIZED/);

      const wrong = await tessera(['copy', ...flags, '--username', 'alice', '--password', `${password}-wrong`, source, target]);
      expect(wrong.code).toBe(1);
      expect(wrong.stderr + wrong.stdout).not.toContain(password);

      const ok = await tessera(['copy', ...flags, '--username', 'alice', source, target], { TESSERA_PASSWORD: password });
      expect(ok.stderr.split('\n').filter((l) => l.startsWith('tessera:'))).toEqual([]);
      expect(ok.code).toBe(0);
      expect(ok.stderr + ok.stdout).not.toContain(password);
      expect(ok.stderr + ok.stdout).not.toMatch(/authorization|basic [a-z0-9+/=]{8,}/i);
      const inspected = await tessera(['inspect', '--insecure-registry', secured.host, '--username', 'alice', target], { TESSERA_PASSWORD: password });
      expect(JSON.parse(inspected.stdout).digest).toBe(imageDigest);
    });
  });
});
