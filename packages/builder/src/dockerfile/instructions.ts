import { InstructionProblem } from './errors';
import { extractFlags, ParsedFlags, parseGoDuration, parseMount } from './flags';
import { parseHeredocWord } from './heredoc';
import type {
  ArgDeclaration,
  CommandForm,
  Flag,
  Heredoc,
  Instruction,
  InstructionKind,
  KeyValue,
  NetworkMode,
  SecurityMode,
} from './model';
import { splitKeyword, type LogicalLine } from './reader';
import type { EscapeToken } from './shell-lexer';

const KINDS: ReadonlySet<string> = new Set<InstructionKind>([
  'FROM', 'RUN', 'CMD', 'ENTRYPOINT', 'SHELL', 'ENV', 'ARG', 'LABEL', 'EXPOSE', 'VOLUME', 'WORKDIR', 'USER',
  'STOPSIGNAL', 'HEALTHCHECK', 'ONBUILD', 'MAINTAINER', 'COPY', 'ADD',
]);

/** Whitespace as BuildKit splits FROM, EXPOSE and shell-form COPY/ADD/VOLUME arguments (no quote handling). */
const WHITESPACE = /[\t\v\f\r ]+/;
const STAGE_NAME = /^[a-z][a-z0-9_.-]*$/;
const MIN_HEALTHCHECK_DURATION_NS = 1e6;

interface Context {
  file: string;
  escapeToken: EscapeToken;
}

/** Builds the typed instruction for one logical line; problems are thrown as InstructionProblem. */
export function buildInstruction(logical: LogicalLine, context: Context): Instruction {
  const { keyword, rest } = splitKeyword(logical.text);
  const kind = keyword.toUpperCase();
  if (!KINDS.has(kind)) throw new InstructionProblem('unknown instruction');
  const { flags, rest: args } = extractFlags(rest);
  const parsed = new ParsedFlags(kind as InstructionKind, flags);
  const base = {
    original: logical.text,
    file: context.file,
    line: logical.line,
    endLine: logical.endLine,
    escapeToken: context.escapeToken,
    flags,
    heredocs: logical.heredocs,
  };
  switch (kind as InstructionKind) {
    case 'FROM': {
      const words = splitWhitespace(args);
      if (words.length !== 1 && words.length !== 3) throw new InstructionProblem('FROM requires either one or three arguments');
      if (words.length === 3 && words[1].toLowerCase() !== 'as') throw new InstructionProblem(`expected "AS" before the stage name, got ${JSON.stringify(words[1])}`);
      const stageName = words[2]?.toLowerCase();
      if (stageName !== undefined && !STAGE_NAME.test(stageName)) {
        throw new InstructionProblem(`invalid stage name ${JSON.stringify(words[2])}: it must start with a letter and contain only letters, digits, '-', '_' and '.'`);
      }
      return { kind: 'FROM', ...base, image: words[0], ...optional('stageName', stageName), ...optional('platform', parsed.string('platform')) };
    }
    case 'RUN': {
      if (args === '') throw new InstructionProblem('RUN requires at least one argument');
      const mounts = parsed.list('mount').map((spec) => parseMount(spec));
      const network = parsed.string('network');
      if (network !== undefined && !['default', 'none', 'host'].includes(network)) {
        throw new InstructionProblem(`unsupported network mode ${JSON.stringify(network)} (use default, none or host)`);
      }
      const security = parsed.string('security');
      if (security !== undefined && !['sandbox', 'insecure'].includes(security)) {
        throw new InstructionProblem(`unsupported security mode ${JSON.stringify(security)} (use sandbox or insecure)`);
      }
      return {
        kind: 'RUN',
        ...base,
        command: commandForm(args),
        mounts,
        ...optional('network', network as NetworkMode | undefined),
        ...optional('security', security as SecurityMode | undefined),
      };
    }
    case 'CMD':
      return { kind: 'CMD', ...base, command: commandForm(args) };
    case 'ENTRYPOINT':
      return { kind: 'ENTRYPOINT', ...base, command: commandForm(args) };
    case 'SHELL': {
      const shell = jsonArray(args);
      if (shell === undefined) throw new InstructionProblem('SHELL requires the arguments to be in JSON form, e.g. ["/bin/sh", "-c"]');
      if (shell.length === 0) throw new InstructionProblem('SHELL requires at least one argument');
      return { kind: 'SHELL', ...base, shell };
    }
    case 'ENV':
      return { kind: 'ENV', ...base, pairs: parseNameValues('ENV', args, context.escapeToken) };
    case 'LABEL':
      return { kind: 'LABEL', ...base, pairs: parseNameValues('LABEL', args, context.escapeToken) };
    case 'ARG':
      return { kind: 'ARG', ...base, args: parseArgs(args, context.escapeToken) };
    case 'EXPOSE': {
      const ports = splitWhitespace(args);
      if (ports.length === 0) throw new InstructionProblem('EXPOSE requires at least one argument');
      return { kind: 'EXPOSE', ...base, ports };
    }
    case 'VOLUME': {
      const json = jsonArray(args);
      const paths = json ?? splitWhitespace(args);
      if (paths.length === 0) throw new InstructionProblem('VOLUME requires at least one argument');
      if (paths.some((path) => path.trim() === '')) throw new InstructionProblem('VOLUME specified can not be an empty string');
      return { kind: 'VOLUME', ...base, paths, json: json !== undefined };
    }
    case 'WORKDIR':
      return { kind: 'WORKDIR', ...base, path: requireOne('WORKDIR', args) };
    case 'USER':
      return { kind: 'USER', ...base, user: requireOne('USER', args) };
    case 'STOPSIGNAL':
      return { kind: 'STOPSIGNAL', ...base, signal: requireOne('STOPSIGNAL', args) };
    case 'MAINTAINER':
      return { kind: 'MAINTAINER', ...base, maintainer: requireOne('MAINTAINER', args) };
    case 'HEALTHCHECK':
      return { kind: 'HEALTHCHECK', ...base, ...parseHealthcheck(args, parsed, flags) };
    case 'ONBUILD': {
      if (args === '') throw new InstructionProblem('ONBUILD requires at least one argument');
      const triggerKind = splitKeyword(args).keyword.toUpperCase();
      if (triggerKind === 'ONBUILD') throw new InstructionProblem('chaining ONBUILD via `ONBUILD ONBUILD` is not allowed');
      if (triggerKind === 'FROM' || triggerKind === 'MAINTAINER') throw new InstructionProblem(`${triggerKind} is not allowed as an ONBUILD trigger`);
      let trigger: Instruction;
      try {
        trigger = buildInstruction({ ...logical, text: args }, context);
      } catch (error) {
        if (error instanceof InstructionProblem) throw new InstructionProblem(`${triggerKind}: ${error.message}`);
        throw error;
      }
      return { kind: 'ONBUILD', ...base, expression: args, trigger };
    }
    case 'COPY': {
      const fields = parseCopyLike('COPY', args, logical.heredocs);
      return {
        kind: 'COPY',
        ...base,
        ...fields,
        ...optional('from', parsed.string('from')),
        ...optional('chown', parsed.string('chown')),
        ...optional('chmod', parsed.string('chmod')),
        link: parsed.bool('link') ?? false,
        parents: parsed.bool('parents') ?? false,
        excludes: parsed.list('exclude'),
      };
    }
    case 'ADD': {
      const fields = parseCopyLike('ADD', args, logical.heredocs);
      return {
        kind: 'ADD',
        ...base,
        ...fields,
        ...optional('chown', parsed.string('chown')),
        ...optional('chmod', parsed.string('chmod')),
        ...optional('checksum', parsed.string('checksum')),
        ...optional('unpack', parsed.bool('unpack')),
        link: parsed.bool('link') ?? false,
        keepGitDir: parsed.bool('keep-git-dir') ?? false,
        excludes: parsed.list('exclude'),
      };
    }
  }
  throw new InstructionProblem('unknown instruction');
}

