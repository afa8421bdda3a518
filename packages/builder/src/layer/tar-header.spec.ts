import { extract } from 'tar-stream';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { END_OF_ARCHIVE, encodeHeader, paxRecord, splitUstarName } from './tar-header';

async function decode(header: Buffer) {
  const parser = extract();
  const headers: unknown[] = [];
  parser.on('entry', (h, stream, next) => {
    headers.push(h);
    stream.resume();
    next();
  });
  const done = new Promise((resolve, reject) => {
    parser.on('finish', () => resolve(undefined));
    parser.on('error', reject);
  });
  Readable.from([header, END_OF_ARCHIVE]).pipe(parser as unknown as NodeJS.WritableStream);
  await done;
  return headers as Array<Record<string, unknown>>;
}

const base = { type: 'file' as const, mode: 0o644, uid: 0, gid: 0, size: 0, mtimeSeconds: 0 };

describe('tar headers', () => {
  it('encodes PAX record lengths that count themselves', () => {
    expect(paxRecord('path', 'a').toString()).toBe('9 path=a\n');
    const long = paxRecord('comment', 'x'.repeat(95)).toString();
    expect(long.length).toBe(Number(long.split(' ')[0]));
  });

  it('splits names into ustar prefix and name only at a slash', () => {
    expect(splitUstarName('short')).toEqual({ prefix: '', name: 'short' });
    expect(splitUstarName(`${'a'.repeat(120)}/b`)).toEqual({ prefix: 'a'.repeat(120), name: 'b' });
    expect(splitUstarName('x'.repeat(101))).toBeUndefined();
    expect(splitUstarName('ü/x')).toBeUndefined();
  });

  it('uses plain ustar when it fits, with empty uname/gname', async () => {
    const header = encodeHeader({ ...base, name: 'a/b.txt', uid: 7, gid: 8, mtimeSeconds: 1234 });
    expect(header.length).toBe(512);
    expect(await decode(header)).toMatchObject([{ name: 'a/b.txt', uid: 7, gid: 8, uname: '', gname: '', mtime: new Date(1234_000), pax: null }]);
  });

  it('adds PAX records only for what ustar cannot hold', async () => {
    const header = encodeHeader({ ...base, name: `${'n'.repeat(300)}/ünï`, uid: 0o10000000, mtimeSeconds: -5 });
    const [decoded] = await decode(header);
    expect(decoded.name).toBe(`${'n'.repeat(300)}/ünï`);
    expect(decoded.pax).toMatchObject({ path: `${'n'.repeat(300)}/ünï`, uid: String(0o10000000), mtime: '-5' });
    expect(Object.keys(decoded.pax as object)).not.toContain('gid');
  });

  it('keeps binary xattr values byte for byte', () => {
    const value = Buffer.from([0, 0xff, 0x0a, 0x80]);
    const header = encodeHeader({ ...base, name: 'f', xattrs: { 'security.capability': value } });
    expect(header.indexOf(Buffer.concat([Buffer.from('SCHILY.xattr.security.capability='), value, Buffer.from('\n')]))).toBeGreaterThan(0);
  });
});
