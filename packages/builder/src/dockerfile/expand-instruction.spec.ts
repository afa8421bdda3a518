import { describe, expect, it } from 'vitest';
import { DockerfileSyntaxError } from './errors';
import { EXPANDING_INSTRUCTIONS, expandInstruction } from './expand-instruction';
import type { Instruction } from './model';
import { parseDockerfile } from './parser';

const env = new Map<string, string>([
  ['BASE', 'node:22'],
  ['APP', '/app'],
  ['USERNAME', 'node'],
  ['PORTS', '80 443'],
  ['NAME', 'world'],
  ['UID', '1000'],
  ['EMPTY', ''],
]);

function stage(text: string, escape = ''): Instruction[] {
  return parseDockerfile(`${escape}FROM scratch\n${text}`).stages[0].instructions;
}

function expanded<K extends Instruction['kind']>(text: string, kind: K, escape = '') {
  const instruction = stage(text, escape)[0];
  expect(instruction.kind).toBe(kind);
  const result = expandInstruction(instruction, env);
  return { ...result, instruction: result.instruction as Extract<Instruction, { kind: K }> };
}

describe('expandInstruction', () => {
  it('FROM: image and platform', () => {
    const df = parseDockerfile('FROM --platform=${PLATFORM:-linux/amd64} ${BASE}-slim AS app');
    const { instruction, referenced, unset } = expandInstruction(df.stages[0].from, env);
    expect(instruction).toMatchObject({ image: 'node:22-slim', platform: 'linux/amd64', stageName: 'app' });
    expect([...referenced].sort()).toEqual(['BASE', 'PLATFORM']);
    expect([...unset]).toEqual(['PLATFORM']);
    expect(df.stages[0].from.image).toBe('${BASE}-slim');
  });

  it('ENV: keys and values with quote removal, all against the same env', () => {
    const { instruction } = expanded('ENV DIR=$APP/bin GREETING="hello $NAME" RAW=\'$NAME\' APP=/other OLD=$APP', 'ENV');
    expect(instruction.pairs).toEqual([
      { key: 'DIR', value: '/app/bin' },
      { key: 'GREETING', value: 'hello world' },
      { key: 'RAW', value: '$NAME' },
      { key: 'APP', value: '/other' },
      { key: 'OLD', value: '/app' },
    ]);
  });

  it('ENV legacy form keeps inner spaces', () => {
    expect(expanded('ENV MSG hello   $NAME', 'ENV').instruction.pairs).toEqual([{ key: 'MSG', value: 'hello   world' }]);
  });

  it('LABEL keys and values', () => {
    expect(expanded('LABEL "org.opencontainers.image.title"="$NAME app" maintainer=${USERNAME}', 'LABEL').instruction.pairs).toEqual([
      { key: 'org.opencontainers.image.title', value: 'world app' },
      { key: 'maintainer', value: 'node' },
    ]);
  });

  it('ARG defaults expand; names do not', () => {
    expect(expanded('ARG HOME_DIR=$APP/home PLAIN', 'ARG').instruction.args).toEqual([{ name: 'HOME_DIR', defaultValue: '/app/home' }, { name: 'PLAIN' }]);
  });

  it('EXPOSE splits words after expansion', () => {
    expect(expanded('EXPOSE $PORTS 8080/udp', 'EXPOSE').instruction.ports).toEqual(['80', '443', '8080/udp']);
  });

  it('WORKDIR, USER, STOPSIGNAL, VOLUME', () => {
    expect(expanded('WORKDIR $APP/src', 'WORKDIR').instruction.path).toBe('/app/src');
    expect(expanded('USER ${USERNAME}:${USERNAME}', 'USER').instruction.user).toBe('node:node');
    expect(expanded('STOPSIGNAL ${SIG:-SIGQUIT}', 'STOPSIGNAL').instruction.signal).toBe('SIGQUIT');
    expect(expanded('VOLUME ["$APP/data"]', 'VOLUME').instruction.paths).toEqual(['/app/data']);
  });

  it('COPY: sources, destination and flags', () => {
    const { instruction, referenced } = expanded('COPY --from=${STAGE:-build} --chown=$UID:$UID --exclude=$NAME.md $APP/a b $APP/', 'COPY');
    expect(instruction).toMatchObject({ from: 'build', chown: '1000:1000', excludes: ['world.md'], sources: ['/app/a', 'b'], dest: '/app/' });
    expect([...referenced].sort()).toEqual(['APP', 'NAME', 'STAGE', 'UID']);
  });

  it('ADD: checksum and chmod', () => {
    expect(expanded('ADD --checksum=${SUM:-sha256:x} --chmod=${MODE:-644} https://e.x/$NAME.tgz /', 'ADD').instruction).toMatchObject({
      checksum: 'sha256:x',
      chmod: '644',
      sources: ['https://e.x/world.tgz'],
    });
  });

  it('COPY heredoc bodies expand only with unquoted delimiters', () => {
    const open = expanded('COPY <<EOF /greeting\nhello "$NAME" \\$HOME\nEOF', 'COPY').instruction;
    expect(open.contents[0].content).toBe('hello "world" $HOME\n');
    const quoted = expanded('COPY <<"EOF" /greeting\nhello $NAME\nEOF', 'COPY').instruction;
    expect(quoted.contents[0].content).toBe('hello $NAME\n');
  });

  it('RUN: the command and heredocs are left to the shell, mounts expand', () => {
    const { instruction, referenced } = expanded('RUN --mount=type=cache,target=$APP/.cache,uid=$UID echo $NAME <<EOF\n$NAME\nEOF', 'RUN');
    expect(instruction.command).toEqual({ form: 'shell', script: 'echo $NAME <<EOF' });
    expect(instruction.heredocs[0].content).toBe('$NAME\n');
    expect(instruction.mounts[0]).toMatchObject({ type: 'cache', target: '/app/.cache', uid: 1000, id: '/app/.cache', deferred: false });
    expect([...referenced].sort()).toEqual(['APP', 'UID']);
  });

  it('CMD, ENTRYPOINT, HEALTHCHECK, SHELL, MAINTAINER and ONBUILD are unchanged', () => {
    for (const line of ['CMD echo $NAME', 'ENTRYPOINT ["$NAME"]', 'HEALTHCHECK CMD $NAME', 'SHELL ["$NAME"]', 'MAINTAINER $NAME', 'ONBUILD RUN $NAME']) {
      const instruction = stage(line)[0];
      const result = expandInstruction(instruction, env);
      expect(result.instruction).toBe(instruction);
      expect(result.referenced.size).toBe(0);
      expect(EXPANDING_INSTRUCTIONS.has(instruction.kind)).toBe(false);
    }
  });

  it('uses the escape directive of the Dockerfile', () => {
    expect(expanded('WORKDIR C:\\$NAME\\`$NAME', 'WORKDIR', '# escape=`\n').instruction.path).toBe('C:\\world\\$NAME');
  });

  it('accepts a lookup function', () => {
    const instruction = stage('USER $WHO')[0];
    expect(expandInstruction(instruction, (name) => (name === 'WHO' ? 'root' : undefined)).instruction).toMatchObject({ user: 'root' });
  });

  it('reports expansion failures with file and line', () => {
    const instruction = parseDockerfile('FROM scratch\n\nWORKDIR ${REQUIRED:?set REQUIRED}', { file: 'app/Dockerfile' }).stages[0].instructions[0];
    expect(() => expandInstruction(instruction, env)).toThrow(DockerfileSyntaxError);
    expect(() => expandInstruction(instruction, env)).toThrow('app/Dockerfile:3: WORKDIR: failed to process "${REQUIRED:?set REQUIRED}": REQUIRED: set REQUIRED');
  });

  it('reports a mount that is invalid after expansion', () => {
    const instruction = stage('RUN --mount=type=$EMPTY,target=/x true')[0];
    expect(() => expandInstruction(instruction, env)).toThrow('Dockerfile:2: RUN: unsupported mount type ""');
  });

  it('rejects a VOLUME that expands to nothing', () => {
    expect(() => expandInstruction(stage('VOLUME $EMPTY')[0], env)).toThrow('VOLUME specified can not be an empty string');
  });
});
