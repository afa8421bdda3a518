import { InstructionProblem } from './errors';
import type { Flag, InstructionKind, MountSharing, MountType, RunMount } from './model';

/**
 * Splits the leading `--flag[=value]` words off an instruction's arguments, as BuildKit does:
 * flags end at the first word not starting with `--`, or at a bare `--`. Quotes group and are
 * removed; a backslash makes the next character literal.
 */
export function extractFlags(args: string): { flags: Flag[]; rest: string } {
  const words: string[] = [];
  let pos = 0;
  for (;;) {
    while (pos < args.length && /\s/.test(args[pos])) pos++;
    if (pos >= args.length) return { flags: words.map(toFlag), rest: '' };
    if (!args.startsWith('--', pos)) return { flags: words.map(toFlag), rest: args.slice(pos) };
    let word = '';
    let quote: string | undefined;
    while (pos < args.length) {
      const ch = args[pos];
      if (quote === undefined && /\s/.test(ch)) break;
      pos++;
      if (quote === undefined && (ch === '"' || ch === "'")) {
        quote = ch;
      } else if (quote !== undefined && ch === quote) {
        quote = undefined;
      } else if (ch === '\\' && pos < args.length) {
        word += args[pos++];
      } else if (ch !== '\\') {
        word += ch;
      }
    }
    if (word === '--') {
      return { flags: words.map(toFlag), rest: args.slice(pos).replace(/^\s+/, '') };
    }
    words.push(word);
  }
}

function toFlag(word: string): Flag {
  const body = word.slice(2);
  const eq = body.indexOf('=');
  return eq === -1 ? { name: body } : { name: body.slice(0, eq), value: body.slice(eq + 1) };
}

type FlagType = 'string' | 'bool' | 'strings';

const FLAG_TYPES: Partial<Record<InstructionKind, Record<string, FlagType>>> = {
  FROM: { platform: 'string' },
  RUN: { mount: 'strings', network: 'string', security: 'string' },
  COPY: { from: 'string', chown: 'string', chmod: 'string', link: 'bool', parents: 'bool', exclude: 'strings' },
  ADD: {
    chown: 'string',
    chmod: 'string',
    link: 'bool',
    checksum: 'string',
    'keep-git-dir': 'bool',
    exclude: 'strings',
    unpack: 'bool',
  },
  HEALTHCHECK: {
    interval: 'string',
    timeout: 'string',
    'start-period': 'string',
    'start-interval': 'string',
    retries: 'string',
  },
};

/** The flags of one instruction, checked against what that instruction accepts. */
export class ParsedFlags {
  private readonly strings = new Map<string, string>();
  private readonly bools = new Map<string, boolean>();
  private readonly lists = new Map<string, string[]>();

  constructor(kind: InstructionKind, flags: Flag[]) {
    const types = FLAG_TYPES[kind] ?? {};
    for (const flag of flags) {
      const type = Object.hasOwn(types, flag.name) ? types[flag.name] : undefined;
      if (type === undefined) throw new InstructionProblem(`unknown flag: --${flag.name}`);
      if (type === 'bool') {
        if (this.bools.has(flag.name)) throw new InstructionProblem(`duplicate flag specified: --${flag.name}`);
        this.bools.set(flag.name, parseBool(flag.value ?? 'true', `flag --${flag.name}`));
        continue;
      }
      if (flag.value === undefined) throw new InstructionProblem(`missing a value on flag: --${flag.name}`);
      if (type === 'strings') {
        this.lists.set(flag.name, [...(this.lists.get(flag.name) ?? []), flag.value]);
        continue;
      }
      if (this.strings.has(flag.name)) throw new InstructionProblem(`duplicate flag specified: --${flag.name}`);
      this.strings.set(flag.name, flag.value);
    }
  }

  string(name: string): string | undefined {
    return this.strings.get(name);
  }

  bool(name: string): boolean | undefined {
    return this.bools.get(name);
  }

  list(name: string): string[] {
    return this.lists.get(name) ?? [];
  }
}

function parseBool(value: string, what: string): boolean {
  const lower = value.toLowerCase();
  if (['true', '1', 't'].includes(lower)) return true;
  if (['false', '0', 'f'].includes(lower)) return false;
  throw new InstructionProblem(`expecting a boolean value for ${what}, not: ${JSON.stringify(value)}`);
}

