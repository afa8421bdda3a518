import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileHashMemo } from '@tessera/builder';
import { planLayers } from '../../planning/layers';
import { testGraph } from '../../testing/test-graph';
import { concreteLayers, type ConcreteLayer } from './layer-sources';

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'tessera-layer-sources-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

function write(files: Record<string, string>): void {
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
}

const imagePaths = (layer: ConcreteLayer) => layer.files.map((file) => file.imagePath);

describe('concreteLayers, .NET', () => {
  const graph = testGraph(
    {
      service: { root: 'apps/service', metadata: { tessera: { base: 'aspnet:8', runtime: 'dotnet', publishDir: 'dist/apps/service', workdir: '/srv' } } },
      domain: {},
      data: {},
    },
    { service: ['data', 'domain'], data: ['domain'] },
  );
  const assemblies: Record<string, string> = { service: 'Service', domain: 'Domain', data: 'Data' };
  const plan = () => planLayers(graph, 'service', { assemblyName: (project) => assemblies[project.name] });
  const publish = (overrides: Record<string, string> = {}) =>
    write(
      Object.fromEntries(
        Object.entries({
          'Service.dll': 'service v1',
          'Service.deps.json': '{}',
          'Service.runtimeconfig.json': '{}',
          'appsettings.json': '{}',
          'Domain.dll': 'domain v1',
          'Domain.pdb': 'pdb',
          'Data.dll': 'data v1',
          'Newtonsoft.Json.dll': 'nuget',
          'runtimes/linux-x64/native/libgit2.so': 'native',
          ...overrides,
        }).map(([file, text]) => [`dist/apps/service/${file}`, text]),
      ),
    );

  it('splits the publish output: NuGet layer, one layer per workspace assembly, the app, all flat at the workdir', async () => {
    publish();
    const layers = await concreteLayers(plan(), graph, root, undefined);
    expect(layers.map((layer) => layer.description)).toEqual([
      'third-party nuget (dist/apps/service)',
      'module domain (assembly Domain)',
      'module data (assembly Data)',
      'project service (assembly Service)',
    ]);
    expect(layers.map(imagePaths)).toEqual([
      ['/srv/Newtonsoft.Json.dll', '/srv/runtimes/linux-x64/native/libgit2.so'],
      ['/srv/Domain.dll', '/srv/Domain.pdb'],
      ['/srv/Data.dll'],
      ['/srv/Service.deps.json', '/srv/Service.dll', '/srv/Service.runtimeconfig.json', '/srv/appsettings.json'],
    ]);
    expect(layers[1].files[0].hostPath).toBe(join(root, 'dist/apps/service/Domain.dll'));
  });

  it('changes only the changed assembly layer hash when one library changes', async () => {
    publish();
    const before = await concreteLayers(plan(), graph, root, undefined);
    publish({ 'Data.dll': 'data v2' });
    const after = await concreteLayers(plan(), graph, root, undefined);
    expect(after.map((layer, index) => layer.hash === before[index].hash)).toEqual([true, true, false, true]);
  });

  it('says what is missing when the publish output or an assembly is absent', async () => {
    await expect(concreteLayers(plan(), graph, root, undefined)).rejects.toThrow(/publish output dist\/apps\/service does not exist/);
    publish();
    rmSync(join(root, 'dist/apps/service/Data.dll'));
    await expect(concreteLayers(plan(), graph, root, undefined)).rejects.toThrow(/module data \(assembly Data\): dist\/apps\/service has no Data\.dll/);
  });
});

