import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CreateNodesContext, CreateNodesResult } from '@nx/devkit';
import { createNodes, createNodesV2 } from './plugin';

let workspace: string;
beforeEach(() => {
  workspace = mkdtempSync(join(tmpdir(), 'tessera-nx-plugin-'));
});
afterEach(() => rmSync(workspace, { recursive: true, force: true }));

function write(path: string, content: string | object) {
  mkdirSync(dirname(join(workspace, path)), { recursive: true });
  writeFileSync(join(workspace, path), typeof content === 'string' ? content : JSON.stringify(content));
}

async function infer(files: string[], options?: object, nxJson: CreateNodesContext['nxJsonConfiguration'] = {}) {
  const results = await createNodes[1](files, options, { workspaceRoot: workspace, nxJsonConfiguration: nxJson });
  return Object.fromEntries(results.map(([file, result]) => [file, result])) as Record<string, CreateNodesResult>;
}

describe('createNodes', () => {
  it('infers an image target for a project with a Dockerfile', async () => {
    write('package.json', { devDependencies: { '@tessera/nx': '0.1.0' } });
    write('apps/api/project.json', { name: 'api', targets: { build: {} } });
    write('apps/api/Dockerfile', 'FROM node:22\nCOPY dist/apps/api ./\n');
    const results = await infer(['apps/api/Dockerfile', 'apps/api/project.json'], { registry: 'reg.local/team', push: true }, {
      namedInputs: { production: ['default'] },
    });
    expect(Object.keys(results)).toEqual(['apps/api/Dockerfile']);
    const target = results['apps/api/Dockerfile'].projects!['apps/api'].targets!.image;
    expect(target).toEqual({
      executor: '@tessera/nx:image',
      options: { registry: 'reg.local/team', push: true, dockerfile: 'apps/api/Dockerfile' },
      inputs: [
        'production',
        '^production',
        '{projectRoot}/Dockerfile',
        '{projectRoot}/.dockerignore',
        { env: 'SOURCE_DATE_EPOCH' },
        { externalDependencies: ['@tessera/nx'] },
      ],
      dependsOn: ['^image', 'build', '^build'],
      cache: false,
      metadata: { description: 'Build the image from Dockerfile with Tessera', technologies: ['docker'] },
    });
  });

  it('registers the sync generator only where the Dockerfile has a module block to keep in sync', async () => {
    write('apps/api/project.json', { name: 'api' });
    write('apps/api/Dockerfile', 'FROM node:22\n# tessera:modules begin\n# tessera:modules end\n');
    write('apps/job/project.json', { name: 'job' });
    write('apps/job/Dockerfile', 'FROM node:22\nCOPY apps/job ./\n');
    const results = await infer(['apps/api/Dockerfile', 'apps/job/Dockerfile']);
    expect(results['apps/api/Dockerfile'].projects!['apps/api'].targets!.image.syncGenerators).toEqual(['@tessera/nx:sync']);
    expect(results['apps/job/Dockerfile'].projects!['apps/job'].targets!.image).not.toHaveProperty('syncGenerators');
  });

  it('uses default inputs, the configured target name, and no build when the Dockerfile copies sources', async () => {
    write('libs/web/package.json', { name: 'web', scripts: { build: 'tsc' } });
    write('libs/web/Dockerfile', 'FROM node:22\nCOPY libs/web ./libs/web\n');
    const results = await infer(['libs/web/Dockerfile', 'libs/web/package.json'], { targetName: 'container' });
    const target = results['libs/web/Dockerfile'].projects!['libs/web'].targets!.container;
    expect(target.inputs?.slice(0, 2)).toEqual(['default', '^default']);
    expect(target.inputs).not.toContainEqual({ externalDependencies: ['@tessera/nx'] });
    expect(target.dependsOn).toEqual(['^container']);
  });

  it('infers a layered image from a "tessera" block with a base, and surfaces the block as metadata', async () => {
    write('apps/svc/project.json', { name: 'svc', tessera: { base: 'python:3.12', content: 'outputs' } });
    write('libs/models/project.json', { name: 'models', tessera: { content: 'outputs' } });
    const results = await infer(['apps/svc/project.json', 'libs/models/project.json']);
    const svc = results['apps/svc/project.json'].projects!['apps/svc'];
    expect(svc.metadata).toEqual({ tessera: { base: 'python:3.12', content: 'outputs' } });
    expect(svc.targets!.image.options).toEqual({});
    expect(svc.targets!.image.dependsOn).toEqual(['^image', 'build', '^build']);
    expect(results['libs/models/project.json'].projects!['libs/models']).toEqual({ metadata: { tessera: { content: 'outputs' } } });
  });

  it('ignores a Dockerfile outside any project and projects without image configuration', async () => {
    write('docker/Dockerfile', 'FROM scratch\n');
    write('libs/plain/project.json', { name: 'plain' });
    const results = await infer(['docker/Dockerfile', 'libs/plain/project.json']);
    expect(results['docker/Dockerfile']).toEqual({});
    expect(results['libs/plain/project.json']).toEqual({});
  });

  it('is exported as createNodesV2 for Nx 22', () => {
    expect(createNodesV2).toBe(createNodes);
  });
});
