import { chmod, link, mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createIgnoreMatcher,
  planCopy,
  planHeredocCopy,
  resolveCopySources,
  type CopyPlanOptions,
  type LayerEntry,
  type ResolveCopySourcesOptions,
} from '@tessera/builder';

let root: string;
let outside: string;

async function file(path: string, content: string, mode = 0o644): Promise<void> {
  await mkdir(join(root, path, '..'), { recursive: true, mode: 0o755 });
  await writeFile(join(root, path), content);
  await chmod(join(root, path), mode);
}

beforeAll(async () => {
  root = await realpath(await mkdtemp(join(tmpdir(), 'tessera-copy-')));
  outside = await realpath(await mkdtemp(join(tmpdir(), 'tessera-outside-')));
  await chmod(root, 0o755);
  await writeFile(join(outside, 'secret'), 'outside\n');
  await file('a.txt', 'a\n');
  await file('b.txt', 'bb\n');
  await file('run.sh', '#!/bin/sh\n', 0o755);
  await file('src/index.js', 'index\n');
  await file('src/lib/util.js', 'util\n');
  await file('src/.cache/blob', 'cache\n');
  await file('docs/readme.md', 'readme\n');
  await file('docs/notes.txt', 'notes\n');
  await file('secret.env', 'TOKEN=x\n');
  await chmod(join(root, 'src/lib'), 0o750);
  await symlink('src/index.js', join(root, 'link-in'));
  await symlink('src', join(root, 'linkdir-in'));
  await symlink(join(outside, 'secret'), join(root, 'link-out'));
  await symlink(outside, join(root, 'linkdir-out'));
  await symlink('../index.js', join(root, 'src/lib/rel-link'));
  await link(join(root, 'a.txt'), join(root, 'hard.txt'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
  await rm(outside, { recursive: true, force: true });
});

const ignore = () => createIgnoreMatcher(['secret.env', '**/.cache']);

function describeEntries(entries: LayerEntry[]): string[] {
  return entries.map(
    (entry) => `${entry.path} ${entry.type} ${entry.mode.toString(8)} ${entry.uid}:${entry.gid}${entry.linkTarget ? ` -> ${entry.linkTarget}` : ''}`,
  );
}

async function copy(sources: string[], plan: Partial<CopyPlanOptions> & { dest: string }, resolve: Partial<ResolveCopySourcesOptions> = {}) {
  const resolved = await resolveCopySources({ root }, sources, { ignore: ignore(), allowWildcards: true, ...resolve });
  return planCopy(resolved, { workdir: '/', ...plan });
}

describe('COPY semantics', () => {
  it('copies a file to a file path, creating parents as root 0755', async () => {
    const entries = await copy(['a.txt'], { dest: '/x/y.txt' });
    expect(describeEntries(entries)).toEqual(['x directory 755 0:0', 'x/y.txt file 644 0:0']);
    expect(entries[1]).toMatchObject({ source: join(root, 'a.txt'), size: 2 });
    expect(entries[1].mtime).toBeInstanceOf(Date);
  });

  it('copies a file into a directory when dest ends in /', async () => {
    expect(describeEntries(await copy(['run.sh'], { dest: '/x/' }))).toEqual(['x directory 755 0:0', 'x/run.sh file 755 0:0']);
  });

  it('copies a file into an existing image directory even without a slash', async () => {
    const entries = await copy(['a.txt'], { dest: '/existing', destIsDirectoryInImage: (path) => path === '/existing' });
    expect(describeEntries(entries)).toEqual(['existing/a.txt file 644 0:0']);
  });

  it('copies the contents of a directory, skipping ignored files and keeping inner symlinks as links', async () => {
    expect(describeEntries(await copy(['src'], { dest: '/app' }))).toEqual([
      'app directory 755 0:0',
      'app/index.js file 644 0:0',
      'app/lib directory 750 0:0',
      'app/lib/rel-link symlink 777 0:0 -> ../index.js',
      'app/lib/util.js file 644 0:0',
    ]);
  });

  it('expands wildcards per Go filepath.Match, in name order', async () => {
    const entries = await copy(['*.txt'], { dest: '/d/' });
    expect(describeEntries(entries)).toEqual(['d directory 755 0:0', 'd/a.txt file 644 0:0', 'd/b.txt file 644 0:0', 'd/hard.txt file 644 0:0']);
    // A hardlink in the context is copied as an independent regular file.
    expect(entries[3]).toMatchObject({ type: 'file', source: join(root, 'hard.txt'), size: 2 });
    expect(describeEntries(await copy(['src/*/u?il.[j]s'], { dest: '/d/' }))).toEqual(['d directory 755 0:0', 'd/util.js file 644 0:0']);
  });

  it('requires a directory destination for several sources', async () => {
    await expect(copy(['a.txt', 'b.txt'], { dest: '/d' })).rejects.toThrow(/more than one source file, the destination must be a directory and end with a \//);
    await expect(copy(['*.txt'], { dest: '/d' })).rejects.toThrow(/must be a directory/);
    expect(describeEntries(await copy(['a.txt', 'b.txt'], { dest: '/d/' }))).toEqual(['d directory 755 0:0', 'd/a.txt file 644 0:0', 'd/b.txt file 644 0:0']);
  });

  it('puts a relative destination under WORKDIR and skips directories the image has', async () => {
    const entries = await copy(['a.txt'], { dest: 'rel/', workdir: '/work', destIsDirectoryInImage: (path) => path === '/work' });
    expect(describeEntries(entries)).toEqual(['work/rel directory 755 0:0', 'work/rel/a.txt file 644 0:0']);
    expect(describeEntries(await copy(['a.txt'], { dest: '.', workdir: '/work' }))).toEqual(['work directory 755 0:0', 'work/a.txt file 644 0:0']);
  });

  it('keeps parent paths with --parents, honouring a /./ pivot', async () => {
    expect(describeEntries(await copy(['src/lib/util.js'], { dest: '/p/', parents: true }))).toEqual([
      'p directory 755 0:0',
      'p/src directory 755 0:0',
      'p/src/lib directory 755 0:0',
      'p/src/lib/util.js file 644 0:0',
    ]);
    expect(describeEntries(await copy(['./src/./lib/util.js'], { dest: '/p/', parents: true }))).toEqual([
      'p directory 755 0:0',
      'p/lib directory 755 0:0',
      'p/lib/util.js file 644 0:0',
    ]);
  });

  it('applies --chmod to files and directories but not symlinks, --chown to everything including created parents', async () => {
    const entries = await copy(['src'], { dest: '/opt/app/', chmod: 0o700, chown: { uid: 1000, gid: 1001 } });
    expect(describeEntries(entries)).toEqual([
      'opt directory 755 1000:1001',
      'opt/app directory 700 1000:1001',
      'opt/app/index.js file 700 1000:1001',
      'opt/app/lib directory 700 1000:1001',
      'opt/app/lib/rel-link symlink 777 1000:1001 -> ../index.js',
      'opt/app/lib/util.js file 700 1000:1001',
    ]);
  });

  it('follows a source symlink that stays inside the context, as BuildKit does', async () => {
    const entries = await copy(['link-in'], { dest: '/l' });
    expect(describeEntries(entries)).toEqual(['l file 644 0:0']);
    expect(entries[0].source).toBe(join(root, 'src/index.js'));
    expect(describeEntries(await copy(['linkdir-in'], { dest: '/ld' }))).toContain('ld/lib/util.js file 644 0:0');
  });

  it('copies a source symlink pointing outside the context as a link, never its target', async () => {
    const entries = await copy(['link-out'], { dest: '/o' });
    expect(describeEntries(entries)).toEqual([`o symlink 777 0:0 -> ${join(outside, 'secret')}`]);
    expect(entries[0].source).toBeUndefined();
  });

  it('refuses paths that leave the context', async () => {
    await expect(copy(['../x'], { dest: '/' })).rejects.toThrow(/forbidden path outside the build context: \.\.\/x/);
    await expect(copy(['src/../../x'], { dest: '/' })).rejects.toThrow(/outside the build context/);
    await expect(copy(['linkdir-out/secret'], { dest: '/s' })).rejects.toThrow(/outside the build context: linkdir-out\/secret/);
    // Wildcards never list a directory reached through a link that leaves the context.
    await expect(copy(['linkdir-out/*'], { dest: '/s/' })).rejects.toThrow(/not found/);
  });

  it('treats absolute sources as relative to the context root', async () => {
    expect(describeEntries(await copy(['/a.txt'], { dest: '/r.txt' }))).toEqual(['r.txt file 644 0:0']);
  });

  it('reports a missing or ignored source by name', async () => {
    await expect(copy(['nope.txt'], { dest: '/' })).rejects.toThrow('COPY failed: file not found in build context or excluded by .dockerignore: nope.txt');
    await expect(copy(['secret.env'], { dest: '/s' })).rejects.toThrow(/excluded by \.dockerignore: secret\.env/);
    await expect(copy(['*.nothing'], { dest: '/s/' })).rejects.toThrow(/: \*\.nothing/);
  });

  it('applies --exclude relative to each source', async () => {
    expect(describeEntries(await copy(['docs'], { dest: '/d/' }, { excludes: ['*.md'] }))).toEqual(['d directory 755 0:0', 'd/notes.txt file 644 0:0']);
    expect(describeEntries(await copy(['*.txt'], { dest: '/d/' }, { excludes: ['hard*'] }))).toEqual([
      'd directory 755 0:0',
      'd/a.txt file 644 0:0',
      'd/b.txt file 644 0:0',
    ]);
  });

  it('re-includes exceptions below an ignored directory', async () => {
    const matcher = createIgnoreMatcher(['docs', '!docs/readme.md', 'secret.env', '**/.cache', 'link*', 'src', 'hard.txt']);
    const whole = await resolveCopySources({ root }, ['.'], { ignore: matcher, allowWildcards: true });
    expect(describeEntries(await planCopy(whole, { dest: '/all/', workdir: '/' }))).toEqual([
      'all directory 755 0:0',
      'all/a.txt file 644 0:0',
      'all/b.txt file 644 0:0',
      'all/docs directory 755 0:0',
      'all/docs/readme.md file 644 0:0',
      'all/run.sh file 755 0:0',
    ]);
    const docs = await resolveCopySources({ root }, ['docs'], { ignore: matcher, allowWildcards: true });
    expect(describeEntries(await planCopy(docs, { dest: '/d', workdir: '/' }))).toEqual(['d directory 755 0:0', 'd/readme.md file 644 0:0']);
  });

  it('copies the whole context to / without a root entry', async () => {
    const entries = await copy(['.'], { dest: '/' });
    expect(entries.map((entry) => entry.path)).toContain('src/lib/util.js');
    expect(entries.map((entry) => entry.path)).not.toContain('');
    expect(entries.map((entry) => entry.path)).not.toContain('secret.env');
  });
});

describe('COPY heredocs', () => {
  it('writes heredocs as in-memory files', async () => {
    const entries = await planHeredocCopy([{ name: 'EOF', content: 'hello\n' }], {
      dest: '/etc/motd',
      workdir: '/',
      destIsDirectoryInImage: (path) => path === '/etc',
    });
    expect(describeEntries(entries)).toEqual(['etc/motd file 644 0:0']);
    expect(entries[0].content?.toString()).toBe('hello\n');
    expect(entries[0].size).toBe(6);
    const many = await planHeredocCopy(
      [
        { name: 'one', content: '1' },
        { name: 'two', content: '2' },
      ],
      { dest: 'scripts/', workdir: '/app', chmod: 0o755, chown: { uid: 5, gid: 6 } },
    );
    expect(describeEntries(many)).toEqual(['app directory 755 5:6', 'app/scripts directory 755 5:6', 'app/scripts/one file 755 5:6', 'app/scripts/two file 755 5:6']);
    await expect(planHeredocCopy(many.map(() => ({ name: 'x', content: '' })), { dest: '/f', workdir: '/' })).rejects.toThrow(/must be a directory/);
  });
});
