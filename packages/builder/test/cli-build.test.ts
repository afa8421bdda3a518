import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { pushBusyboxBase } from '../../../tools/images/index';
import { ensureCliBuilt, run, tessera, writeContext } from './cli-helpers';

let work: string;
let host: string;
let base: string;

const context = (files: Record<string, string>) => writeContext(work, files);

const build = (dir: string, ...flags: string[]) =>
  tessera(['build', '--context', dir, '--insecure-registry', host, '--build-arg', `BASE=${base}`, ...flags]);

beforeAll(async () => {
  await ensureCliBuilt();
  work = await mkdtemp(join(tmpdir(), 'tessera-cli-build-'));
  host = inject('registryHost');
  base = (await pushBusyboxBase(host, 'cli-build/busybox')).reference;
});

afterAll(() => rm(work, { recursive: true, force: true }));

describe('tessera build failures: a one-line message and a non-zero exit', () => {
  it('a failing RUN names the command and its exit code', async () => {
    const dir = await context({ Dockerfile: 'ARG BASE\nFROM $BASE\nRUN echo about to fail && exit 7\n' });
    const r = await build(dir, '--no-push');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/tessera: Dockerfile:3: RUN ".*exit 7" returned a non-zero code: 7/);
  });

  it('a missing COPY source', async () => {
    const dir = await context({ Dockerfile: 'FROM scratch\nCOPY nothere.txt /\n' });
    const r = await build(dir, '--no-push');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/file not found in build context .*nothere\.txt/);
  });

  it('a COPY from outside the context', async () => {
    const dir = await context({ Dockerfile: 'FROM scratch\nCOPY ../secret.txt /\n' });
    await writeFile(join(work, 'secret.txt'), 'outside');
    const r = await build(dir, '--no-push');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/outside the build context: \.\.\/secret\.txt/);
  });

  it('a symlink in the context pointing outside it is copied as a link, never followed', async () => {
    const dir = await context({ Dockerfile: 'FROM scratch\nCOPY . /ctx/\n' });
    await writeFile(join(work, 'host-only.txt'), 'host data');
    await symlink(join(work, 'host-only.txt'), join(dir, 'escape'));
    const layout = join(work, 'symlink-layout');
    const r = await build(dir, '--no-push', '--oci-layout-path', layout);
    expect(r.code, r.stderr).toBe(0);
    const blobs = join(layout, 'blobs/sha256');
    let found = false;
    for (const name of await readdir(blobs)) {
      const listing = await run('tar', ['-tvzf', join(blobs, name)]).catch(() => undefined);
      if (!listing) continue;
      expect(listing.stdout).not.toContain('host data');
      if (/ctx\/escape -> /.test(listing.stdout)) found = true;
    }
    expect(found).toBe(true);
  });

  it('a syntax error gives the file and line', async () => {
    const dir = await context({ Dockerfile: 'FROM scratch\nENV A=1\nFROBNICATE now\n' });
    const r = await build(dir, '--no-push');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Dockerfile:3: FROBNICATE: unknown instruction/i);
  });

  it('an unknown target stage', async () => {
    const dir = await context({ Dockerfile: 'FROM scratch AS one\nFROM scratch AS two\n' });
    const r = await build(dir, '--no-push', '--target', 'three');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/target stage "three" could not be found \(stages: one, two\)/);
  });

  it('an unknown flag', async () => {
    const r = await tessera(['build', '--no-push', '--frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown flag --frobnicate/);
  });

  it('a Kaniko-only flag says what to use instead', async () => {
    const r = await tessera(['build', '--no-push', '--kaniko-dir=/kaniko']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--kaniko-dir is a Kaniko flag that does not apply to Tessera/);
  });

  it('a gs:// context is refused with what to use instead', async () => {
    const r = await tessera(['build', '--no-push', '--context', 'gs://bucket/ctx.tgz']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/tar:\/\//);
  });
});

describe('tessera build secrets', () => {
  it('a --secret is readable by its RUN but appears in no layer, no config and no log', async () => {
    const secretValue = 'S3cr3t-' + Math.random().toString(36).slice(2);
    const secretFile = join(work, 'token');
    await writeFile(secretFile, secretValue);
    const dir = await context({
      Dockerfile: [
        'ARG BASE',
        'FROM $BASE',
        'ARG EXPECTED_SHA',
        'RUN --mount=type=secret,id=token test "$(sha256sum < /run/secrets/token | cut -d" " -f1)" = "$EXPECTED_SHA" && echo secret-ok > /proof',
        'RUN --mount=type=secret,id=token,target=/etc/app-token cat /etc/app-token | wc -c > /length',
      ].join('\n'),
    });
    const layout = join(work, 'secret-layout');
    const tarPath = join(work, 'secret.tar');
    const r = await build(
      dir,
      '--no-push',
      '--oci-layout-path',
      layout,
      '--tar-path',
      tarPath,
      '--secret',
      `id=token,src=${secretFile}`,
      '--build-arg',
      `EXPECTED_SHA=${createHash('sha256').update(secretValue).digest('hex')}`,
      '--verbosity',
      'debug',
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).not.toContain(secretValue);
    const everything = await readTree(layout);
    expect(everything.includes(Buffer.from(secretValue))).toBe(false);
    expect((await readFile(tarPath)).includes(Buffer.from(secretValue))).toBe(false);
    // Layers are compressed: look inside them too.
    for (const name of await readdir(join(layout, 'blobs/sha256'))) {
      const unzipped = await run('sh', ['-c', `gzip -dc "$0" 2>/dev/null || cat "$0"`, join(layout, 'blobs/sha256', name)], { encoding: 'buffer', maxBuffer: 64 << 20 });
      expect((unzipped.stdout as unknown as Buffer).includes(Buffer.from(secretValue))).toBe(false);
      const listing = await run('sh', ['-c', `tar -tzf "$0" 2>/dev/null || true`, join(layout, 'blobs/sha256', name)]);
      expect(listing.stdout).not.toMatch(/run\/secrets|etc\/app-token/);
    }
    expect(r.stderr).toContain('[stage 0] RUN --mount=type=secret');
    // The RUN saw the secret: it wrote its proof and the secret's length.
    const unpacked = join(work, 'secret-bundle');
    await run('umoci', ['unpack', '--image', `${layout}:latest`, unpacked]);
    expect(await readFile(join(unpacked, 'rootfs/proof'), 'utf8')).toBe('secret-ok\n');
    expect((await readFile(join(unpacked, 'rootfs/length'), 'utf8')).trim()).toBe(String(secretValue.length));
  });
});

async function readTree(dir: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) parts.push(await readFile(join(entry.parentPath, entry.name)));
  }
  return Buffer.concat(parts);
}
