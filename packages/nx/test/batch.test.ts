import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExecutorContext, TaskGraph } from '@nx/devkit';
import { pushBusyboxBase } from '../../../tools/images/index';
import { startRegistry, type RunningRegistry } from '../../../tools/registry/registry';
import { testGraph } from '../src/testing/test-graph';
import imageBatchExecutor from '../src/executors/image/batch';

let registry: RunningRegistry;
let workspace: string;

beforeAll(async () => {
  registry = await startRegistry();
  await pushBusyboxBase(registry.host);
  workspace = mkdtempSync(join(tmpdir(), 'tessera-nx-batch-'));
  for (const [path, content] of Object.entries({
    'libs/shared/index.js': 'exports.shared = true;\n',
    'apps/one/main.js': 'console.log(1);\n',
    'apps/two/main.js': 'console.log(2);\n',
    'apps/broken/main.js': 'console.log(3);\n',
    'apps/child/main.js': 'console.log(4);\n',
  })) {
    mkdirSync(dirname(join(workspace, path)), { recursive: true });
    writeFileSync(join(workspace, path), content);
  }
});

afterAll(async () => {
  rmSync(workspace, { recursive: true, force: true });
  await registry.stop();
});

const task = (project: string) => ({ id: `${project}:image`, target: { project, target: 'image' }, overrides: {}, outputs: [], parallelism: true });

describe('batch image executor', () => {
  it('builds independent images despite a failure, skips its dependants, and uploads a shared layer once', async () => {
    const base = `${registry.host}/tessera/busybox:latest`;
    const image = { image: { executor: '@tessera/nx:image' } };
    const graph = testGraph(
      {
        shared: { root: 'libs/shared' },
        one: { root: 'apps/one', targets: image, metadata: { tessera: { base } } },
        two: { root: 'apps/two', targets: image, metadata: { tessera: { base } } },
        broken: { root: 'apps/broken', targets: image, metadata: { tessera: { base: `${registry.host}/does-not-exist:1` } } },
        child: { root: 'apps/child', targets: image, metadata: { tessera: { base: `${registry.host}/broken:latest` } } },
      },
      { one: ['shared'], two: ['shared'], child: ['broken'] },
    );
    const tasks = Object.fromEntries(['one', 'two', 'broken', 'child'].map((name) => [`${name}:image`, task(name)]));
    const taskGraph = {
      roots: ['one:image', 'two:image', 'broken:image'],
      tasks,
      dependencies: { 'one:image': [], 'two:image': [], 'broken:image': [], 'child:image': [{ id: 'broken:image' }] },
      continuousDependencies: {},
    } as unknown as TaskGraph;
    const options = { registry: registry.host, insecureRegistries: [registry.host], cacheDir: join(workspace, '.tessera/cache') };
    const context = { root: workspace, cwd: workspace, isVerbose: false, projectGraph: graph, taskGraph } as unknown as ExecutorContext;
    const offset = registry.log().length;

    const results = await imageBatchExecutor(taskGraph, Object.fromEntries(Object.keys(tasks).map((id) => [id, options])), {}, context);

    expect(results['one:image']).toMatchObject({ success: true, status: 'success' });
    expect(results['two:image']).toMatchObject({ success: true, status: 'success' });
    expect(results['broken:image']).toMatchObject({ success: false, status: 'failure' });
    expect(results['broken:image'].terminalOutput).toContain('does-not-exist');
    expect(results['child:image']).toMatchObject({ success: false, status: 'skipped' });

    const one = JSON.parse(readFileSync(join(workspace, 'dist/images/one/image.json'), 'utf8'));
    const two = JSON.parse(readFileSync(join(workspace, 'dist/images/two/image.json'), 'utf8'));
    const sharedLayer = one.layers.find((layer: { description: string }) => layer.description.startsWith('module shared')).digest;
    expect(two.layers.map((layer: { digest: string }) => layer.digest)).toContain(sharedLayer);
    const uploads = registry.log().slice(offset).match(new RegExp(`PUT /v2/[^ ]+/blobs/uploads/[^ ]*digest=${encodeURIComponent(sharedLayer)}`, 'g')) ?? [];
    expect(uploads).toHaveLength(1);
  });
});
