import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DependencyType, type CreateDependenciesContext, type ProjectConfiguration } from '@nx/devkit';
import { createDependencies } from './dependencies';

let workspace: string;
beforeEach(() => {
  workspace = mkdtempSync(join(tmpdir(), 'tessera-nx-deps-'));
});
afterEach(() => rmSync(workspace, { recursive: true, force: true }));

function write(path: string, content: string) {
  mkdirSync(dirname(join(workspace, path)), { recursive: true });
  writeFileSync(join(workspace, path), content);
}

const imageTarget = { image: { executor: '@tessera/nx:image' } };

function context(projects: Record<string, ProjectConfiguration>, files: Record<string, string[]>): CreateDependenciesContext {
  const projectFileMap = Object.fromEntries(Object.entries(files).map(([name, list]) => [name, list.map((file) => ({ file, hash: '' }))]));
  return {
    projects,
    externalNodes: {},
    nxJsonConfiguration: {},
    fileMap: { projectFileMap, nonProjectFiles: [] },
    filesToProcess: { projectFileMap, nonProjectFiles: [] },
    workspaceRoot: workspace,
  };
}

describe('createDependencies', () => {
  it('links a project to the workspace projects whose images its Dockerfile or base option names', async () => {
    write('apps/base/Dockerfile', 'FROM busybox\n');
    write('apps/api/Dockerfile', 'FROM reg.local/base:1.0 AS runtime\nFROM reg.local/other AS x\nFROM runtime\n');
    write('apps/worker/project.json', '{}');
    const projects: Record<string, ProjectConfiguration> = {
      base: { root: 'apps/base', targets: imageTarget },
      api: { root: 'apps/api', targets: imageTarget },
      worker: { root: 'apps/worker', targets: imageTarget, metadata: { tessera: { base: 'reg.local/custom-api:2' } } },
      'custom-api-owner': { root: 'apps/legacy', targets: imageTarget, metadata: { tessera: { repository: 'reg.local/custom-api' } } },
      lib: { root: 'libs/lib' },
    };
    const dependencies = await createDependencies({ registry: 'reg.local' }, context(projects, {
      base: ['apps/base/Dockerfile'],
      api: ['apps/api/Dockerfile'],
      worker: ['apps/worker/project.json'],
    }));
    expect(dependencies).toEqual([
      { source: 'api', target: 'base', type: DependencyType.static, sourceFile: 'apps/api/Dockerfile' },
      { source: 'worker', target: 'custom-api-owner', type: DependencyType.static, sourceFile: 'apps/worker/project.json' },
    ]);
  });

  it('matches unprefixed repositories when no registry is configured', async () => {
    write('apps/app/Dockerfile', 'FROM --platform=linux/amd64 base:latest\n');
    const projects = { base: { root: 'apps/base', targets: imageTarget }, app: { root: 'apps/app', targets: imageTarget } };
    const dependencies = await createDependencies(undefined, context(projects, { app: ['apps/app/Dockerfile'] }));
    expect(dependencies).toEqual([{ source: 'app', target: 'base', type: DependencyType.static, sourceFile: 'apps/app/Dockerfile' }]);
  });
});