const MOUNT_TYPES: ReadonlySet<string> = new Set<MountType>(['bind', 'cache', 'tmpfs', 'secret', 'ssh']);
const SHARING_MODES: ReadonlySet<string> = new Set<MountSharing>(['shared', 'private', 'locked']);

/**
 * Parses a `--mount` value (comma-separated `key=value` fields, CSV-quoted). Without `expand`,
 * values holding `$` stay unresolved (`deferred`); with it, each value is expanded first and
 * the mount is checked fully.
 */
export function parseMount(spec: string, expand?: (value: string) => string): RunMount {
  const deferred = expand === undefined && spec.includes('$');
  const mount: RunMount = { spec, type: 'bind', readonly: true, required: false, deferred };
  let readonlySet = false;
  for (const field of splitCsv(spec)) {
    const eq = field.indexOf('=');
    const key = (eq === -1 ? field : field.slice(0, eq)).toLowerCase();
    if (eq === -1) {
      if (key === 'readonly' || key === 'ro' || key === 'readwrite' || key === 'rw') {
        mount.readonly = key === 'readonly' || key === 'ro';
        readonlySet = true;
        continue;
      }
      if (key === 'required') {
        mount.required = true;
        continue;
      }
      throw new InstructionProblem(`invalid mount field ${JSON.stringify(field)}: must be a key=value pair`);
    }
    const raw = field.slice(eq + 1);
    if (deferred && raw.includes('$')) {
      if (!MOUNT_KEYS.has(key)) throw new InstructionProblem(`unexpected mount key ${JSON.stringify(key)}`);
      continue;
    }
    const value = expand ? expand(raw) : raw;
    switch (key) {
      case 'type': {
        const type = value.toLowerCase();
        if (!MOUNT_TYPES.has(type)) throw new InstructionProblem(`unsupported mount type ${JSON.stringify(value)}`);
        mount.type = type as MountType;
        break;
      }
      case 'from':
        mount.from = value;
        break;
      case 'source':
      case 'src':
        mount.source = value;
        break;
      case 'target':
      case 'dst':
      case 'destination':
        mount.target = value;
        break;
      case 'readonly':
      case 'ro':
        mount.readonly = parseBool(value, `mount key ${key}`);
        readonlySet = true;
        break;
      case 'readwrite':
      case 'rw':
        mount.readonly = !parseBool(value, `mount key ${key}`);
        readonlySet = true;
        break;
      case 'required':
        mount.required = parseBool(value, `mount key ${key}`);
        break;
      case 'id':
        mount.id = value;
        break;
      case 'sharing': {
        const sharing = value.toLowerCase();
        if (!SHARING_MODES.has(sharing)) throw new InstructionProblem(`unsupported mount sharing value ${JSON.stringify(value)}`);
        mount.sharing = sharing as MountSharing;
        break;
      }
      case 'mode':
        mount.mode = parseUnsigned(value, 8, 'mode');
        break;
      case 'uid':
        mount.uid = parseUnsigned(value, 10, 'uid');
        break;
      case 'gid':
        mount.gid = parseUnsigned(value, 10, 'gid');
        break;
      case 'env':
        mount.env = value;
        break;
      case 'size':
        mount.size = parseUnsigned(value, 10, 'size');
        break;
      default:
        throw new InstructionProblem(`unexpected mount key ${JSON.stringify(key)} in ${JSON.stringify(field)}`);
    }
  }
  if (!readonlySet) mount.readonly = mount.type !== 'cache' && mount.type !== 'tmpfs';
  if (!deferred) checkMount(mount);
  return mount;
}

const MOUNT_KEYS = new Set([
  'type', 'from', 'source', 'src', 'target', 'dst', 'destination', 'readonly', 'ro', 'readwrite', 'rw',
  'required', 'id', 'sharing', 'mode', 'uid', 'gid', 'env', 'size',
]);

