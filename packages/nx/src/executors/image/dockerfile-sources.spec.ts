import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { untrackedSourcesHash } from './dockerfile-sources';
import type { ProjectFiles } from './layer-sources';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((dir) => rmSync(dir, { recursive: true, force: true })));

const dockerfile = [
  'FROM busybox AS build',
  'COPY --from=other /x /x',
  'FROM busybox',
  'COPY app/main.js dist/ /app/',
  'ADD runtime.tar /',
  'ADD https://example.invalid/file.txt /tmp/',
  'COPY $MISSING /nowhere/',
  'COPY --from=build /x /x',
  '',
].join('\n');

function workspace(): string {
  const root = mkdtempSync(join(tmpdir(), 'tessera-untracked-'));
  dirs.push(root);
  mkdirSync(join(root, 'app'));
  mkdirSync(join(root, 'dist'));
  writeFileSync(join(root, 'app/main.js'), 'console.log(1);\n');
  writeFileSync(join(root, 'dist/bundle.js'), 'bundle v1\n');
  writeFileSync(join(root, 'dist/debug.map'), 'map\n');
  writeFileSync(join(root, 'runtime.tar'), 'tar v1');
  writeFileSync(join(root, '.dockerignore'), '**/*.map\n');
  return root;
}

const tracked: ProjectFiles = { app: [{ file: 'app/main.js', hash: 'nx-hash-of-main' }] };

describe('untrackedSourcesHash', () => {
  it('covers the COPY/ADD files Nx does not hash, by content and mode, and nothing else', async () => {
    const root = workspace();
    const first = await untrackedSourcesHash(dockerfile, root, tracked);
    expect(await untrackedSourcesHash(dockerfile, root, tracked)).toBe(first);

    // Tracked files are Nx's to hash; .dockerignore'd files never reach the image.
    writeFileSync(join(root, 'app/main.js'), 'console.log(2);\n');
    writeFileSync(join(root, 'dist/debug.map'), 'other map\n');
    expect(await untrackedSourcesHash(dockerfile, root, tracked)).toBe(first);

    writeFileSync(join(root, 'runtime.tar'), 'tar v2');
    const changedTar = await untrackedSourcesHash(dockerfile, root, tracked);
    expect(changedTar).not.toBe(first);

    writeFileSync(join(root, 'dist/bundle.js'), 'bundle v2\n');
    const changedBundle = await untrackedSourcesHash(dockerfile, root, tracked);
    expect(changedBundle).not.toBe(changedTar);

    chmodSync(join(root, 'dist/bundle.js'), 0o755);
    expect(await untrackedSourcesHash(dockerfile, root, tracked)).not.toBe(changedBundle);

    // Without Nx's file map every local source counts.
    expect(await untrackedSourcesHash(dockerfile, root, undefined)).not.toBe(await untrackedSourcesHash(dockerfile, root, tracked));
  });
});
