import { describe, expect, it } from 'vitest';
import { TesseraError } from '@tessera/oci';
import { DockerfileSyntaxError } from './errors';
import type { Instruction } from './model';
import { parseDockerfile, parseInstructionLine } from './parser';

/** The instructions of the only stage of `FROM scratch` followed by `body`. */
function body(text: string): Instruction[] {
  return parseDockerfile(`FROM scratch\n${text}`).stages[0].instructions;
}

function first<K extends Instruction['kind']>(text: string, kind: K): Extract<Instruction, { kind: K }> {
  const instruction = body(text)[0];
  expect(instruction.kind).toBe(kind);
  return instruction as Extract<Instruction, { kind: K }>;
}

function syntaxError(text: string, file?: string): DockerfileSyntaxError {
  try {
    parseDockerfile(text, file === undefined ? {} : { file });
  } catch (error) {
    expect(error).toBeInstanceOf(DockerfileSyntaxError);
    return error as DockerfileSyntaxError;
  }
  throw new Error('expected a DockerfileSyntaxError');
}

describe('parser directives', () => {
  it('reads syntax, escape and check, case-insensitively', () => {
    const df = parseDockerfile('# syntax=docker/dockerfile:1\n# ESCAPE = `\n#check=skip=all\nFROM scratch\n');
    expect(df.directives).toEqual({ syntax: 'docker/dockerfile:1', escape: '`', check: 'skip=all' });
  });

  it('ignores directives after a comment, a blank line or an instruction', () => {
    expect(parseDockerfile('# hello\n# escape=`\nFROM scratch').directives.escape).toBe('\\');
    expect(parseDockerfile('\n# escape=`\nFROM scratch').directives.escape).toBe('\\');
    expect(parseDockerfile('FROM scratch\n# escape=`\n').directives.escape).toBe('\\');
  });

  it('stops looking at an unknown directive', () => {
    expect(parseDockerfile('# foo=bar\n# escape=`\nFROM scratch').directives.escape).toBe('\\');
  });

  it('rejects a repeated directive and a bad escape token', () => {
    const repeated = syntaxError('# escape=\\\n# escape=`\nFROM scratch');
    expect(repeated.line).toBe(2);
    expect(repeated.message).toBe('Dockerfile:2: directive: only one escape parser directive can be used');
    expect(syntaxError('# escape=x\nFROM scratch').message).toContain('invalid escape token');
  });

  it('strips a UTF-8 byte order mark before the first directive', () => {
    expect(parseDockerfile('\uFEFF# escape=`\nFROM scratch').directives.escape).toBe('`');
  });
});

describe('lines and continuations', () => {
  it('joins continuation lines and records start and end lines', () => {
    const [run] = body('RUN apt-get update && \\\n    apt-get install -y curl\nUSER app');
    expect(run).toMatchObject({ kind: 'RUN', line: 2, endLine: 3, command: { form: 'shell', script: 'apt-get update &&     apt-get install -y curl' } });
  });

  it('skips comments and blank lines inside a continuation', () => {
    const [run, user] = body('RUN a \\\n# a comment\n    # indented comment\n\n  \\\n  b\nUSER x');
    // Like BuildKit: a line holding only the escape keeps its indentation, later lines are not trimmed.
    expect(run).toMatchObject({ line: 2, endLine: 7, command: { script: 'a     b' } });
    expect(user).toMatchObject({ kind: 'USER', line: 8 });
  });

  it('treats an escaped escape at the end of a line as literal', () => {
    const [run, user] = body('RUN echo \\\\\nUSER x');
    expect(run).toMatchObject({ command: { script: 'echo \\\\' } });
    expect(user.kind).toBe('USER');
  });

  it('allows whitespace after the continuation character', () => {
    expect(first('RUN a \\  \t\n b', 'RUN').command).toEqual({ form: 'shell', script: 'a  b' });
  });

  it('handles CRLF line endings and leading whitespace', () => {
    const df = parseDockerfile('FROM scratch\r\n   RUN a \\\r\n  b\r\n\tUSER x\r\n');
    expect(df.stages[0].instructions.map((i) => i.original)).toEqual(['RUN a   b', 'USER x']);
  });

  it('uses the backtick for continuations with # escape=`', () => {
    const df = parseDockerfile('# escape=`\nFROM scratch\nRUN dir c:\\ `\n  /s\nWORKDIR c:\\app\\');
    const [run, workdir] = df.stages[0].instructions;
    expect(run).toMatchObject({ command: { script: 'dir c:\\   /s' }, escapeToken: '`' });
    expect(workdir).toMatchObject({ kind: 'WORKDIR', path: 'c:\\app\\' });
  });

  it('keeps a continuation at the end of the file', () => {
    expect(first('RUN a \\', 'RUN').command).toEqual({ form: 'shell', script: 'a' });
  });

  it('matches instruction keywords case-insensitively', () => {
    expect(body('run a\nworkDir /x').map((i) => i.kind)).toEqual(['RUN', 'WORKDIR']);
  });
});