/** `{ key: value }` when value is defined, else `{}`: keeps optional fields absent rather than undefined. */
function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return value === undefined ? {} : ({ [key]: value } as { [P in K]?: V });
}

function splitWhitespace(args: string): string[] {
  return args === '' ? [] : args.split(WHITESPACE).filter((word) => word !== '');
}

function requireOne(keyword: string, args: string): string {
  if (args === '') throw new InstructionProblem(`${keyword} requires exactly one argument`);
  return args;
}

/**
 * A JSON array of strings, or undefined when the text is not valid JSON (BuildKit then falls
 * back to shell form); valid JSON holding non-strings is an error.
 */
function jsonArray(args: string): string[] | undefined {
  if (!args.startsWith('[')) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(args);
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed)) return undefined;
  if (!parsed.every((item) => typeof item === 'string')) {
    throw new InstructionProblem('when using JSON array syntax, arrays must be comprised of strings only');
  }
  return parsed;
}

function commandForm(args: string): CommandForm {
  const json = jsonArray(args);
  return json !== undefined ? { form: 'exec', args: json } : { form: 'shell', script: args };
}

/**
 * BuildKit's word splitter for ENV, LABEL and ARG: splits on unquoted whitespace and keeps
 * quotes and escapes in the words (expansion removes them later).
 */
export function splitQuotedWords(text: string, escape: EscapeToken): string[] {
  const chars = Array.from(text);
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let blankOk = false;
  let quote: string | undefined;
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i];
    if (quote === undefined) {
      if (/\s/u.test(ch)) {
        if (inWord && (blankOk || word !== '')) words.push(word);
        word = '';
        inWord = false;
        blankOk = false;
        continue;
      }
      inWord = true;
      if (ch === '"' || ch === "'") {
        quote = ch;
        blankOk = true;
      } else if (ch === escape) {
        if (i + 1 === chars.length) continue; // a trailing escape is dropped
        word += ch;
        word += chars[++i];
        continue;
      }
      word += ch;
      continue;
    }
    if (ch === quote) {
      quote = undefined;
    } else if (ch === escape && quote !== "'") {
      if (i + 1 === chars.length) continue;
      word += ch;
      word += chars[++i];
      continue;
    }
    word += ch;
  }
  if (inWord && (blankOk || word !== '')) words.push(word);
  return words;
}

