import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { access, lstat, mkdir, mkdtemp, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { pack } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectArchive, loadIgnorePatterns, openBuildContext } from '@tessera/builder';

let work: string;
const escapeName = `tessera-escaped-${randomBytes(6).toString('hex')}.txt`;

interface TarItem {
  name: string;
  type?: 'file' | 'directory' | 'symlink';
  content?: string;
  linkname?: string;
}

async function writeTar(path: string, items: TarItem[], gzip: boolean): Promise<void> {
  const archive = pack();
  for (const item of items) {
    const type = item.type ?? 'file';
    archive.entry({ name: item.name, type, mode: type === 'directory' ? 0o755 : 0o644, linkname: item.linkname }, item.content ?? '');
  }
  archive.finalize();
  await (gzip ? pipeline(archive, createGzip(), createWriteStream(path)) : pipeline(archive, createWriteStream(path)));
}

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tessera-open-'));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('openBuildContext', () => {
  const items: TarItem[] = [
    { name: 'app/', type: 'directory' },
    { name: 'app/main.js', content: 'main\n' },
    { name: 'app/link', type: 'symlink', linkname: 'main.js' },
    { name: 'Dockerfile', content: 'FROM scratch\n' },
  ];

  for (const gzip of [false, true]) {
    it(`extracts a ${gzip ? 'gzip' : 'plain'} tar:// context and removes it on close`, async () => {
      const tarPath = join(work, gzip ? 'ctx.tar.gz' : 'ctx.tar');
      await writeTar(tarPath, items, gzip);
      expect(await detectArchive(tarPath)).toBe(gzip ? 'gzip' : 'tar');
      const context = await openBuildContext(`tar://${tarPath}`);
      expect(await readFile(join(context.root, 'app/main.js'), 'utf8')).toBe('main\n');
      expect(await readlink(join(context.root, 'app/link'))).toBe('main.js');
      expect(context.description).toBe(`tar://${tarPath}`);
      await context.close();
      expect(await exists(context.root)).toBe(false);
    });
  }

  it('keeps hostile tar entries inside the extraction directory', async () => {
    const tarPath = join(work, 'hostile.tar');
    await writeTar(
      tarPath,
      [
        { name: `../${escapeName}`, content: 'dotdot\n' },
        { name: `/../../${escapeName}`, content: 'absolute\n' },
        { name: 'out', type: 'symlink', linkname: tmpdir() },
        { name: `out/${escapeName}`, content: 'through a symlink\n' },
      ],
      false,
    );
    const context = await openBuildContext(`tar://${tarPath}`);
    try {
      expect(await exists(join(tmpdir(), escapeName))).toBe(false);
      expect(await exists(join(work, escapeName))).toBe(false);
      // Confined: the hostile names land inside the context, and the symlink was not written through.
      expect(await readFile(join(context.root, escapeName), 'utf8')).toMatch(/dotdot|absolute/);
      expect(context.warnings.join('\n')).toMatch(/outside the root/);
    } finally {
      await context.close();
    }
    expect(await exists(join(tmpdir(), escapeName))).toBe(false);
  });

  it('opens a directory, with dir:// and with a sub-path that must stay inside', async () => {
    const dir = join(work, 'plain');
    await mkdir(join(dir, 'sub/inner'), { recursive: true });
    const plain = await openBuildContext(dir);
    const prefixed = await openBuildContext(`dir://${dir}`);
    expect(prefixed.root).toBe(plain.root);
    expect((await openBuildContext(dir, { subPath: 'sub' })).root).toBe(join(plain.root, 'sub'));
    await expect(openBuildContext(dir, { subPath: '../..' })).rejects.toThrow(/leaves the build context/);
    await expect(openBuildContext(dir, { subPath: 'missing' })).rejects.toThrow(/not a directory/);
    await expect(openBuildContext(join(work, 'nope'))).rejects.toThrow(/not a directory/);
    await plain.close();
  });

  it('applies --context-sub-path inside a tar context', async () => {
    const tarPath = join(work, 'sub.tar.gz');
    await writeTar(tarPath, items, true);
    const context = await openBuildContext(`tar://${tarPath}`, { subPath: 'app' });
    expect(await readFile(join(context.root, 'main.js'), 'utf8')).toBe('main\n');
    await context.close();
  });

  it.each(['gs://bucket/ctx.tgz', 's3://bucket/ctx.tgz', 'az://account/ctx.tgz', 'https://acct.blob.core.windows.net/c/ctx.tgz', 'git://github.com/x/y.git', 'https://example.com/ctx.tgz'])(
    'refuses the Kaniko-only context %s with a way out',
    async (spec) => {
      const error = await openBuildContext(spec).catch((caught: unknown) => caught);
      expect(error).toMatchObject({ name: 'TesseraError', code: 'UNSUPPORTED_CONTEXT' });
      expect((error as Error).message).toMatch(/not supported/);
      expect((error as { hint: string }).hint).toMatch(/tar:\/\//);
    },
  );
});

describe('loadIgnorePatterns', () => {
  it('prefers <Dockerfile>.dockerignore beside the Dockerfile over <context>/.dockerignore', async () => {
    const context = join(work, 'ignore-ctx');
    const dockerfiles = join(work, 'dockerfiles');
    await mkdir(context, { recursive: true });
    await mkdir(dockerfiles, { recursive: true });
    await writeFile(join(context, '.dockerignore'), 'general\n');
    expect(await loadIgnorePatterns(context, join(dockerfiles, 'app.Dockerfile'))).toEqual(['general']);
    await writeFile(join(dockerfiles, 'app.Dockerfile.dockerignore'), '# specific\nspecific\n!keep\n');
    expect(await loadIgnorePatterns(context, join(dockerfiles, 'app.Dockerfile'))).toEqual(['specific', '!keep']);
    expect(await loadIgnorePatterns(context, join(dockerfiles, 'other.Dockerfile'))).toEqual(['general']);
    expect(await loadIgnorePatterns(join(work, 'plain'))).toEqual([]);
    expect((await lstat(join(context, '.dockerignore'))).isFile()).toBe(true);
  });
});
