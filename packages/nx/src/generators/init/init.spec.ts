import { describe, expect, it } from 'vitest';
import { readNxJson, updateNxJson } from '@nx/devkit';
import { createTreeWithEmptyWorkspace } from '@nx/devkit/testing';
import { initGenerator } from './init';

describe('init generator', () => {
  it('registers the plugin once', async () => {
    const tree = createTreeWithEmptyWorkspace();
    await initGenerator(tree, { registry: 'reg.local', skipFormat: true });
    await initGenerator(tree, { skipFormat: true });
    const plugins = readNxJson(tree)!.plugins!.filter((entry) => typeof entry !== 'string' && entry.plugin === '@tessera/nx/plugin');
    expect(plugins).toEqual([{ plugin: '@tessera/nx/plugin', options: { targetName: 'image', registry: 'reg.local' } }]);
  });

  it('keeps an existing registration written as a bare string', async () => {
    const tree = createTreeWithEmptyWorkspace();
    updateNxJson(tree, { ...readNxJson(tree), plugins: ['@tessera/nx'] });
    await initGenerator(tree, { skipFormat: true });
    expect(readNxJson(tree)!.plugins).toEqual(['@tessera/nx']);
  });
});
