import type { LayerEntry } from './entry';

/**
 * Deterministic tar header encoding (POSIX ustar, plus PAX records only when ustar cannot hold a value).
 * tar-stream's packer is not used for writing because it encodes PAX values as UTF-8 strings (binary
 * xattrs such as `security.capability` would be corrupted), silently overflows uids above 0o7777777,
 * and truncates mtimes to 32 bits.
 */

export const BLOCK_SIZE = 512;
/** Two zero blocks end an archive. */
export const END_OF_ARCHIVE = Buffer.alloc(BLOCK_SIZE * 2);

const TYPE_FLAGS: Record<LayerEntry['type'], string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  char: '3',
  block: '4',
  directory: '5',
  fifo: '6',
};

/** Largest values the fixed-width octal fields can hold. */
const MAX_OCTAL_7 = 0o7777777;
const MAX_OCTAL_11 = 0o77777777777;

/** What the header of one entry needs, after the writer has normalised the entry. */
export interface HeaderFields {
  /** Archive path; directories end with `/`. */
  name: string;
  type: LayerEntry['type'];
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Whole seconds since the epoch. */
  mtimeSeconds: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: Record<string, Buffer>;
}

/** Bytes of padding after `size` bytes of content, up to the next block boundary. */
export function paddingFor(size: number): number {
  const rest = size % BLOCK_SIZE;
  return rest === 0 ? 0 : BLOCK_SIZE - rest;
}

function isAscii(value: string): boolean {
  return /^[\x01-\x7f]*$/.test(value);
}

/** Splits a long ASCII name into ustar prefix (≤155) and name (≤100) at a `/`, or undefined if impossible. */
export function splitUstarName(name: string): { prefix: string; name: string } | undefined {
  if (!isAscii(name)) return undefined;
  if (name.length <= 100) return { prefix: '', name };
  // The prefix must end right before a '/', and the rest (after the '/') must fit 100 bytes.
  const earliest = name.length - 101;
  for (let i = Math.max(earliest, 1); i <= Math.min(155, name.length - 2); i++) {
    if (name[i] === '/' && name.length - i - 1 <= 100 && name.length - i - 1 > 0) {
      return { prefix: name.slice(0, i), name: name.slice(i + 1) };
    }
  }
  return undefined;
}

function writeString(block: Buffer, value: string, offset: number, length: number): void {
  const bytes = Buffer.from(value, 'utf8');
  bytes.copy(block, offset, 0, Math.min(bytes.length, length));
}

/** Zero-padded octal, NUL-terminated, as Go's archive/tar and GNU tar write it. */
function writeOctal(block: Buffer, value: number, offset: number, length: number): void {
  const digits = Math.max(0, Math.floor(value)).toString(8).padStart(length - 1, '0');
  block.write(digits, offset, length - 1, 'ascii');
  block[offset + length - 1] = 0;
}

/** One PAX record: "LEN key=value\n", where LEN counts the whole record including itself. */
export function paxRecord(key: string, value: Buffer | string): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), Buffer.isBuffer(value) ? value : Buffer.from(value, 'utf8'), Buffer.from('\n')]);
  let length = body.length + 1;
  while (String(length).length + body.length !== length) length = String(length).length + body.length;
  return Buffer.concat([Buffer.from(String(length), 'ascii'), body]);
}

function encodeBlock(fields: {
  name: string;
  prefix: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeSeconds: number;
  typeflag: string;
  linkname: string;
  devmajor: number;
  devminor: number;
}): Buffer {
  const block = Buffer.alloc(BLOCK_SIZE);
  writeString(block, fields.name, 0, 100);
  writeOctal(block, fields.mode, 100, 8);
  writeOctal(block, fields.uid, 108, 8);
  writeOctal(block, fields.gid, 116, 8);
  writeOctal(block, fields.size, 124, 12);
  writeOctal(block, fields.mtimeSeconds, 136, 12);
  block.fill(0x20, 148, 156); // checksum is computed with its own field as spaces
  block.write(fields.typeflag, 156, 1, 'ascii');
  writeString(block, fields.linkname, 157, 100);
  block.write('ustar\x0000', 257, 8, 'binary');
  // uname (265) and gname (297) stay empty: ids alone define ownership, independent of the build machine.
  writeOctal(block, fields.devmajor, 329, 8);
  writeOctal(block, fields.devminor, 337, 8);
  writeString(block, fields.prefix, 345, 155);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(sum.toString(8).padStart(6, '0') + '\x00 ', 148, 8, 'binary');
  return block;
}

/** Name of the PAX extended header block: stable, ASCII, ≤100 bytes. */
function paxHeaderName(name: string): string {
  const base = name.replace(/\/$/, '').split('/').pop() ?? '';
  const safe = base.replace(/[^\x20-\x7e]/g, '_').slice(0, 80);
  return `PaxHeaders/${safe}`;
}

/**
 * The header blocks for one entry: a single ustar block, or a PAX extended header (sorted records)
 * followed by the ustar block with the overflowing fields truncated.
 */
export function encodeHeader(fields: HeaderFields): Buffer {
  const records: Array<[string, Buffer | string]> = [];
  const split = splitUstarName(fields.name);
  if (!split) records.push(['path', fields.name]);
  const linkname = fields.linkname ?? '';
  if (!isAscii(linkname) || Buffer.byteLength(linkname) > 100) records.push(['linkpath', linkname]);
  if (fields.size > MAX_OCTAL_11) records.push(['size', String(fields.size)]);
  if (fields.uid > MAX_OCTAL_7) records.push(['uid', String(fields.uid)]);
  if (fields.gid > MAX_OCTAL_7) records.push(['gid', String(fields.gid)]);
  if (fields.mtimeSeconds < 0 || fields.mtimeSeconds > MAX_OCTAL_11) records.push(['mtime', String(fields.mtimeSeconds)]);
  for (const [key, value] of Object.entries(fields.xattrs ?? {})) records.push([`SCHILY.xattr.${key}`, value]);
  records.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

  const ustar = {
    name: split ? split.name : asciiFallback(fields.name, 100),
    prefix: split ? split.prefix : '',
    mode: fields.mode & 0o7777,
    uid: Math.min(fields.uid, MAX_OCTAL_7),
    gid: Math.min(fields.gid, MAX_OCTAL_7),
    size: Math.min(fields.size, MAX_OCTAL_11),
    mtimeSeconds: Math.min(Math.max(fields.mtimeSeconds, 0), MAX_OCTAL_11),
    typeflag: TYPE_FLAGS[fields.type],
    linkname: records.some(([k]) => k === 'linkpath') ? asciiFallback(linkname, 100) : linkname,
    devmajor: fields.devmajor ?? 0,
    devminor: fields.devminor ?? 0,
  };
  const main = encodeBlock(ustar);
  if (records.length === 0) return main;

  const pax = Buffer.concat(records.map(([key, value]) => paxRecord(key, value)));
  const paxHeader = encodeBlock({
    ...ustar,
    name: paxHeaderName(fields.name),
    prefix: '',
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: pax.length,
    typeflag: 'x',
    linkname: '',
    devmajor: 0,
    devminor: 0,
  });
  return Buffer.concat([paxHeader, pax, Buffer.alloc(paddingFor(pax.length)), main]);
}

/** A readable stand-in for readers that ignore PAX: the tail of the name, ASCII only. */
function asciiFallback(value: string, length: number): string {
  const ascii = value.replace(/[^\x01-\x7f]/g, '_');
  return ascii.length <= length ? ascii : ascii.slice(ascii.length - length);
}