describe('concreteLayers, Python', () => {
  // One Python app whose site-packages is its third-party layer, the plan's first.
  const jobGraph = testGraph(
    { job: { root: 'apps/job', metadata: { tessera: { base: 'python:3.12', runtime: 'python', pythonPackagesDir: 'apps/job/site-packages' } } } },
    {},
  );
  /** The job's third-party layer hash, through a stat memo stored in `memoFile` when one is given. */
  async function jobThirdPartyHash(memoFile?: string): Promise<string> {
    const memo = memoFile ? await FileHashMemo.load(memoFile) : undefined;
    const [layer] = await concreteLayers(planLayers(jobGraph, 'job'), jobGraph, root, { job: [{ file: 'apps/job/main.py', hash: 'h' }] }, { memo });
    await memo?.save();
    return layer.hash;
  }

  it('takes the configured packages directory as the third-party layer', async () => {
    write({ 'apps/job/site-packages/six.py': 'six', 'apps/job/main.py': 'print(1)' });
    const [thirdParty] = await concreteLayers(planLayers(jobGraph, 'job'), jobGraph, root, { job: [{ file: 'apps/job/main.py', hash: 'h' }] });
    expect(thirdParty.description).toBe('third-party python (apps/job/site-packages)');
    expect(thirdParty.files).toEqual([{ hostPath: join(root, 'apps/job/site-packages'), imagePath: '/app/apps/job/site-packages' }]);
  });

  it('walks a tree once per run when several images take a layer from it', async () => {
    const graph = testGraph(
      {
        job: { root: 'apps/job', metadata: { tessera: { base: 'python:3.12', runtime: 'python', pythonPackagesDir: 'third_party/site-packages' } } },
        batch: { root: 'apps/batch', metadata: { tessera: { base: 'python:3.12', runtime: 'python', pythonPackagesDir: 'third_party/site-packages' } } },
      },
      {},
    );
    write({ 'third_party/site-packages/six.py': 'six', 'apps/job/main.py': 'print(1)', 'apps/batch/main.py': 'print(2)' });
    const files = { job: [{ file: 'apps/job/main.py', hash: 'h' }], batch: [{ file: 'apps/batch/main.py', hash: 'h' }] };
    const shared = new Map<string, Promise<string>>();
    const [forJob] = await concreteLayers(planLayers(graph, 'job'), graph, root, files, { shared });
    expect(shared.size).toBe(1);
    // A change after the run's first look is not seen by the same run (one snapshot), but is by the next.
    write({ 'third_party/site-packages/six.py': 'seven' });
    const [forBatch] = await concreteLayers(planLayers(graph, 'batch'), graph, root, files, { shared });
    expect(forBatch.hash).toBe(forJob.hash);
    const [nextRun] = await concreteLayers(planLayers(graph, 'batch'), graph, root, files, { shared: new Map() });
    expect(nextRun.hash).not.toBe(forJob.hash);
  });

  it('hashes third-party files through the stat memo: unchanged files are not read, rewritten ones are', async () => {
    write({ 'apps/job/site-packages/six.py': 'six', 'apps/job/main.py': 'print(1)' });
    const memoFile = join(root, 'memo.json');
    const thirdPartyHash = () => jobThirdPartyHash(memoFile);
    const plain = await jobThirdPartyHash();
    expect(await thirdPartyHash()).toBe(plain);
    // An unchanged tree is answered whole from its remembered walk: a planted result shows.
    const walksFile = join(root, 'memo.walks.json');
    const walks = JSON.parse(readFileSync(walksFile, 'utf8')) as Record<string, string>;
    expect(Object.values(walks)).toContain(plain);
    writeFileSync(walksFile, JSON.stringify(Object.fromEntries(Object.keys(walks).map((key) => [key, 'planted-tree']))));
    expect(await thirdPartyHash()).toBe('planted-tree');
    rmSync(walksFile);
    // Without it, the per-file memo answers for an unchanged file: a different remembered hash shows in the layer hash.
    const stored = JSON.parse(readFileSync(memoFile, 'utf8')) as Record<string, string>;
    writeFileSync(memoFile, JSON.stringify(Object.fromEntries(Object.entries(stored).map(([path, value]) => [path, `${value.split(' ')[0]} 0123456789abcdef`]))));
    expect(await thirdPartyHash()).not.toBe(plain);
    rmSync(walksFile);
    // A rewritten file has a new stat (ctime at least), so it is read and hashed again.
    write({ 'apps/job/site-packages/six.py': 'six' });
    expect(await thirdPartyHash()).toBe(plain);
  });

  it('answers an unchanged big third-party tree from its find listing, and sees a same-size rewrite deep in it', async () => {
    // Enough subdirectories (LISTED_TREE_MIN_SUBDIRECTORIES) for find to list the tree.
    write(Object.fromEntries(Array.from({ length: 70 }, (_, i) => [`apps/job/site-packages/pkg${i}/__init__.py`, `v = ${i % 10}`])));
    write({ 'apps/job/main.py': 'print(1)' });
    const memoFile = join(root, 'memo.json');
    const walksFile = join(root, 'memo.walks.json');
    const thirdPartyHash = () => jobThirdPartyHash(memoFile);
    const plain = await jobThirdPartyHash();
    expect(await thirdPartyHash()).toBe(plain);
    const walks = JSON.parse(readFileSync(walksFile, 'utf8')) as Record<string, string>;
    writeFileSync(walksFile, JSON.stringify(Object.fromEntries(Object.keys(walks).map((key) => [key, 'planted-tree']))));
    // The listing starts below the tree's root, whose own times are not content: a Node walk's key would change here.
    utimesSync(join(root, 'apps/job/site-packages'), new Date(1e12), new Date(1e12));
    expect(await thirdPartyHash()).toBe('planted-tree');
    write({ 'apps/job/site-packages/pkg42/__init__.py': 'v = 9' });
    const changed = await thirdPartyHash();
    expect(changed).not.toBe('planted-tree');
    expect(changed).not.toBe(plain);
    expect(changed).toBe(await jobThirdPartyHash());
  });
});
