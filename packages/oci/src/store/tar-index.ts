import { open, type FileHandle } from 'node:fs/promises';
import { posix } from 'node:path';

/** Where one regular file's bytes sit inside a tar file, so it can be read without unpacking the tar. */
export interface TarMember {
  name: string;
  offset: number;
  size: number;
}

const BLOCK = 512;

/**
 * Index the regular files of an uncompressed tar by reading only its headers (ustar, GNU long names, PAX paths).
 * Symbolic and hard links to regular files resolve to their targets, as `docker save` writes repeated layers as links.
 */
export async function indexTar(file: string): Promise<Map<string, TarMember>> {
  const handle = await open(file, 'r');
  try {
    const members = new Map<string, TarMember>();
    const links = new Map<string, string>();
    const header = Buffer.alloc(BLOCK);
    let position = 0;
    let longName: string | undefined;
    let paxPath: string | undefined;
    for (;;) {
      const { bytesRead } = await handle.read(header, 0, BLOCK, position);
      if (bytesRead < BLOCK || header.every((b) => b === 0)) break;
      const size = readSize(header.subarray(124, 136));
      const type = String.fromCharCode(header[156] || 48); // NUL is an old-style regular file
      const dataOffset = position + BLOCK;
      position = dataOffset + Math.ceil(size / BLOCK) * BLOCK;
      if (type === 'L') {
        longName = cString(await readAt(handle, dataOffset, size));
        continue;
      }
      if (type === 'x') {
        paxPath = parsePax(await readAt(handle, dataOffset, size)).path ?? paxPath;
        continue;
      }
      if (type === 'g') continue;
      const prefix = isUstar(header) ? cString(header.subarray(345, 500)) : '';
      const rawName = paxPath ?? longName ?? (prefix ? `${prefix}/` : '') + cString(header.subarray(0, 100));
      longName = paxPath = undefined;
      const name = normalizeName(rawName);
      if (type === '0' || type === '7') members.set(name, { name, offset: dataOffset, size });
      else if (type === '1') links.set(name, normalizeName(cString(header.subarray(157, 257))));
      else if (type === '2') links.set(name, normalizeName(posix.join(posix.dirname(name), cString(header.subarray(157, 257)))));
    }
    for (const [name, target] of links) {
      let resolved = target;
      for (let hops = 0; hops < 16 && !members.has(resolved) && links.has(resolved); hops++) resolved = links.get(resolved)!;
      const member = members.get(resolved);
      if (member) members.set(name, { ...member, name });
    }
    return members;
  } finally {
    await handle.close();
  }
}

export async function readTarMember(file: string, member: TarMember): Promise<Buffer> {
  const handle = await open(file, 'r');
  try {
    return await readAt(handle, member.offset, member.size);
  } finally {
    await handle.close();
  }
}

async function readAt(handle: FileHandle, offset: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(buffer, done, length - done, offset + done);
    if (bytesRead === 0) throw new Error('the tar file ends inside a member');
    done += bytesRead;
  }
  return buffer;
}

function readSize(field: Buffer): number {
  if (field[0] & 0x80) {
    // GNU base-256 for sizes of 8 GiB and more
    let value = 0;
    for (let i = 1; i < field.length; i++) value = value * 256 + field[i];
    return value;
  }
  const text = cString(field).trim();
  return text ? parseInt(text, 8) : 0;
}

function isUstar(header: Buffer): boolean {
  return header.subarray(257, 262).toString('latin1') === 'ustar';
}

function cString(bytes: Buffer): string {
  const end = bytes.indexOf(0);
  return bytes.subarray(0, end === -1 ? bytes.length : end).toString('utf8');
}

function parsePax(data: Buffer): Record<string, string> {
  const records: Record<string, string> = {};
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    if (space === -1) break;
    const length = parseInt(data.subarray(at, space).toString('latin1'), 10);
    if (!length) break;
    const record = data.subarray(space + 1, at + length - 1).toString('utf8');
    const equals = record.indexOf('=');
    if (equals > 0) records[record.slice(0, equals)] = record.slice(equals + 1);
    at += length;
  }
  return records;
}

function normalizeName(name: string): string {
  return posix.normalize(name).replace(/^(\.\/)+/, '').replace(/^\/+/, '').replace(/\/+$/, '');
}
