import { describe, expect, it } from 'vitest';
import { parseDockerfile } from '../dockerfile/index';
import { runArgv } from './stage-builder';

const shell = ['/bin/sh', '-c'];
const firstRun = (text: string) => {
  const instruction = parseDockerfile(`FROM scratch\n${text}`).stages[0]!.instructions[0]!;
  if (instruction.kind !== 'RUN') throw new Error('not a RUN');
  return instruction;
};

describe('runArgv', () => {
  it('passes exec form as it is', () => {
    expect(runArgv(firstRun('RUN ["echo", "a b"]'), shell)).toEqual(['echo', 'a b']);
  });
  it('wraps shell form in the SHELL', () => {
    expect(runArgv(firstRun('RUN echo $HOME'), ['/bin/bash', '-lc'])).toEqual(['/bin/bash', '-lc', 'echo $HOME']);
  });
  it('runs a lone heredoc body as the script', () => {
    expect(runArgv(firstRun('RUN <<EOF\necho one\necho two\nEOF'), shell)).toEqual(['/bin/sh', '-c', 'echo one\necho two\n']);
  });
  it('hands heredocs after the command line to the shell as here-documents', () => {
    expect(runArgv(firstRun("RUN cat <<'A' > /x && cat <<B\n$foo\nA\nbar\nB"), shell)).toEqual([
      '/bin/sh',
      '-c',
      "cat <<'A' > /x && cat <<B\n$foo\nA\nbar\nB\n",
    ]);
  });
  it('runs a heredoc with a shebang through its interpreter', () => {
    const argv = runArgv(firstRun('RUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF'), shell);
    expect(argv[2]).toMatch(/^\/usr\/bin\/env python3 \/dev\/stdin <<'TESSERA_HEREDOC_EOF'\n#!\/usr\/bin\/env python3\nprint\(1\)\nTESSERA_HEREDOC_EOF\n$/);
  });
});
