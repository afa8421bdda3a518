import type { EscapeToken } from './shell-lexer';

/**
 * The parsed Dockerfile. Instruction fields hold the text as written (quotes and `$`
 * references intact) unless noted; `expandInstruction` applies BuildKit's expansion rules.
 */
export interface Dockerfile {
  file: string;
  directives: Directives;
  /** ARG instructions before the first FROM: usable in FROM lines, and in stages that redeclare them. */
  globalArgs: ArgInstruction[];
  stages: Stage[];
}

export interface Directives {
  /** `# syntax=` is recorded and otherwise ignored: Tessera has one built-in frontend. */
  syntax?: string;
  escape: EscapeToken;
  /** `# check=` as written (e.g. `skip=JSONArgsRecommended;error=true`). */
  check?: string;
}

export interface Stage {
  index: number;
  /** The `AS` name, lowercased (stage names are case-insensitive). */
  name?: string;
  /** The FROM image as written, before expansion. */
  baseName: string;
  /** The `--platform` flag as written, before expansion. */
  platform?: string;
  line: number;
  from: FromInstruction;
  /** The stage's instructions after FROM. */
  instructions: Instruction[];
}

/** A `--name=value` or bare `--name` flag as written (quotes removed, value unexpanded). */
export interface Flag {
  name: string;
  value?: string;
}

export interface Heredoc {
  /** The delimiter word with quotes removed; for COPY/ADD it is the file name. */
  name: string;
  /** The body lines, each ending in `\n`; for `<<-` leading tabs are already removed. */
  content: string;
  /** False when the delimiter was quoted (`<<"EOF"`, `<<'EOF'`): the body is taken literally. */
  expand: boolean;
  /** `<<-`: leading tabs were stripped from the body and the terminator. */
  chomp: boolean;
  /** The file descriptor written before `<<` (`3<<EOF`), if any. */
  fileDescriptor?: number;
}

/** Exec form (a JSON array, run without a shell) or shell form (passed to the SHELL). */
export type CommandForm = { form: 'exec'; args: string[] } | { form: 'shell'; script: string };

export interface KeyValue {
  key: string;
  value: string;
}

export interface ArgDeclaration {
  name: string;
  /** Undefined for `ARG NAME` (no default); '' for `ARG NAME=`. */
  defaultValue?: string;
}

export type MountType = 'bind' | 'cache' | 'tmpfs' | 'secret' | 'ssh';
export type MountSharing = 'shared' | 'private' | 'locked';

/** One `RUN --mount=...`. */
export interface RunMount {
  /** The flag value as written; `expandInstruction` expands and re-parses it. */
  spec: string;
  type: MountType;
  target?: string;
  source?: string;
  /** A stage name or image (bind/cache). */
  from?: string;
  /** Cache id (default: the target), secret id (default: the target's base name), ssh id (default `default`). */
  id?: string;
  /** Cache sharing mode; `shared` by default for cache mounts. */
  sharing?: MountSharing;
  mode?: number;
  uid?: number;
  gid?: number;
  readonly: boolean;
  /** Secret/ssh: fail when the secret or agent is not provided. */
  required: boolean;
  /** Secret: expose the secret as this environment variable. */
  env?: string;
  /** Tmpfs: size limit in bytes. */
  size?: number;
  /** True when a value still holds `$` references; fields that depend on them are not filled yet. */
  deferred: boolean;
}

export type InstructionKind =
  | 'FROM'
  | 'RUN'
  | 'CMD'
  | 'ENTRYPOINT'
  | 'SHELL'
  | 'ENV'
  | 'ARG'
  | 'LABEL'
  | 'EXPOSE'
  | 'VOLUME'
  | 'WORKDIR'
  | 'USER'
  | 'STOPSIGNAL'
  | 'HEALTHCHECK'
  | 'ONBUILD'
  | 'MAINTAINER'
  | 'COPY'
  | 'ADD';