describe('exec and shell forms', () => {
  it('parses JSON arrays as exec form', () => {
    expect(first('CMD ["node", "main.js"]', 'CMD').command).toEqual({ form: 'exec', args: ['node', 'main.js'] });
    expect(first('ENTRYPOINT ["/bin/tini", "--"]', 'ENTRYPOINT').command).toEqual({ form: 'exec', args: ['/bin/tini', '--'] });
    expect(first('RUN ["echo", "a b"]', 'RUN').command).toEqual({ form: 'exec', args: ['echo', 'a b'] });
    expect(first('CMD []', 'CMD').command).toEqual({ form: 'exec', args: [] });
  });

  it('falls back to shell form for invalid JSON starting with [', () => {
    expect(first('RUN [ -f /x ] && echo yes', 'RUN').command).toEqual({ form: 'shell', script: '[ -f /x ] && echo yes' });
    expect(first("CMD ['single', 'quotes']", 'CMD').command).toEqual({ form: 'shell', script: "['single', 'quotes']" });
  });

  it('rejects JSON arrays holding non-strings', () => {
    const error = syntaxError('FROM scratch\nCMD ["a", 1]');
    expect(error.message).toBe('Dockerfile:2: CMD: when using JSON array syntax, arrays must be comprised of strings only');
  });

  it('requires JSON for SHELL', () => {
    expect(first('SHELL ["/bin/bash", "-o", "pipefail", "-c"]', 'SHELL').shell).toEqual(['/bin/bash', '-o', 'pipefail', '-c']);
    const error = syntaxError('FROM scratch\n\nSHELL /bin/bash -c');
    expect(error).toMatchObject({ line: 3, instruction: 'SHELL' });
    expect(error.message).toContain('JSON form');
    expect(syntaxError('FROM scratch\nSHELL []').message).toContain('at least one argument');
  });

  it('parses COPY and VOLUME JSON arrays', () => {
    expect(first('COPY ["a b", "c", "/dst/"]', 'COPY')).toMatchObject({ sources: ['a b', 'c'], dest: '/dst/', json: true });
    expect(first('VOLUME ["/data", "/logs"]', 'VOLUME')).toMatchObject({ paths: ['/data', '/logs'], json: true });
    expect(first('VOLUME /data /logs', 'VOLUME')).toMatchObject({ paths: ['/data', '/logs'], json: false });
  });
});

