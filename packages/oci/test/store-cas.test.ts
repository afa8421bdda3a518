import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { sha256Digest } from '../src/digest';
import { DigestMismatchError } from '../src/errors';
import { BlobStore } from '../src/store/cas';
import { run } from './store-fixtures';

const repoRoot = resolve(__dirname, '../../..');

/** A stream that yields `bytes` in small chunks, with a pause between them, so writers interleave. */
function slowStream(bytes: Buffer, chunk = 4096): Readable {
  return Readable.from(
    (async function* () {
      for (let at = 0; at < bytes.length; at += chunk) {
        await new Promise((r) => setImmediate(r));
        yield bytes.subarray(at, at + chunk);
      }
    })(),
  );
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('BlobStore', () => {
  let root: string;
  let store: BlobStore;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'tessera-cas-'));
    store = new BlobStore(root);
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  it('stores a blob under its digest and reads it back verified', async () => {
    const bytes = randomBytes(100_000);
    const digest = sha256Digest(bytes);
    const stored = await store.put(slowStream(bytes), { digest, size: bytes.length });
    expect(stored).toEqual({ digest, size: bytes.length });
    expect(store.path(digest)).toBe(join(root, 'blobs', 'sha256', digest.slice(7)));
    expect(await store.has(digest)).toBe(true);
    expect(await store.has({ digest, size: 1 })).toBe(false);
    expect((await readAll(await store.open({ digest, size: bytes.length }))).equals(bytes)).toBe(true);
    expect(await store.list()).toEqual([digest]);
  });

  it('names a blob by its content when no digest is expected', async () => {
    const bytes = Buffer.from('hello');
    expect(await store.put(Readable.from([bytes]))).toEqual({ digest: sha256Digest(bytes), size: 5 });
  });

  it('rejects content that does not match and leaves nothing behind', async () => {
    const bytes = randomBytes(10_000);
    const wrong = sha256Digest('something else');
    await expect(store.put(slowStream(bytes), { digest: wrong })).rejects.toBeInstanceOf(DigestMismatchError);
    await expect(store.put(slowStream(bytes), { digest: sha256Digest(bytes), size: 10 })).rejects.toBeInstanceOf(DigestMismatchError);
    expect(await readdir(store.directory)).toEqual([]);
    expect(await store.has(wrong)).toBe(false);
  });

  it('fails a read when the stored bytes were corrupted, and verify() finds and removes them', async () => {
    const good = await store.putBytes(Buffer.from('good'));
    const bad = await store.putBytes(Buffer.from('bad'));
    await writeFile(store.path(bad.digest), 'tampered');
    await expect(readAll(await store.open(bad.digest))).rejects.toBeInstanceOf(DigestMismatchError);
    const stale = join(store.directory, '.tmp-dead-1');
    await writeFile(stale, 'partial');
    await utimes(stale, new Date(0), new Date(0));
    const fresh = join(store.directory, '.tmp-live-2');
    await writeFile(fresh, 'in progress');

    const report = await store.verify();
    expect(report).toEqual({ checked: 2, corrupt: [bad.digest], staleTemporaryFiles: [stale], removed: false });
    expect(await store.has(bad.digest)).toBe(true);

    await store.verify({ remove: true });
    expect(await store.list()).toEqual([good.digest]);
    expect((await readdir(store.directory)).sort()).toEqual(['.tmp-live-2', good.digest.slice(7)].sort());
  });

  it('deletes', async () => {
    const { digest } = await store.putBytes(Buffer.from('x'));
    expect(await store.delete(digest)).toBe(true);
    expect(await store.delete(digest)).toBe(false);
    expect(await store.has(digest)).toBe(false);
  });

  it('keeps every blob whole under many concurrent writers of the same and different digests', async () => {
    const blobs = Array.from({ length: 4 }, () => randomBytes(200_000));
    const writes = blobs.flatMap((bytes) =>
      Array.from({ length: 6 }, () => store.put(slowStream(bytes), { digest: sha256Digest(bytes), size: bytes.length })),
    );
    const reads = blobs.map(async (bytes) => {
      // readers racing the writers see either no blob or the whole blob
      for (let i = 0; i < 20; i++) {
        if (await store.has(sha256Digest(bytes))) expect((await readAll(await store.open(sha256Digest(bytes)))).equals(bytes)).toBe(true);
        await new Promise((r) => setTimeout(r, 1));
      }
    });
    await Promise.all([...writes, ...reads]);
    expect(await store.list()).toEqual(blobs.map((b) => sha256Digest(b)).sort());
    expect((await readdir(store.directory)).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
    expect((await store.verify()).corrupt).toEqual([]);
  });

  describe('across processes', () => {
    beforeAll(async () => {
      await run(join(repoRoot, 'node_modules/.bin/tsc'), ['-b', 'packages/oci'], { cwd: repoRoot });
    });

    it('stays consistent when several processes write the same blobs at once', async () => {
      const seed = join(root, 'seed');
      await writeFile(seed, randomBytes(1_000_000));
      const script = `
        const { BlobStore } = require(${JSON.stringify(join(repoRoot, 'packages/oci/dist/store/cas.js'))});
        const { createReadStream } = require('node:fs');
        const store = new BlobStore(process.argv[1]);
        (async () => {
          for (let i = 0; i < 5; i++) {
            await store.put(createReadStream(process.argv[2], { highWaterMark: 8192 }));
            await store.put(require('node:stream').Readable.from([Buffer.from('blob ' + i)]));
          }
        })().catch((e) => { console.error(e); process.exit(1); });`;
      const codes = await Promise.all(
        Array.from(
          { length: 4 },
          () =>
            new Promise<number | null>((done) => {
              const child = spawn(process.execPath, ['-e', script, root, seed], { stdio: ['ignore', 'inherit', 'inherit'] });
              child.on('exit', done);
            }),
        ),
      );
      expect(codes).toEqual([0, 0, 0, 0]);
      const report = await store.verify();
      expect(report.checked).toBe(6);
      expect(report.corrupt).toEqual([]);
      expect((await readdir(store.directory)).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
    });
  });
});
