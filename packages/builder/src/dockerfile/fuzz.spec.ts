import { describe, expect, it } from 'vitest';
import { DockerfileSyntaxError } from './errors';
import { expandInstruction } from './expand-instruction';
import { parseDockerfile, parseInstructionLine } from './parser';
// The same seeded generator the fault proxy uses, so a failing input can be reproduced from its iteration.
import { seededRandom } from '../../../../tools/faults/proxy';

const FRAGMENTS = [
  'FROM ', 'FROM scratch', 'FROM alpine AS build', ' AS ', 'RUN ', 'CMD ', 'ENTRYPOINT ', 'SHELL ', 'ENV ', 'ARG ',
  'LABEL ', 'EXPOSE ', 'VOLUME ', 'WORKDIR ', 'USER ', 'STOPSIGNAL ', 'HEALTHCHECK ', 'HEALTHCHECK NONE', ' CMD ',
  'ONBUILD ', 'MAINTAINER ', 'COPY ', 'ADD ', 'BOGUS ', '--from=', '--chown=', '--chmod=', '--link', '--parents',
  '--exclude=', '--checksum=', '--keep-git-dir', '--mount=', 'type=cache,target=/c', 'type=secret,id=s', ',', '=',
  '--network=none', '--security=insecure', '--platform=', '--interval=', '5s', '--retries=', '--', '<<EOF', '<<-EOF',
  '<<"EOF"', "<<'EOF'", 'EOF', '\tEOF', '3<<X', 'X', '[', ']', '["a", "b"]', '[1]', '"', "'", '`', '\\', '\\\n', '`\n',
  '\n', '\r\n', '\n\n', '# comment\n', '# escape=`\n', '# syntax=x\n', '# check=y\n', '$', '${', '}', '$A', '${A:-b}',
  '${A:?}', '${A#', '${A/x/y}', '${', ':', '?', '+', '-', '#', '%', '*', ' ', '  ', '\t', 'a', 'b=c', 'K=V', '/dst/',
  '.', 'é', '💥', '\u00a0', '\uFEFF', '\0',
];

function randomDockerfile(random: () => number): string {
  const parts: string[] = [];
  if (random() < 0.7) parts.push('FROM scratch\n');
  const count = 1 + Math.floor(random() * 30);
  for (let i = 0; i < count; i++) parts.push(FRAGMENTS[Math.floor(random() * FRAGMENTS.length)]);
  return parts.join('');
}

function expectOnlySyntaxErrors(action: () => void, input: string): void {
  try {
    action();
  } catch (error) {
    if (!(error instanceof DockerfileSyntaxError)) {
      throw new Error(`unexpected ${String(error)} for input ${JSON.stringify(input)}`, { cause: error });
    }
    expect(error.message.startsWith(`${error.file}:${error.line}: `)).toBe(true);
  }
}

describe('fuzz', () => {
  it('10,000 random Dockerfiles parse or fail with DockerfileSyntaxError only', () => {
    const random = seededRandom(20240611);
    const env = new Map([['A', 'x y']]);
    let parsed = 0;
    for (let i = 0; i < 10_000; i++) {
      const input = randomDockerfile(random);
      expectOnlySyntaxErrors(() => {
        const dockerfile = parseDockerfile(input);
        parsed++;
        for (const instruction of [...dockerfile.globalArgs, ...dockerfile.stages.flatMap((s) => [s.from, ...s.instructions])]) {
          expectOnlySyntaxErrors(() => expandInstruction(instruction, env), input);
        }
      }, input);
      expectOnlySyntaxErrors(() => parseInstructionLine(input.replace(/^FROM scratch\n/, '')), input);
    }
    // The generator must exercise both outcomes, or the loop proves little.
    expect(parsed).toBeGreaterThan(500);
    expect(parsed).toBeLessThan(9_500);
  });
});
