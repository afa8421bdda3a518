import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { kanikoFlagTable } from './kaniko-table';

describe('docs/migrating-from-kaniko.md', () => {
  it('carries the flag table generated from the build flags', async () => {
    const doc = await readFile(new URL('../../../../docs/migrating-from-kaniko.md', import.meta.url), 'utf8');
    const table = /<!-- flag-table:begin -->\n([\s\S]*?)\n<!-- flag-table:end -->/.exec(doc)?.[1];
    expect(table, 'regenerate with: npx vitest run src/cli/kaniko-table.spec.ts -u is not used; paste kanikoFlagTable() output').toBe(kanikoFlagTable());
  });
});