describe('instructions', () => {
  it('FROM with AS and --platform starts a stage', () => {
    const df = parseDockerfile('ARG BASE=node:22\nFROM --platform=$BUILDPLATFORM ${BASE} AS Build\nRUN make\nFROM scratch\nCOPY --from=build /out /');
    expect(df.globalArgs).toHaveLength(1);
    expect(df.globalArgs[0].args).toEqual([{ name: 'BASE', defaultValue: 'node:22' }]);
    expect(df.stages.map((s) => [s.index, s.name, s.baseName, s.platform, s.line])).toEqual([
      [0, 'build', '${BASE}', '$BUILDPLATFORM', 2],
      [1, undefined, 'scratch', undefined, 4],
    ]);
    expect(df.stages[0].instructions.map((i) => i.kind)).toEqual(['RUN']);
    expect(df.stages[0].from).toMatchObject({ kind: 'FROM', image: '${BASE}', stageName: 'build', platform: '$BUILDPLATFORM' });
  });

  it('FROM argument errors', () => {
    expect(syntaxError('FROM a b').message).toBe('Dockerfile:1: FROM: FROM requires either one or three arguments');
    expect(syntaxError('FROM a is b').message).toContain('expected "AS"');
    expect(syntaxError('FROM a AS 1st').message).toContain('invalid stage name');
    expect(syntaxError('FROM a AS x\nFROM b AS X').message).toBe('Dockerfile:2: FROM: duplicate stage name "x"');
  });

  it('RUN with --mount, --network and --security', () => {
    const run = first(
      'RUN --mount=type=cache,target=/root/.npm,sharing=locked --mount=type=secret,id=npmrc,required --network=none --security=insecure npm ci',
      'RUN',
    );
    expect(run.command).toEqual({ form: 'shell', script: 'npm ci' });
    expect(run.network).toBe('none');
    expect(run.security).toBe('insecure');
    expect(run.mounts).toEqual([
      { spec: 'type=cache,target=/root/.npm,sharing=locked', type: 'cache', target: '/root/.npm', id: '/root/.npm', sharing: 'locked', readonly: false, required: false, deferred: false },
      { spec: 'type=secret,id=npmrc,required', type: 'secret', id: 'npmrc', target: '/run/secrets/npmrc', readonly: true, required: true, deferred: false },
    ]);
  });

  it('RUN mounts: bind defaults, aliases, file modes and ssh', () => {
    const run = first(
      'RUN --mount=from=build,src=/out,dst=/in,rw --mount=type=cache,destination=/c,id=x,mode=0700,uid=1000,gid=1000 --mount=type=ssh --mount=type=tmpfs,target=/tmp,size=1024 --mount=type=secret,id=tok,env=TOKEN true',
      'RUN',
    );
    expect(run.mounts[0]).toMatchObject({ type: 'bind', from: 'build', source: '/out', target: '/in', readonly: false });
    expect(run.mounts[1]).toMatchObject({ type: 'cache', target: '/c', id: 'x', mode: 0o700, uid: 1000, gid: 1000 });
    expect(run.mounts[2]).toMatchObject({ type: 'ssh', id: 'default', readonly: true });
    expect(run.mounts[3]).toMatchObject({ type: 'tmpfs', target: '/tmp', size: 1024, readonly: false });
    expect(run.mounts[4]).toMatchObject({ type: 'secret', id: 'tok', env: 'TOKEN' });
    expect(run.mounts[4].target).toBeUndefined();
  });

  it('RUN mounts with variables are deferred until expansion', () => {
    const run = first('RUN --mount=type=cache,target=$CACHE,uid=$UID echo', 'RUN');
    expect(run.mounts[0]).toMatchObject({ type: 'cache', deferred: true });
    expect(run.mounts[0].target).toBeUndefined();
  });

  it.each([
    ['RUN --mount=type=nfs,target=/x true', 'unsupported mount type "nfs"'],
    ['RUN --mount=type=bind true', 'bind mount requires a target'],
    ['RUN --mount=type=bind,target=/x,mode=0600 true', 'mode not allowed for bind mounts'],
    ['RUN --mount=type=cache,target=/x,sharing=maybe true', 'unsupported mount sharing value'],
    ['RUN --mount=type=cache,target=/x,color=red true', 'unexpected mount key "color"'],
    ['RUN --mount=type=cache,target=/x,uid=abc true', 'invalid value "abc" for uid'],
    ['RUN --mount=type=secret true', 'secret mount requires'],
    ['RUN --mount=type=bind,target=/x,required true', 'required not allowed for bind mounts'],
    ['RUN --network=bridge true', 'unsupported network mode "bridge"'],
    ['RUN --security=weird true', 'unsupported security mode'],
    ['RUN --mount true', 'missing a value on flag: --mount'],
  ])('%s fails: %s', (line, message) => {
    const error = syntaxError(`FROM scratch\n${line}`);
    expect(error).toMatchObject({ line: 2, instruction: 'RUN' });
    expect(error.message).toContain(message);
  });

  it('ENV in key=value form and legacy form', () => {
    expect(first('ENV A=1 B="two words" C=\'$x\' D=e\\ f', 'ENV').pairs).toEqual([
      { key: 'A', value: '1' },
      { key: 'B', value: '"two words"' },
      { key: 'C', value: "'$x'" },
      { key: 'D', value: 'e\\ f' },
    ]);
    expect(first('ENV PATH /usr/local/bin:$PATH and more', 'ENV').pairs).toEqual([{ key: 'PATH', value: '/usr/local/bin:$PATH and more' }]);
    expect(first('ENV EMPTY=', 'ENV').pairs).toEqual([{ key: 'EMPTY', value: '' }]);
  });

  it('ENV and LABEL errors', () => {
    expect(syntaxError('FROM scratch\nENV ONLYKEY').message).toBe('Dockerfile:2: ENV: ENV must have two arguments');
    expect(syntaxError('FROM scratch\nENV A=1 B').message).toContain("can't find = in \"B\"");
    expect(syntaxError('FROM scratch\nENV =x').message).toContain('names can not be blank');
    expect(syntaxError('FROM scratch\nLABEL').message).toBe('Dockerfile:2: LABEL: LABEL requires at least one argument');
  });

  it('LABEL with quoted keys and values', () => {
    expect(first('LABEL "com.example.vendor"="ACME Inc" version=1.0 description="multi \\\n  line"', 'LABEL').pairs).toEqual([
      { key: '"com.example.vendor"', value: '"ACME Inc"' },
      { key: 'version', value: '1.0' },
      { key: 'description', value: '"multi   line"' },
    ]);
  });

  it('ARG with and without defaults, several per line', () => {
    expect(first('ARG A B=2 C= D="x y"', 'ARG').args).toEqual([
      { name: 'A' },
      { name: 'B', defaultValue: '2' },
      { name: 'C', defaultValue: '' },
      { name: 'D', defaultValue: '"x y"' },
    ]);
    expect(syntaxError('FROM scratch\nARG').message).toBe('Dockerfile:2: ARG: ARG requires at least one argument');
  });

  it('EXPOSE, WORKDIR, USER, STOPSIGNAL, MAINTAINER', () => {
    const [expose, workdir, user, stop, maintainer] = body(
      'EXPOSE 80/tcp  443 ${PORT}\nWORKDIR /app dir\nUSER app:app\nSTOPSIGNAL SIGTERM\nMAINTAINER Jane <jane@example.com>',
    );
    expect(expose).toMatchObject({ kind: 'EXPOSE', ports: ['80/tcp', '443', '${PORT}'] });
    expect(workdir).toMatchObject({ kind: 'WORKDIR', path: '/app dir' });
    expect(user).toMatchObject({ kind: 'USER', user: 'app:app' });
    expect(stop).toMatchObject({ kind: 'STOPSIGNAL', signal: 'SIGTERM' });
    expect(maintainer).toMatchObject({ kind: 'MAINTAINER', maintainer: 'Jane <jane@example.com>' });
  });

  it.each([
    ['EXPOSE', 'EXPOSE requires at least one argument'],
    ['WORKDIR', 'WORKDIR requires exactly one argument'],
    ['USER', 'USER requires exactly one argument'],
    ['STOPSIGNAL', 'STOPSIGNAL requires exactly one argument'],
    ['MAINTAINER', 'MAINTAINER requires exactly one argument'],
    ['VOLUME', 'VOLUME requires at least one argument'],
    ['VOLUME ["/a", ""]', 'VOLUME specified can not be an empty string'],
    ['RUN', 'RUN requires at least one argument'],
    ['ONBUILD', 'ONBUILD requires at least one argument'],
    ['HEALTHCHECK', 'HEALTHCHECK requires an argument (CMD or NONE)'],
    ['COPY onlyone', 'COPY requires at least two arguments, but only one was provided'],
    ['ADD', 'ADD requires at least two arguments, but only none were provided'],
  ])('missing arguments: %s', (line, message) => {
    const error = syntaxError(`FROM scratch\n${line}`);
    expect(error.line).toBe(2);
    expect(error.message).toBe(`Dockerfile:2: ${line.split(' ')[0]}: ${message}${message.startsWith('COPY') || message.startsWith('ADD') ? ': the destination could not be determined' : ''}`);
  });

  it('HEALTHCHECK CMD with options, and NONE', () => {
    const check = first('HEALTHCHECK --interval=30s --timeout=1m30s --start-period=1.5s --start-interval=500ms --retries=3 CMD ["curl", "-f", "http://localhost/"]', 'HEALTHCHECK');
    expect(check).toMatchObject({
      none: false,
      command: { form: 'exec', args: ['curl', '-f', 'http://localhost/'] },
      intervalNs: 30e9,
      timeoutNs: 90e9,
      startPeriodNs: 1.5e9,
      startIntervalNs: 500e6,
      retries: 3,
    });
    expect(first('HEALTHCHECK cmd curl -f localhost || exit 1', 'HEALTHCHECK').command).toEqual({ form: 'shell', script: 'curl -f localhost || exit 1' });
    expect(first('HEALTHCHECK NONE', 'HEALTHCHECK')).toMatchObject({ none: true });
  });

  it.each([
    ['HEALTHCHECK NONE now', 'HEALTHCHECK NONE takes no arguments'],
    ['HEALTHCHECK --interval=5s NONE', 'HEALTHCHECK NONE takes no options'],
    ['HEALTHCHECK PING x', 'unknown type "PING" in HEALTHCHECK (try CMD)'],
    ['HEALTHCHECK CMD', 'missing command after HEALTHCHECK CMD'],
    ['HEALTHCHECK --interval=5 CMD true', 'invalid duration "5"'],
    ['HEALTHCHECK --interval=1ns CMD true', '--interval cannot be less than 1ms'],
    ['HEALTHCHECK --timeout=-1s CMD true', '--timeout cannot be negative'],
    ['HEALTHCHECK --retries=-1 CMD true', '--retries cannot be negative'],
    ['HEALTHCHECK --retries=x CMD true', 'invalid --retries "x"'],
  ])('%s fails: %s', (line, message) => {
    expect(syntaxError(`FROM scratch\n${line}`).message).toBe(`Dockerfile:2: HEALTHCHECK: ${message}`);
  });

  it('ONBUILD holds a parsed trigger', () => {
    const onbuild = first('ONBUILD COPY --chown=app . /src', 'ONBUILD');
    expect(onbuild.expression).toBe('COPY --chown=app . /src');
    expect(onbuild.trigger).toMatchObject({ kind: 'COPY', chown: 'app', sources: ['.'], dest: '/src', line: 2 });
  });

  it.each([
    ['ONBUILD ONBUILD RUN x', 'chaining ONBUILD via `ONBUILD ONBUILD` is not allowed'],
    ['ONBUILD FROM alpine', 'FROM is not allowed as an ONBUILD trigger'],
    ['ONBUILD maintainer me', 'MAINTAINER is not allowed as an ONBUILD trigger'],
    ['ONBUILD BOGUS x', 'BOGUS: unknown instruction'],
    ['ONBUILD COPY --bogus a b', 'COPY: unknown flag: --bogus'],
  ])('%s fails: %s', (line, message) => {
    expect(syntaxError(`FROM scratch\n${line}`).message).toBe(`Dockerfile:2: ONBUILD: ${message}`);
  });

  it('COPY flags', () => {
    const copy = first('COPY --from=build --chown=1000:1000 --chmod=0755 --link --parents --exclude=*.md --exclude=test/ a b /dst/', 'COPY');
    expect(copy).toMatchObject({
      from: 'build',
      chown: '1000:1000',
      chmod: '0755',
      link: true,
      parents: true,
      excludes: ['*.md', 'test/'],
      sources: ['a', 'b'],
      dest: '/dst/',
      json: false,
    });
    expect(copy.flags).toEqual([
      { name: 'from', value: 'build' },
      { name: 'chown', value: '1000:1000' },
      { name: 'chmod', value: '0755' },
      { name: 'link' },
      { name: 'parents' },
      { name: 'exclude', value: '*.md' },
      { name: 'exclude', value: 'test/' },
    ]);
    expect(first('COPY --link=false a /b', 'COPY').link).toBe(false);
    expect(first('COPY --from="my stage" a /b', 'COPY').from).toBe('my stage');
  });

  it('ADD flags', () => {
    const add = first('ADD --checksum=sha256:abc --keep-git-dir=true --chown=app --unpack=false --link https://example.com/x.tgz /opt/', 'ADD');
    expect(add).toMatchObject({ checksum: 'sha256:abc', keepGitDir: true, chown: 'app', unpack: false, link: true, sources: ['https://example.com/x.tgz'], dest: '/opt/' });
  });

  it('a bare -- ends the flags', () => {
    expect(first('COPY --link -- --weird-name /dst', 'COPY')).toMatchObject({ link: true, sources: ['--weird-name'] });
  });

  it.each([
    ['COPY --checksum=x a b', 'COPY', 'unknown flag: --checksum'],
    ['ADD --from=x a b', 'ADD', 'unknown flag: --from'],
    ['COPY --from=a --from=b x y', 'COPY', 'duplicate flag specified: --from'],
    ['COPY --link=maybe a b', 'COPY', 'expecting a boolean value for flag --link, not: "maybe"'],
    ['COPY --chown a b', 'COPY', 'missing a value on flag: --chown'],
    ['ENV --x=1 A=b', 'ENV', 'unknown flag: --x'],
    ['WORKDIR --parents /x', 'WORKDIR', 'unknown flag: --parents'],
    ['RUN --constructor=1 true', 'RUN', 'unknown flag: --constructor'],
  ])('bad flag: %s', (line, instruction, message) => {
    expect(syntaxError(`FROM scratch\n${line}`).message).toBe(`Dockerfile:2: ${instruction}: ${message}`);
  });

  it('FROM --platform is the only FROM flag', () => {
    expect(syntaxError('FROM --arch=arm64 alpine').message).toBe('Dockerfile:1: FROM: unknown flag: --arch');
  });
});