function checkMount(mount: RunMount): void {
  const fileInfoAllowed = mount.type === 'secret' || mount.type === 'ssh' || mount.type === 'cache';
  for (const key of ['mode', 'uid', 'gid'] as const) {
    if (mount[key] !== undefined && !fileInfoAllowed) throw new InstructionProblem(`${key} not allowed for ${mount.type} mounts`);
  }
  if (mount.sharing !== undefined && mount.type !== 'cache') throw new InstructionProblem(`sharing not allowed for ${mount.type} mounts`);
  if (mount.required && mount.type !== 'secret' && mount.type !== 'ssh') {
    throw new InstructionProblem(`required not allowed for ${mount.type} mounts`);
  }
  if (mount.env !== undefined && mount.type !== 'secret') throw new InstructionProblem(`env not allowed for ${mount.type} mounts`);
  if (mount.size !== undefined && mount.type !== 'tmpfs') throw new InstructionProblem(`size not allowed for ${mount.type} mounts`);
  switch (mount.type) {
    case 'bind':
    case 'tmpfs':
      if (!mount.target) throw new InstructionProblem(`${mount.type} mount requires a target`);
      break;
    case 'cache':
      if (!mount.target) throw new InstructionProblem('cache mount requires a target');
      mount.id ??= mount.target;
      mount.sharing ??= 'shared';
      break;
    case 'secret':
      if (mount.from !== undefined) throw new InstructionProblem('secret mount should not have a from');
      if (mount.source && mount.id) throw new InstructionProblem('secret mount: both source and id can not be set');
      mount.id ??= mount.source;
      if (!mount.id && !mount.target && !mount.env) throw new InstructionProblem('secret mount requires an id, a source, a target or an env');
      mount.id ??= (mount.target ?? mount.env ?? '').split('/').filter(Boolean).pop();
      if (mount.target === undefined && mount.env === undefined) mount.target = `/run/secrets/${mount.id}`;
      break;
    case 'ssh':
      if (mount.from !== undefined) throw new InstructionProblem('ssh mount should not have a from');
      mount.id ??= 'default';
      break;
  }
}

function parseUnsigned(value: string, radix: 8 | 10, what: string): number {
  const digits = radix === 8 ? /^[0-7]+$/ : /^[0-9]+$/;
  const parsed = digits.test(value) ? parseInt(value, radix) : NaN;
  if (!Number.isSafeInteger(parsed) || parsed > 0xffffffff) throw new InstructionProblem(`invalid value ${JSON.stringify(value)} for ${what}`);
  return parsed;
}

/** One CSV record: fields split on commas; a field may be double-quoted (`""` is a quote). */
function splitCsv(text: string): string[] {
  const fields: string[] = [];
  let pos = 0;
  for (;;) {
    let field = '';
    if (text[pos] === '"') {
      pos++;
      for (;;) {
        if (pos >= text.length) throw new InstructionProblem(`unterminated quote in mount ${JSON.stringify(text)}`);
        if (text[pos] === '"') {
          if (text[pos + 1] === '"') {
            field += '"';
            pos += 2;
            continue;
          }
          pos++;
          break;
        }
        field += text[pos++];
      }
      if (pos < text.length && text[pos] !== ',') throw new InstructionProblem(`unexpected text after a quoted mount field in ${JSON.stringify(text)}`);
    } else {
      const comma = text.indexOf(',', pos);
      const end = comma === -1 ? text.length : comma;
      field = text.slice(pos, end);
      pos = end;
    }
    fields.push(field);
    if (pos >= text.length) return fields.filter((f) => f !== '');
    pos++; // the comma
  }
}

const DURATION_UNITS: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** Go's time.ParseDuration (`1m30s`, `1.5h`, `300ms`, `0`), in nanoseconds. */
export function parseGoDuration(text: string): number {
  const invalid = () => new InstructionProblem(`invalid duration ${JSON.stringify(text)}`);
  let rest = text;
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    sign = rest.startsWith('-') ? -1 : 1;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') throw invalid();
  let total = 0;
  const part = /^(\d*(?:\.\d*)?)([a-zµμ]+)/;
  while (rest !== '') {
    const match = part.exec(rest);
    if (!match || match[1] === '' || match[1] === '.') throw invalid();
    if (!Object.hasOwn(DURATION_UNITS, match[2])) throw invalid();
    const unit = DURATION_UNITS[match[2]];
    total += parseFloat(match[1]) * unit;
    rest = rest.slice(match[0].length);
  }
  return sign * Math.round(total);
}
