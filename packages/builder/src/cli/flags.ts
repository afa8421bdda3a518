import { TesseraError } from '@tessera/oci';

/**
 * Declarative command-line flags. A command lists FlagSpecs; the parser accepts `--flag value`, `--flag=value`,
 * `--bool`, `--bool=true|false`, `-x value` for a short name, repeated list and map flags, and `--` to end flags.
 */
export type FlagType = 'string' | 'boolean' | 'list' | 'map';

export type FlagValue = string | boolean | string[] | Record<string, string> | undefined;

export interface FlagSpec {
  /** Kebab-case name, used as `--name`. */
  name: string;
  /** Other long names accepted for the same flag; the camelCase form of `name` is always accepted. */
  aliases?: string[];
  /** One letter, used as `-x`. */
  short?: string;
  type: FlagType;
  description: string;
  default?: FlagValue;
  /** Shown in help after the flag, e.g. `HOST` or `KEY=VALUE`. */
  valueName?: string;
  /** An environment variable read when the flag is absent. */
  env?: string;
  /** Never shown back: help prints no default, and errors name the flag, not the value. */
  secret?: boolean;
  /** Accepted but left out of the help. */
  hidden?: boolean;
}

/** A command-line usage mistake: the CLI prints it as one line and exits with status 2. */
export class UsageError extends TesseraError {
  constructor(message: string) {
    super(message, 'USAGE');
  }
}

export class ParsedFlags {
  constructor(
    private readonly values: Map<string, FlagValue>,
    /** Arguments that are not flags, in order. */
    readonly positionals: string[],
    /** Names of the flags given on the command line (not from defaults or the environment). */
    readonly given: ReadonlySet<string>,
  ) {}

  string(name: string): string | undefined {
    return this.typed(name, 'string') as string | undefined;
  }

  boolean(name: string): boolean {
    return (this.typed(name, 'boolean') as boolean | undefined) ?? false;
  }

  list(name: string): string[] {
    return (this.typed(name, 'list') as string[] | undefined) ?? [];
  }

  map(name: string): Record<string, string> {
    return (this.typed(name, 'map') as Record<string, string> | undefined) ?? {};
  }

  private typed(name: string, type: FlagType): FlagValue {
    if (!this.values.has(name)) throw new Error(`flag --${name} is not declared as a ${type} flag`);
    const value = this.values.get(name);
    const actual = value === undefined ? type : Array.isArray(value) ? 'list' : typeof value === 'object' ? 'map' : typeof value;
    if (actual !== type) throw new Error(`flag --${name} is a ${actual}, not a ${type}`);
    return value;
  }
}