describe('heredocs', () => {
  it('RUN <<EOF reads the body and continues after the terminator', () => {
    const df = parseDockerfile('FROM scratch\nRUN <<EOF\nset -e\necho "$HOME"\nEOF\nUSER app\n');
    const [run, user] = df.stages[0].instructions;
    expect(run).toMatchObject({ kind: 'RUN', line: 2, endLine: 5, command: { form: 'shell', script: '<<EOF' } });
    expect(run.heredocs).toEqual([{ name: 'EOF', content: 'set -e\necho "$HOME"\n', expand: true, chomp: false }]);
    expect(user).toMatchObject({ kind: 'USER', line: 6 });
  });

  it('COPY <<EOF /path makes an inline source', () => {
    const copy = first('COPY <<EOF /etc/motd\nhello $NAME\nEOF', 'COPY');
    expect(copy.sources).toEqual([]);
    expect(copy.dest).toBe('/etc/motd');
    expect(copy.contents).toEqual([{ name: 'EOF', content: 'hello $NAME\n', expand: true, chomp: false }]);
  });

  it('several heredocs on one line, mixed with path sources', () => {
    const copy = first('COPY <<one.txt ./local <<two.txt /dst/\n1\none.txt\n2\ntwo.txt\nUSER x', 'COPY');
    expect(copy.sources).toEqual(['./local']);
    expect(copy.contents.map((c) => [c.name, c.content])).toEqual([
      ['one.txt', '1\n'],
      ['two.txt', '2\n'],
    ]);
    const run = first('RUN <<A cat - /dev/fd/3 3<<B\na\nA\nb\nB', 'RUN');
    expect(run.heredocs).toEqual([
      { name: 'A', content: 'a\n', expand: true, chomp: false },
      { name: 'B', content: 'b\n', expand: true, chomp: false, fileDescriptor: 3 },
    ]);
  });

  it('<<- strips leading tabs from the body and the terminator', () => {
    const run = first('RUN <<-EOF\n\t\techo hi\n\t  keep spaces\n\tEOF\nUSER x', 'RUN');
    expect(run.heredocs[0]).toEqual({ name: 'EOF', content: 'echo hi\n  keep spaces\n', expand: true, chomp: true });
  });

  it('quoted delimiters turn expansion off', () => {
    expect(first('RUN <<"EOF"\n$X\nEOF', 'RUN').heredocs[0]).toMatchObject({ name: 'EOF', expand: false });
    expect(first("COPY <<'EOF' /x\n$X\nEOF", 'COPY').contents[0]).toMatchObject({ name: 'EOF', expand: false, content: '$X\n' });
    expect(first('RUN <<E"O"F\n$X\nEOF', 'RUN').heredocs[0]).toMatchObject({ name: 'EOF', expand: false });
  });

  it('a heredoc body is not parsed as instructions and keeps blank lines and comments', () => {
    const df = parseDockerfile('FROM scratch\nRUN <<EOF\n# not a comment\n\nFROM nope\nEOF\n');
    expect(df.stages).toHaveLength(1);
    expect(df.stages[0].instructions[0].heredocs[0].content).toBe('# not a comment\n\nFROM nope\n');
  });

  it('the opening line can have continuations', () => {
    const run = first('RUN python3 \\\n  <<EOF\nprint(1)\nEOF', 'RUN');
    expect(run).toMatchObject({ line: 2, endLine: 5 });
    expect(run.heredocs[0].content).toBe('print(1)\n');
  });

  it('no heredocs in exec form, quoted text or non-heredoc instructions', () => {
    expect(first('RUN ["cat", "<<EOF"]\nUSER x', 'RUN').heredocs).toEqual([]);
    expect(first('RUN echo "<<EOF"\nUSER x', 'RUN').heredocs).toEqual([]);
    expect(first('RUN echo a<<EOF b\nUSER x', 'RUN').heredocs).toEqual([]);
    expect(first('ENV A=<<EOF\nUSER x', 'ENV').heredocs).toEqual([]);
  });

  it('ONBUILD RUN with a heredoc', () => {
    const onbuild = first('ONBUILD RUN <<EOF\necho hi\nEOF', 'ONBUILD');
    expect(onbuild.heredocs).toHaveLength(1);
    expect(onbuild.trigger.heredocs[0].content).toBe('echo hi\n');
  });

  it('an unterminated heredoc is an error at the instruction line', () => {
    const error = syntaxError('FROM scratch\nRUN <<EOF\necho hi\n', 'build/Dockerfile');
    expect(error).toMatchObject({ file: 'build/Dockerfile', line: 2, instruction: 'RUN' });
    expect(error.message).toBe('build/Dockerfile:2: RUN: unterminated heredoc "EOF"');
    expect(syntaxError('FROM scratch\nCOPY <<A <<B /x\na\nA\nb\n').message).toBe('Dockerfile:2: COPY: unterminated heredoc "B"');
  });
});

