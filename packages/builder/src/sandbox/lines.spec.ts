import { describe, expect, it } from 'vitest';
import { LineSplitter } from './lines';

describe('LineSplitter', () => {
  it('joins lines split across chunks, strips CR and flushes the last partial line', () => {
    const lines: string[] = [];
    const splitter = new LineSplitter((line) => lines.push(line));
    splitter.push(Buffer.from('one\ntw'));
    splitter.push(Buffer.from('o\r\n\nthr'));
    expect(lines).toEqual(['one', 'two', '']);
    splitter.end();
    expect(lines).toEqual(['one', 'two', '', 'thr']);
  });

  it('does not break a multi-byte character split between chunks', () => {
    const lines: string[] = [];
    const splitter = new LineSplitter((line) => lines.push(line));
    const bytes = Buffer.from('héllo\n');
    splitter.push(bytes.subarray(0, 2));
    splitter.push(bytes.subarray(2));
    expect(lines).toEqual(['héllo']);
  });
});
