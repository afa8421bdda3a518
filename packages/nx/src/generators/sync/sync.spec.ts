import { describe, expect, it } from 'vitest';
import { readNxJson, updateNxJson } from '@nx/devkit';
import { createTreeWithEmptyWorkspace } from '@nx/devkit/testing';
import { testGraph } from '../../testing/test-graph';
import { syncModuleBlocks } from './sync';

describe('sync generator', () => {
  const image = { image: { executor: '@tessera/nx:image' } };
  const graph = testGraph(
    {
      api: { root: 'apps/api', targets: image },
      base: { root: 'apps/base', targets: image },
      shared: { root: 'libs/shared' },
      plain: { root: 'apps/plain', targets: image },
    },
    { api: ['shared', 'base'], plain: ['shared'] },
  );

  it('rewrites stale blocks, leaves out base-image projects, and leaves Dockerfiles without a block alone', () => {
    const tree = createTreeWithEmptyWorkspace();
    updateNxJson(tree, { ...readNxJson(tree), plugins: [{ plugin: '@tessera/nx/plugin', options: { registry: 'reg.local' } }] });
    tree.write('apps/api/Dockerfile', 'FROM reg.local/base:1\n# tessera:modules begin\n# tessera:modules end\nCMD x\n');
    tree.write('apps/plain/Dockerfile', 'FROM node\nCOPY . .\n');

    expect(syncModuleBlocks(tree, graph)).toEqual(['apps/api/Dockerfile']);
    expect(tree.read('apps/api/Dockerfile', 'utf-8')).toBe(
      'FROM reg.local/base:1\n# tessera:modules begin\nCOPY libs/shared ./libs/shared\nCOPY apps/api ./apps/api\n# tessera:modules end\nCMD x\n',
    );
    expect(tree.read('apps/plain/Dockerfile', 'utf-8')).toBe('FROM node\nCOPY . .\n');
    expect(syncModuleBlocks(tree, graph)).toEqual([]);
  });
});
