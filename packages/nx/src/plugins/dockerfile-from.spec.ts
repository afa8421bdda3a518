import { describe, expect, it } from 'vitest';
import { parseFromImages, repositoryOf } from './dockerfile-from';

describe('parseFromImages', () => {
  it('reads images, skipping flags, stage references, scratch and variables', () => {
    const text = [
      '# syntax=docker/dockerfile:1',
      'ARG BASE=node:22',
      'FROM --platform=$BUILDPLATFORM registry.local/tools:1.0 AS build',
      'RUN make',
      'from build as second',
      'FROM ${BASE}',
      'FROM scratch',
      'FROM registry.local/api@sha256:abc',
    ].join('\n');
    expect(parseFromImages(text)).toEqual([
      { image: 'registry.local/tools:1.0', line: 3, stage: 'build' },
      { image: 'registry.local/api@sha256:abc', line: 8 },
    ]);
  });

  it('joins continuation lines and honours the escape directive', () => {
    expect(parseFromImages('FROM \\\n  base:1 \\\n  AS one\n')).toEqual([{ image: 'base:1', line: 1, stage: 'one' }]);
    expect(parseFromImages('# escape=`\nFROM `\n  c:\\base:1\n')).toEqual([{ image: 'c:\\base:1', line: 2 }]);
  });

  it('ignores FROM inside other instructions', () => {
    expect(parseFromImages('RUN echo FROM x\nLABEL from=y\n')).toEqual([]);
  });
});

describe('repositoryOf', () => {
  it('strips tags and digests but keeps registry ports', () => {
    expect(repositoryOf('localhost:5000/team/api:1.2')).toBe('localhost:5000/team/api');
    expect(repositoryOf('localhost:5000/team/api')).toBe('localhost:5000/team/api');
    expect(repositoryOf('api@sha256:00')).toBe('api');
    expect(repositoryOf('api:1@sha256:00')).toBe('api');
  });
});
