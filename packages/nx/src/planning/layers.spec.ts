import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { planLayers } from './layers';
import { testGraph } from '../testing/test-graph';

describe('planLayers', () => {
  const graph = testGraph(
    {
      api: { root: 'apps/api', metadata: { js: { packageName: 'api' }, tessera: { base: 'node:22-slim', content: 'outputs' } } },
      util: {},
      models: { metadata: { tessera: { content: 'outputs', outputPath: 'build/models' } } },
    },
    {
      api: ['models', 'npm:express', 'npm:vitest'],
      models: ['util', 'npm:zod'],
      util: ['npm:zod@3.0.0'],
      'npm:express': ['npm:debug'],
    },
    {
      'npm:express': { packageName: 'express', version: '4.19.0' },
      'npm:debug': { packageName: 'debug', version: '2.6.9' },
      'npm:zod': { packageName: 'zod', version: '3.23.0' },
      'npm:zod@3.0.0': { packageName: 'zod', version: '3.0.0' },
      'npm:vitest': { packageName: 'vitest', version: '3.0.0' },
    },
  );

  it('plans third-party, root files, modules in topological order, then the project', () => {
    const plan = planLayers(graph, 'api', { excludePackages: ['vitest'], rootFiles: ['package-lock.json', 'package.json'] });
    expect(plan).toEqual({
      project: 'api',
      base: 'node:22-slim',
      workdir: '/app',
      runtime: 'node',
      closure: ['util', 'models', 'api'],
      layers: [
        {
          kind: 'third-party',
          runtime: 'node',
          destination: '/app/node_modules',
          packages: [
            { name: 'debug', version: '2.6.9', path: 'node_modules/debug' },
            { name: 'express', version: '4.19.0', path: 'node_modules/express' },
            { name: 'zod', version: '3.0.0' },
            { name: 'zod', version: '3.23.0', path: 'node_modules/zod' },
          ],
        },
        { kind: 'root-files', files: ['package-lock.json', 'package.json'], destination: '/app' },
        { kind: 'module', project: 'util', content: 'sources', sourcePath: 'libs/util', destination: '/app/libs/util' },
        { kind: 'module', project: 'models', content: 'outputs', sourcePath: 'build/models', destination: '/app/build/models' },
        { kind: 'project', project: 'api', content: 'outputs', sourcePath: 'dist/apps/api', destination: '/app/dist/apps/api' },
      ],
    });
  });

  it('lets options override content, workdir and base, and leaves out the root-files layer without modules', () => {
    const plan = planLayers(graph, 'util', { base: 'busybox', workdir: '/srv/', runtime: 'node', content: { util: 'outputs' } });
    expect(plan.base).toBe('busybox');
    expect(plan.layers.map((layer) => layer.kind)).toEqual(['third-party', 'project']);
    expect(plan.layers[1]).toMatchObject({ sourcePath: 'dist/libs/util', destination: '/srv/dist/libs/util' });
  });

  it('plans Python and .NET third-party layers from configured directories', () => {
    const python = testGraph(
      { svc: { root: 'apps/svc', metadata: { tessera: { base: 'python:3.12', runtime: 'python', pythonPackagesDir: 'apps/svc/.venv' } } } },
      {},
    );
    expect(planLayers(python, 'svc').layers[0]).toEqual({
      kind: 'third-party',
      runtime: 'python',
      sourcePath: 'apps/svc/.venv',
      destination: '/app/apps/svc/.venv',
    });
    const dotnet = testGraph(
      { web: { root: 'apps/web', metadata: { tessera: { base: 'aspnet:8', runtime: 'dotnet', publishDir: 'dist/apps/web' } } } },
      {},
    );
    expect(planLayers(dotnet, 'web', { assemblyName: () => 'Web' }).layers[0]).toEqual({
      kind: 'third-party',
      runtime: 'dotnet',
      sourcePath: 'dist/apps/web',
      destination: '/app',
      assemblies: 'nuget',
    });
  });

  describe('.NET publish split', () => {
    const dotnet = testGraph(
      {
        web: { root: 'apps/web', metadata: { tessera: { base: 'aspnet:8', runtime: 'dotnet', publishDir: 'apps/web/bin/publish/' } } },
        domain: {},
        data: {},
        protos: {},
      },
      { web: ['data', 'protos'], data: ['domain'] },
    );
    const assemblies: Record<string, string> = { web: 'Acme.Web', domain: 'Acme.Domain', data: 'Acme.Data' };
    const assemblyName = (project: { name: string }) => assemblies[project.name];

    it('gives each .NET project of the closure its assembly layer at the workdir, after the NuGet layer', () => {
      const plan = planLayers(dotnet, 'web', { assemblyName });
      expect(plan.dotnet).toEqual({
        publishDir: 'apps/web/bin/publish',
        assemblies: [
          { project: 'domain', assembly: 'Acme.Domain' },
          { project: 'data', assembly: 'Acme.Data' },
          { project: 'web', assembly: 'Acme.Web' },
        ],
      });
      expect(plan.layers).toEqual([
        { kind: 'third-party', runtime: 'dotnet', sourcePath: 'apps/web/bin/publish', destination: '/app', assemblies: 'nuget' },
        { kind: 'module', project: 'domain', content: 'assembly', assembly: 'Acme.Domain', sourcePath: 'apps/web/bin/publish', destination: '/app' },
        { kind: 'module', project: 'data', content: 'assembly', assembly: 'Acme.Data', sourcePath: 'apps/web/bin/publish', destination: '/app' },
        // Not a .NET project: layered from its sources as usual.
        { kind: 'module', project: 'protos', content: 'sources', sourcePath: 'libs/protos', destination: '/app/libs/protos' },
        { kind: 'project', project: 'web', content: 'assembly', assembly: 'Acme.Web', sourcePath: 'apps/web/bin/publish', destination: '/app' },
      ]);
    });

    it('reads assembly names from the project files by default', () => {
      const root = mkdtempSync(join(tmpdir(), 'tessera-plan-dotnet-'));
      try {
        for (const [dir, file, text] of [
          ['apps/web', 'Web.csproj', '<Project><PropertyGroup><AssemblyName>Acme.Web</AssemblyName></PropertyGroup></Project>'],
          ['libs/domain', 'Domain.csproj', '<Project />'],
          ['libs/data', 'Data.fsproj', '<Project />'],
        ]) {
          mkdirSync(join(root, dir), { recursive: true });
          writeFileSync(join(root, dir, file), text);
        }
        const plan = planLayers(dotnet, 'web', { workspaceRoot: root });
        expect(plan.dotnet?.assemblies.map((entry) => entry.assembly)).toEqual(['Domain', 'Data', 'Acme.Web']);
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    });

    it('refuses a publishDir on a project without a project file', () => {
      expect(() => planLayers(dotnet, 'web', { assemblyName: () => undefined })).toThrow(/no \.csproj/);
    });
  });

  it('requires a base image', () => {
    expect(() => planLayers(graph, 'util')).toThrow('has no base image');
  });
});
