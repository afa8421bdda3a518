import type { FlagSpec, ParsedFlags } from './flags';

/** Where a command writes; tests and embedders can pass their own. */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: Record<string, string | undefined>;
}

export interface CommandContext {
  flags: ParsedFlags;
  io: CliIo;
}

/** One `tessera` subcommand: its flags, positional arguments and help come from this declaration. */
export interface Command {
  name: string;
  /** One line for the command list. */
  summary: string;
  /** Positional arguments as shown in the usage line, e.g. `SRC DST`. */
  arguments: string;
  description: string;
  flags: readonly FlagSpec[];
  /** How many positional arguments the command takes. */
  positionals: { min: number; max: number };
  footer?: string;
  /** Returns the exit code. */
  run(context: CommandContext): Promise<number>;
}