describe('structure errors', () => {
  it('unknown instruction', () => {
    const error = syntaxError('FROM scratch\nRUN a\nCOPPY a b\n');
    expect(error).toMatchObject({ line: 3, instruction: 'COPPY', code: 'DOCKERFILE_SYNTAX' });
    expect(error.message).toBe('Dockerfile:3: COPPY: unknown instruction');
    expect(error).toBeInstanceOf(TesseraError);
  });

  it('instructions before the first FROM other than ARG', () => {
    const error = syntaxError('ARG A\n# comment\nENV B=1\nFROM scratch');
    expect(error.message).toBe('Dockerfile:3: ENV: instruction before the first FROM (only ARG may come before FROM)');
  });

  it('FROM missing', () => {
    expect(syntaxError('ARG A=1\nARG B\n').message).toBe('Dockerfile:2: FROM: no FROM instruction: a Dockerfile needs at least one stage');
    expect(syntaxError('# only a comment\n\n').message).toBe('Dockerfile:1: FROM: file with no instructions');
    expect(syntaxError('').message).toBe('Dockerfile:1: FROM: file with no instructions');
  });
});

describe('parseInstructionLine', () => {
  it('parses an ONBUILD trigger from an image config', () => {
    const instruction = parseInstructionLine('RUN --mount=type=cache,target=/c npm ci');
    expect(instruction).toMatchObject({ kind: 'RUN', line: 1, file: 'ONBUILD trigger', command: { form: 'shell', script: 'npm ci' } });
  });

  it('rejects empty text, several instructions and bad instructions', () => {
    expect(() => parseInstructionLine('')).toThrow(DockerfileSyntaxError);
    expect(() => parseInstructionLine('RUN a\nRUN b')).toThrow('expected exactly one instruction, found 2');
    expect(() => parseInstructionLine('NOPE x', { file: 'base:onbuild' })).toThrow('base:onbuild:1: NOPE: unknown instruction');
  });
});

describe('a realistic multi-stage Dockerfile', () => {
  it('parses every stage', () => {
    const df = parseDockerfile(
      [
        '# syntax=docker/dockerfile:1.7',
        'ARG NODE_VERSION=22',
        '',
        'FROM node:${NODE_VERSION}-slim AS deps',
        'WORKDIR /app',
        'COPY package.json package-lock.json ./',
        'RUN --mount=type=cache,target=/root/.npm npm ci',
        '',
        'FROM deps AS build',
        'COPY . .',
        'RUN npm run build',
        '',
        'FROM gcr.io/distroless/nodejs22',
        'ENV NODE_ENV=production',
        'COPY --from=build --chown=nonroot /app/dist /app',
        'USER nonroot',
        'EXPOSE 3000',
        'HEALTHCHECK CMD ["/nodejs/bin/node", "/app/health.js"]',
        'CMD ["/app/main.js"]',
      ].join('\n'),
    );
    expect(df.stages.map((s) => s.name ?? s.baseName)).toEqual(['deps', 'build', 'gcr.io/distroless/nodejs22']);
    expect(df.stages.map((s) => s.instructions.length)).toEqual([3, 2, 6]);
  });
});
