import { TesseraError } from '@tessera/oci';
import { buildCommand } from './build';
import { cacheCommand } from './cache';
import type { CliIo, Command } from './command';
import { copyCommand } from './copy';
import { formatHelp, parseFlags, UsageError, type FlagSpec } from './flags';
import { inspectCommand } from './inspect';

/** Flags every command accepts. */
export const GLOBAL_FLAGS: readonly FlagSpec[] = [
  { name: 'help', short: 'h', type: 'boolean', description: 'Show help for the command' },
  { name: 'debug', type: 'boolean', description: 'Show stack traces on failure' },
];

/** Subcommands by name. */
export const COMMANDS: Command[] = [buildCommand, copyCommand, inspectCommand, cacheCommand];

const defaultIo: CliIo = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
  env: process.env,
};

export function commandHelp(command: Command): string {
  return formatHelp({
    usage: `tessera ${command.name} [flags] ${command.arguments}`.trimEnd(),
    description: command.description,
    flags: [...command.flags, ...GLOBAL_FLAGS],
    footer: command.footer,
  });
}

export function mainHelp(commands: readonly Command[] = COMMANDS): string {
  const width = Math.max(...commands.map((c) => c.name.length)) + 2;
  return [
    'Usage: tessera COMMAND [flags] [arguments]',
    '',
    'Tessera builds and moves OCI images without a daemon.',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    '',
    'Run `tessera COMMAND --help` for the flags of a command.',
    '',
  ].join('\n');
}

/** Runs the `tessera` CLI and returns the exit code: 0 on success, 1 on failure, 2 on a usage mistake. */
export async function main(argv: string[], io: CliIo = defaultIo, commands: readonly Command[] = COMMANDS): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    const topic = name === 'help' ? commands.find((c) => c.name === rest[0]) : undefined;
    (name === undefined ? io.stderr : io.stdout)(topic ? commandHelp(topic) : mainHelp(commands));
    return name === undefined ? 2 : 0;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    io.stderr(`tessera: unknown command ${JSON.stringify(name)}; run tessera --help for the list\n`);
    return 2;
  }
  const debug = rest.includes('--debug');
  try {
    const flags = parseFlags(rest, [...command.flags, ...GLOBAL_FLAGS], io.env);
    if (flags.boolean('help')) {
      io.stdout(commandHelp(command));
      return 0;
    }
    const count = flags.positionals.length;
    if (count < command.positionals.min || count > command.positionals.max) {
      throw new UsageError(`${command.name} takes ${command.arguments} (got ${count} argument${count === 1 ? '' : 's'}); see tessera ${command.name} --help`);
    }
    return await command.run({ flags, io });
  } catch (error) {
    io.stderr(`tessera: ${oneLine(error)}\n`);
    if (debug && error instanceof Error && error.stack) io.stderr(`${error.stack}\n`);
    return error instanceof UsageError ? 2 : 1;
  }
}

function oneLine(error: unknown): string {
  let message = error instanceof Error ? error.message : String(error);
  const hint = error instanceof TesseraError ? error.hint : undefined;
  if (hint && !message.includes(hint)) message += ` (${hint})`;
  return message.replace(/\s*\n\s*/g, ' ').trim() || 'failed';
}
