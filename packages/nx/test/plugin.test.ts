import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// Real Nx loads the built plugin in a throwaway workspace.
const repoRoot = resolve(__dirname, '../../..');
const bin = join(repoRoot, 'node_modules/.bin');
let workspace: string;

function write(path: string, content: string) {
  mkdirSync(dirname(join(workspace, path)), { recursive: true });
  writeFileSync(join(workspace, path), content);
}

function nx(...args: string[]): string {
  return execFileSync(join(bin, 'nx'), args, {
    cwd: workspace,
    encoding: 'utf8',
    env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, NX_DAEMON: 'false', NX_NO_CLOUD: 'true', NX_TUI: 'false' },
  });
}

beforeAll(() => {
  execFileSync(join(bin, 'tsc'), ['-b', 'packages/nx'], { cwd: repoRoot, env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
  workspace = mkdtempSync(join(tmpdir(), 'tessera-nx-ws-'));
  symlinkSync(join(repoRoot, 'node_modules'), join(workspace, 'node_modules'));
  write('package.json', '{"name":"ws","private":true}');
  write('nx.json', JSON.stringify({ plugins: [{ plugin: join(repoRoot, 'packages/nx/dist/plugins/plugin.js'), options: { registry: 'reg.local' } }] }));
  write('apps/base/project.json', '{"name":"base"}');
  write('apps/base/Dockerfile', 'FROM busybox\n');
  write('libs/shared/project.json', '{"name":"shared"}');
  write('apps/api/project.json', '{"name":"api","implicitDependencies":["shared"]}');
  write('apps/api/Dockerfile', 'FROM reg.local/base:1\n# tessera:modules begin\n# tessera:modules end\n');
  execFileSync('git', ['init', '-q', '.'], { cwd: workspace });
}, 180_000);

afterAll(() => rmSync(workspace, { recursive: true, force: true }));

describe('plugin in a real Nx workspace', () => {
  it('infers the image target and links the project to its base image project', () => {
    const api = JSON.parse(nx('show', 'project', 'api', '--json'));
    expect(api.targets.image).toMatchObject({
      executor: '@tessera/nx:image',
      options: { registry: 'reg.local', dockerfile: 'apps/api/Dockerfile' },
      syncGenerators: ['@tessera/nx:sync'],
      cache: false,
    });
    expect(JSON.parse(nx('show', 'project', 'shared', '--json')).targets ?? {}).not.toHaveProperty('image');

    nx('graph', `--file=${join(workspace, 'graph.json')}`);
    const graph = JSON.parse(readFileSync(join(workspace, 'graph.json'), 'utf8'));
    expect(graph.graph.dependencies.api).toContainEqual({ source: 'api', target: 'base', type: 'static' });
  });
});

describe('start-up', () => {
  it("loads the plugin and the image executors without @nx/devkit's index, which would load most of Nx in each process", () => {
    const dist = join(repoRoot, 'packages/nx/dist');
    const modules = ['plugins/plugin.js', 'executors/image/impl.js', 'executors/image/batch.js'].map((file) => join(dist, file));
    const script = `for (const m of ${JSON.stringify(modules)}) require(m); console.log(JSON.stringify(Object.keys(require.cache)))`;
    const loaded = JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: repoRoot, encoding: 'utf8' })) as string[];
    expect(loaded.filter((path) => path.includes('/packages/nx/dist/')).length).toBeGreaterThan(3);
    expect(loaded.filter((path) => /[/]@nx[/]devkit[/]/.test(path))).toEqual([]);
  });
});