export function camelCase(name: string): string {
  return name.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

const TRUE = new Set(['true', '1', 'yes', 'on']);
const FALSE = new Set(['false', '0', 'no', 'off']);

export function parseFlags(argv: readonly string[], specs: readonly FlagSpec[], env: Record<string, string | undefined> = process.env): ParsedFlags {
  const byName = new Map<string, FlagSpec>();
  const byShort = new Map<string, FlagSpec>();
  for (const spec of specs) {
    for (const name of new Set([spec.name, camelCase(spec.name), ...(spec.aliases ?? [])])) {
      if (byName.has(name)) throw new Error(`flag name --${name} is declared twice`);
      byName.set(name, spec);
    }
    if (spec.short) byShort.set(spec.short, spec);
  }
  const values = new Map<string, FlagValue>();
  const given = new Set<string>();
  const positionals: string[] = [];

  const set = (spec: FlagSpec, shown: string, raw: string | undefined, next: () => string | undefined): void => {
    given.add(spec.name);
    if (spec.type === 'boolean') {
      if (raw === undefined) return void values.set(spec.name, true);
      const lowered = raw.toLowerCase();
      if (TRUE.has(lowered)) return void values.set(spec.name, true);
      if (FALSE.has(lowered)) return void values.set(spec.name, false);
      throw new UsageError(`${shown} takes true or false, not ${JSON.stringify(raw)}`);
    }
    const value = raw ?? next();
    if (value === undefined) throw new UsageError(`${shown} needs a value${spec.valueName ? ` (${spec.valueName})` : ''}`);
    if (spec.type === 'string') return void values.set(spec.name, value);
    if (spec.type === 'list') return void values.set(spec.name, [...((values.get(spec.name) as string[] | undefined) ?? []), value]);
    const equals = value.indexOf('=');
    if (equals <= 0) throw new UsageError(`${shown} takes ${spec.valueName ?? 'KEY=VALUE'}${spec.secret ? '' : `, not ${JSON.stringify(value)}`}`);
    values.set(spec.name, { ...((values.get(spec.name) as Record<string, string> | undefined) ?? {}), [value.slice(0, equals)]: value.slice(equals + 1) });
  };

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const next = () => (i + 1 < argv.length ? argv[++i] : undefined);
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith('--')) {
      const equals = arg.indexOf('=');
      const name = arg.slice(2, equals === -1 ? undefined : equals);
      const spec = byName.get(name);
      if (!spec) throw new UsageError(`unknown flag --${name}`);
      set(spec, `--${name}`, equals === -1 ? undefined : arg.slice(equals + 1), next);
    } else if (arg.startsWith('-') && arg.length > 1) {
      const letter = arg[1];
      const spec = byShort.get(letter);
      if (!spec) throw new UsageError(`unknown flag -${letter}`);
      const attached = arg.slice(2).replace(/^=/, '');
      set(spec, `-${letter}`, attached === '' ? undefined : attached, next);
    } else {
      positionals.push(arg);
    }
  }

  for (const spec of specs) {
    if (values.has(spec.name)) continue;
    const fromEnv = spec.env !== undefined ? env[spec.env] : undefined;
    if (fromEnv !== undefined && fromEnv !== '') set(spec, `$${spec.env}`, spec.type === 'boolean' ? fromEnv : undefined, () => fromEnv);
    else values.set(spec.name, copyDefault(spec.default));
    given.delete(spec.name);
  }
  return new ParsedFlags(values, positionals, given);
}

function copyDefault(value: FlagValue): FlagValue {
  if (Array.isArray(value)) return [...value];
  if (value !== null && typeof value === 'object') return { ...value };
  return value;
}

export interface HelpSection {
  /** e.g. `tessera copy [flags] SRC DST` */
  usage: string;
  description: string;
  flags: readonly FlagSpec[];
  /** Extra paragraphs after the flags, such as examples. */
  footer?: string;
}

/** Help text generated from the flag specs. */
export function formatHelp(section: HelpSection): string {
  const rows = section.flags
    .filter((spec) => !spec.hidden)
    .map((spec) => {
      const names = [spec.short ? `-${spec.short}, ` : '    ', `--${spec.name}`].join('');
      const value = spec.type === 'boolean' ? '' : ` ${spec.valueName ?? (spec.type === 'map' ? 'KEY=VALUE' : 'VALUE')}`;
      const notes: string[] = [];
      if (spec.type === 'list' || spec.type === 'map') notes.push('repeatable');
      if (spec.env) notes.push(`env ${spec.env}`);
      if (!spec.secret && spec.default !== undefined && spec.default !== false && !(Array.isArray(spec.default) && spec.default.length === 0)) {
        notes.push(`default ${typeof spec.default === 'string' ? spec.default : JSON.stringify(spec.default)}`);
      }
      return { left: `  ${names}${value}`, right: `${spec.description}${notes.length ? ` (${notes.join('; ')})` : ''}` };
    });
  const width = Math.min(40, Math.max(0, ...rows.map((r) => r.left.length)) + 2);
  const lines = [`Usage: ${section.usage}`, '', section.description];
  if (rows.length) {
    lines.push('', 'Flags:');
    for (const row of rows) lines.push(row.left.length + 2 > width ? `${row.left}\n${' '.repeat(width)}${row.right}` : row.left.padEnd(width) + row.right);
  }
  if (section.footer) lines.push('', section.footer);
  return lines.join('\n') + '\n';
}
