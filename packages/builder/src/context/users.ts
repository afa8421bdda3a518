import { TesseraError } from '@tessera/oci';

export interface ResolvedUser {
  uid: number;
  gid: number;
  /** Groups listing the user as a member in /etc/group (for RUN), excluding the primary gid. */
  supplementary?: number[];
}

export interface UserFiles {
  /** Text of the image's /etc/passwd, if it has one. */
  passwd?: string;
  /** Text of the image's /etc/group, if it has one. */
  group?: string;
}

export interface ResolveUserOptions {
  /**
   * `chown` (COPY/ADD --chown, BuildKit): a uid without a group uses the same number as gid.
   * `run` (USER for RUN, runc): a uid without a group takes the primary gid from /etc/passwd, else 0,
   * and supplementary groups are looked up.
   */
  purpose?: 'chown' | 'run';
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
}

interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

const NUMERIC = /^\d+$/;
const MAX_ID = 0xffffffff;

function parseId(text: string, what: string, spec: string): number {
  const id = Number(text);
  if (!Number.isSafeInteger(id) || id > MAX_ID) throw new TesseraError(`invalid ${what} ${JSON.stringify(text)} in ${JSON.stringify(spec)}`, 'INVALID_USER');
  return id;
}

/** Colon-separated database lines; comments, blanks and malformed lines are skipped like libc does. */
function parseDatabase(text: string | undefined, minFields: number): string[][] {
  if (!text) return [];
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => line.split(':'))
    .filter((fields) => fields.length >= minFields && NUMERIC.test(fields[2]));
}

export function parsePasswd(text: string | undefined): PasswdEntry[] {
  return parseDatabase(text, 4)
    .filter((fields) => NUMERIC.test(fields[3]))
    .map((fields) => ({ name: fields[0], uid: Number(fields[2]), gid: Number(fields[3]) }));
}

export function parseGroup(text: string | undefined): GroupEntry[] {
  return parseDatabase(text, 3).map((fields) => ({
    name: fields[0],
    gid: Number(fields[2]),
    members: (fields[3] ?? '').split(',').map((member) => member.trim()).filter(Boolean),
  }));
}

/**
 * Resolves `user`, `uid`, `user:group` or `uid:gid` against the image's /etc/passwd and /etc/group text.
 * Numeric ids need no files; an unknown name is an error naming the missing user or group.
 */
export function resolveUser(spec: string, files: UserFiles = {}, options: ResolveUserOptions = {}): ResolvedUser {
  const purpose = options.purpose ?? 'chown';
  const trimmed = spec.trim();
  const [userPart, groupPart, extra] = trimmed.split(':');
  if (userPart === '' || extra !== undefined || groupPart === '') {
    throw new TesseraError(`invalid user ${JSON.stringify(spec)}: expected user, uid, user:group or uid:gid`, 'INVALID_USER');
  }
  const users = parsePasswd(files.passwd);
  const groups = parseGroup(files.group);

  let uid: number;
  let userName: string | undefined;
  let primaryGid: number | undefined;
  if (NUMERIC.test(userPart)) {
    uid = parseId(userPart, 'uid', spec);
    const entry = users.find((candidate) => candidate.uid === uid);
    userName = entry?.name;
    primaryGid = purpose === 'chown' ? uid : (entry?.gid ?? 0);
  } else {
    if (!files.passwd) {
      throw new TesseraError(`unable to find user ${userPart}: the image has no /etc/passwd`, 'UNKNOWN_USER', 'use a numeric uid');
    }
    const entry = users.find((candidate) => candidate.name === userPart);
    if (!entry) throw new TesseraError(`unable to find user ${userPart}: no matching entries in passwd file`, 'UNKNOWN_USER');
    uid = entry.uid;
    userName = entry.name;
    primaryGid = entry.gid;
  }

  let gid: number;
  if (groupPart === undefined) {
    gid = primaryGid;
  } else if (NUMERIC.test(groupPart)) {
    gid = parseId(groupPart, 'gid', spec);
  } else {
    if (!files.group) {
      throw new TesseraError(`unable to find group ${groupPart}: the image has no /etc/group`, 'UNKNOWN_GROUP', 'use a numeric gid');
    }
    const entry = groups.find((candidate) => candidate.name === groupPart);
    if (!entry) throw new TesseraError(`unable to find group ${groupPart}: no matching entries in group file`, 'UNKNOWN_GROUP');
    gid = entry.gid;
  }

  if (purpose === 'chown') return { uid, gid };
  const supplementary = userName
    ? [...new Set(groups.filter((group) => group.members.includes(userName) && group.gid !== gid).map((group) => group.gid))]
    : [];
  return { uid, gid, supplementary };
}
