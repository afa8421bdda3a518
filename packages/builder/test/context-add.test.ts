import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { detectArchive, fetchRemote, isRemoteSource } from '@tessera/builder';

const body = Buffer.from('remote content\n'.repeat(1000));
const bodySha256 = createHash('sha256').update(body).digest('hex');
const lastModified = new Date('2021-03-04T05:06:07Z');

let server: Server;
let base: string;
let destDir: string;

beforeAll(async () => {
  server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    switch (url.pathname) {
      case '/files/app.tar.gz':
        response.writeHead(200, { 'content-type': 'application/octet-stream', 'last-modified': lastModified.toUTCString() });
        response.end(body);
        return;
      case '/redirect':
        response.writeHead(302, { location: '/files/app.tar.gz' });
        response.end();
        return;
      case '/download':
        response.writeHead(200, { 'content-disposition': 'attachment; filename="../../named.bin"' });
        response.end(body);
        return;
      case '/loop':
        response.writeHead(302, { location: '/loop' });
        response.end();
        return;
      case '/stall':
        response.writeHead(200);
        response.write('partial');
        return; // never ends
      default:
        response.writeHead(404);
        response.end('no');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(async () => {
  destDir = await mkdtemp(join(tmpdir(), 'tessera-add-'));
  return () => rm(destDir, { recursive: true, force: true });
});

describe('fetchRemote', () => {
  it('streams the download, names it from the URL and keeps Last-Modified', async () => {
    const file = await fetchRemote(`${base}/files/app.tar.gz`, destDir, { checksum: `sha256:${bodySha256}` });
    expect(file).toMatchObject({ filename: 'app.tar.gz', path: join(destDir, 'app.tar.gz'), size: body.length, digest: `sha256:${bodySha256}` });
    expect(await readFile(file.path)).toEqual(body);
    expect(file.mtime?.toISOString()).toBe(lastModified.toISOString());
    expect((await stat(file.path)).mtime.toISOString()).toBe(lastModified.toISOString());
    expect(await readdir(destDir)).toEqual(['app.tar.gz']);
  });

  it('fails on a checksum mismatch and leaves nothing behind', async () => {
    const wrong = `sha256:${'0'.repeat(64)}`;
    await expect(fetchRemote(`${base}/files/app.tar.gz`, destDir, { checksum: wrong })).rejects.toThrow(/does not match sha256:0{64}: got sha256:[0-9a-f]{64}/);
    expect(await readdir(destDir)).toEqual([]);
    await expect(fetchRemote(`${base}/files/app.tar.gz`, destDir, { checksum: 'md5:abc' })).rejects.toThrow(/invalid --checksum/);
  });

  it('follows redirects and a Content-Disposition name, confined to destDir', async () => {
    expect((await fetchRemote(`${base}/redirect`, destDir)).filename).toBe('app.tar.gz');
    const named = await fetchRemote(`${base}/download`, destDir);
    expect(named).toMatchObject({ filename: 'named.bin', path: join(destDir, 'named.bin') });
    await expect(fetchRemote(`${base}/loop`, destDir, { maxRedirects: 3 })).rejects.toThrow(/too many redirects/);
  });

  it('reports HTTP errors and stalls without printing credentials or query strings', async () => {
    const error = await fetchRemote(`http://user:hunter2@${base.slice('http://'.length)}/missing?token=s3cret`, destDir).catch((caught: Error) => caught);
    expect(error.message).toMatch(/HTTP 404/);
    expect(error.message).not.toMatch(/hunter2|s3cret|user/);
    await expect(fetchRemote(`${base}/stall`, destDir, { timeoutMs: 300 })).rejects.toThrow(/stalled/);
    expect(await readdir(destDir)).toEqual([]);
  });
});

describe('ADD helpers', () => {
  it('tells URLs from context paths', () => {
    expect(isRemoteSource('https://example.com/a.tgz')).toBe(true);
    expect(isRemoteSource('HTTP://example.com/a')).toBe(true);
    expect(isRemoteSource('./https/file')).toBe(false);
    expect(isRemoteSource('file.tar.gz')).toBe(false);
  });

  it('detects archives by magic bytes, not by name', async () => {
    const tarHeader = Buffer.alloc(512);
    tarHeader.write('ustar', 257, 'latin1');
    const samples: [string, Buffer, string | null][] = [
      ['a.bin', Buffer.from([0x1f, 0x8b, 8, 0]), 'gzip'],
      ['b.bin', Buffer.from('BZh91AY'), 'bzip2'],
      ['c.bin', Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0]), 'xz'],
      ['d.bin', Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0]), 'zstd'],
      ['e.bin', tarHeader, 'tar'],
      ['f.tar.gz', Buffer.from('just text'), null],
      ['empty', Buffer.alloc(0), null],
    ];
    for (const [name, bytes, expected] of samples) {
      await writeFile(join(destDir, name), bytes);
      expect(await detectArchive(join(destDir, name))).toBe(expected);
    }
  });
});