/** ENV and LABEL: `K=V K2="v 2" ...`, or the legacy `K V` (the value is the rest of the line). */
function parseNameValues(keyword: 'ENV' | 'LABEL', args: string, escape: EscapeToken): KeyValue[] {
  const words = splitQuotedWords(args, escape);
  if (words.length === 0) throw new InstructionProblem(`${keyword} requires at least one argument`);
  if (!words[0].includes('=')) {
    const match = /^(\S+)[\t\v\f\r ]+([\s\S]+)$/.exec(args);
    if (!match) throw new InstructionProblem(`${keyword} must have two arguments`);
    return [{ key: match[1], value: match[2] }];
  }
  return words.map((word) => {
    const eq = word.indexOf('=');
    if (eq === -1) throw new InstructionProblem(`can't find = in ${JSON.stringify(word)}: must be of the form name=value`);
    const key = word.slice(0, eq);
    if (key === '') throw new InstructionProblem(`${keyword} names can not be blank`);
    return { key, value: word.slice(eq + 1) };
  });
}

function parseArgs(args: string, escape: EscapeToken): ArgDeclaration[] {
  const words = splitQuotedWords(args, escape);
  if (words.length === 0) throw new InstructionProblem('ARG requires at least one argument');
  return words.map((word) => {
    const eq = word.indexOf('=');
    const name = eq === -1 ? word : word.slice(0, eq);
    if (name === '') throw new InstructionProblem('ARG names can not be blank');
    return eq === -1 ? { name } : { name, defaultValue: word.slice(eq + 1) };
  });
}

function parseHealthcheck(args: string, parsed: ParsedFlags, flags: Flag[]) {
  const match = /^(\S+)\s*([\s\S]*)$/.exec(args);
  if (!match) throw new InstructionProblem('HEALTHCHECK requires an argument (CMD or NONE)');
  const type = match[1].toUpperCase();
  const rest = match[2];
  if (type === 'NONE') {
    if (rest !== '') throw new InstructionProblem('HEALTHCHECK NONE takes no arguments');
    if (flags.length > 0) throw new InstructionProblem('HEALTHCHECK NONE takes no options');
    return { none: true };
  }
  if (type !== 'CMD') throw new InstructionProblem(`unknown type ${JSON.stringify(match[1])} in HEALTHCHECK (try CMD)`);
  if (rest === '') throw new InstructionProblem('missing command after HEALTHCHECK CMD');
  const duration = (name: string): number | undefined => {
    const text = parsed.string(name);
    if (text === undefined) return undefined;
    const ns = parseGoDuration(text);
    if (ns < 0) throw new InstructionProblem(`--${name} cannot be negative`);
    if (ns !== 0 && ns < MIN_HEALTHCHECK_DURATION_NS) throw new InstructionProblem(`--${name} cannot be less than 1ms`);
    return ns;
  };
  const retriesText = parsed.string('retries');
  let retries: number | undefined;
  if (retriesText !== undefined) {
    if (!/^-?\d+$/.test(retriesText)) throw new InstructionProblem(`invalid --retries ${JSON.stringify(retriesText)}`);
    retries = Number(retriesText);
    if (retries < 0) throw new InstructionProblem('--retries cannot be negative');
  }
  return {
    none: false,
    command: commandForm(rest),
    ...optional('intervalNs', duration('interval')),
    ...optional('timeoutNs', duration('timeout')),
    ...optional('startPeriodNs', duration('start-period')),
    ...optional('startIntervalNs', duration('start-interval')),
    ...optional('retries', retries),
  };
}

/** COPY/ADD arguments: a JSON array or whitespace-separated words; the last is the destination. */
function parseCopyLike(keyword: 'COPY' | 'ADD', args: string, heredocs: Heredoc[]) {
  const json = jsonArray(args);
  const words = json ?? splitWhitespace(args);
  if (words.length < 2) {
    throw new InstructionProblem(`${keyword} requires at least two arguments, but only ${words.length === 1 ? 'one was' : 'none were'} provided: the destination could not be determined`);
  }
  const sources: string[] = [];
  const contents: Heredoc[] = [];
  let nextHeredoc = 0;
  for (const word of words.slice(0, -1)) {
    if (json === undefined && parseHeredocWord(word) !== undefined && nextHeredoc < heredocs.length) {
      contents.push(heredocs[nextHeredoc++]);
    } else {
      sources.push(word);
    }
  }
  return { sources, contents, dest: words[words.length - 1], json: json !== undefined };
}