interface InstructionBase<K extends InstructionKind> {
  kind: K;
  /** The logical line with continuations joined (without heredoc bodies). */
  original: string;
  file: string;
  /** First and last physical line (1-based), heredoc bodies included. */
  line: number;
  endLine: number;
  /** The escape character in effect, needed to expand this instruction's words. */
  escapeToken: EscapeToken;
  flags: Flag[];
  heredocs: Heredoc[];
}

export interface FromInstruction extends InstructionBase<'FROM'> {
  image: string;
  stageName?: string;
  platform?: string;
}

export type NetworkMode = 'default' | 'none' | 'host';
export type SecurityMode = 'sandbox' | 'insecure';

export interface RunInstruction extends InstructionBase<'RUN'> {
  command: CommandForm;
  mounts: RunMount[];
  network?: NetworkMode;
  security?: SecurityMode;
}

export interface CmdInstruction extends InstructionBase<'CMD'> {
  command: CommandForm;
}

export interface EntrypointInstruction extends InstructionBase<'ENTRYPOINT'> {
  command: CommandForm;
}

export interface ShellInstruction extends InstructionBase<'SHELL'> {
  shell: string[];
}

export interface EnvInstruction extends InstructionBase<'ENV'> {
  pairs: KeyValue[];
}

export interface ArgInstruction extends InstructionBase<'ARG'> {
  args: ArgDeclaration[];
}

export interface LabelInstruction extends InstructionBase<'LABEL'> {
  pairs: KeyValue[];
}

export interface ExposeInstruction extends InstructionBase<'EXPOSE'> {
  ports: string[];
}

export interface VolumeInstruction extends InstructionBase<'VOLUME'> {
  paths: string[];
  json: boolean;
}

export interface WorkdirInstruction extends InstructionBase<'WORKDIR'> {
  path: string;
}

export interface UserInstruction extends InstructionBase<'USER'> {
  user: string;
}

export interface StopsignalInstruction extends InstructionBase<'STOPSIGNAL'> {
  signal: string;
}

export interface HealthcheckInstruction extends InstructionBase<'HEALTHCHECK'> {
  /** `HEALTHCHECK NONE`: disable any inherited check. */
  none: boolean;
  command?: CommandForm;
  /** Durations in nanoseconds, as the image config stores them. */
  intervalNs?: number;
  timeoutNs?: number;
  startPeriodNs?: number;
  startIntervalNs?: number;
  retries?: number;
}

export interface OnbuildInstruction extends InstructionBase<'ONBUILD'> {
  /** The trigger as written, stored in the image config's OnBuild list. */
  expression: string;
  trigger: Instruction;
}

export interface MaintainerInstruction extends InstructionBase<'MAINTAINER'> {
  maintainer: string;
}

interface CopyLikeFields {
  /** Source paths (heredoc sources are in `contents`). */
  sources: string[];
  /** Inline files from heredocs used as sources (`COPY <<EOF /dst`): name, body, expand. */
  contents: Heredoc[];
  dest: string;
  json: boolean;
  chown?: string;
  chmod?: string;
  link: boolean;
  excludes: string[];
}

export interface CopyInstruction extends InstructionBase<'COPY'>, CopyLikeFields {
  from?: string;
  parents: boolean;
}

export interface AddInstruction extends InstructionBase<'ADD'>, CopyLikeFields {
  checksum?: string;
  keepGitDir: boolean;
  /** `--unpack`: undefined means the default (unpack local archives, not remote ones). */
  unpack?: boolean;
}

export type Instruction =
  | FromInstruction
  | RunInstruction
  | CmdInstruction
  | EntrypointInstruction
  | ShellInstruction
  | EnvInstruction
  | ArgInstruction
  | LabelInstruction
  | ExposeInstruction
  | VolumeInstruction
  | WorkdirInstruction
  | UserInstruction
  | StopsignalInstruction
  | HealthcheckInstruction
  | OnbuildInstruction
  | MaintainerInstruction
  | CopyInstruction
  | AddInstruction;
