import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ExecutorContext } from '@nx/devkit';
import { testGraph } from '../../testing/test-graph';
import imageExecutor, { resolveImageRequest } from './impl';

let workspace: string;
beforeEach(() => {
  workspace = mkdtempSync(join(tmpdir(), 'tessera-nx-executor-'));
});
afterEach(() => rmSync(workspace, { recursive: true, force: true }));

function write(path: string, content: string) {
  mkdirSync(dirname(join(workspace, path)), { recursive: true });
  writeFileSync(join(workspace, path), content);
}

const image = { image: { executor: '@tessera/nx:image' } };
const graph = testGraph(
  {
    api: { root: 'apps/api', targets: image, metadata: { tessera: { base: '127.0.0.1:9/node:22', tags: ['{version}', '{projectName}-{inputsHash}'] } } },
    shared: { root: 'libs/shared' },
  },
  { api: ['shared'] },
);

function context(): ExecutorContext {
  return {
    root: workspace,
    cwd: workspace,
    isVerbose: false,
    projectName: 'api',
    targetName: 'image',
    projectGraph: graph,
    projectsConfigurations: { version: 2, projects: {} },
    nxJsonConfiguration: {},
    taskGraph: {
      roots: [],
      dependencies: {},
      continuousDependencies: {},
      tasks: { 'api:image': { id: 'api:image', target: { project: 'api', target: 'image' }, hash: 'abc123', overrides: {}, outputs: [], parallelism: true } },
    },
  } as unknown as ExecutorContext;
}

describe('image executor', () => {
  it('resolves repository, tags and the layer plan in layered mode', () => {
    write('apps/api/package.json', '{"version":"1.4.0"}');
    const request = resolveImageRequest({ registry: 'reg.local' }, context());
    expect(request).toMatchObject({ projectName: 'api', repository: 'reg.local/api', tags: ['1.4.0', 'api-abc123'], inputsHash: 'abc123' });
    expect(request.plan?.closure).toEqual(['shared', 'api']);
  });

  it('renders commit and branch tags from the git checkout', () => {
    write('apps/api/package.json', '{"version":"1.4.0"}');
    const git = (...args: string[]) => execFileSync('git', args, { cwd: workspace, encoding: 'utf8' }).trim();
    git('init', '-q', '-b', 'feature/tags');
    git('-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-q', '--allow-empty', '-m', 'x');
    // A CI's branch variables would take precedence over git's answer.
    const saved = [process.env.GITHUB_HEAD_REF, process.env.GITHUB_REF_NAME];
    process.env.GITHUB_HEAD_REF = process.env.GITHUB_REF_NAME = '';
    try {
      const request = resolveImageRequest({ registry: 'reg.local', tags: ['{shortCommitSha}', '{branch}'] }, context());
      expect(request.tags).toEqual([git('rev-parse', 'HEAD').slice(0, 7), 'feature-tags']);
    } finally {
      [process.env.GITHUB_HEAD_REF, process.env.GITHUB_REF_NAME] = saved;
      if (saved[0] === undefined) delete process.env.GITHUB_HEAD_REF;
      if (saved[1] === undefined) delete process.env.GITHUB_REF_NAME;
    }
  });

  it('refuses a stale module block and tells to run nx sync', () => {
    write('apps/api/package.json', '{"version":"1.4.0"}');
    write('apps/api/Dockerfile', 'FROM node\n# tessera:modules begin\nCOPY apps/api ./apps/api\n# tessera:modules end\n');
    expect(() => resolveImageRequest({ dockerfile: 'apps/api/Dockerfile' }, context())).toThrow('Run `nx sync`');
  });

  it('reports a failure (and writes image.json) instead of throwing when the build cannot run', async () => {
    write('apps/api/package.json', '{"version":"1.4.0"}');
    // Port 9 on loopback refuses the connection: the base lookup fails fast.
    await expect(imageExecutor({ registry: '127.0.0.1:9', insecureRegistries: ['127.0.0.1:9'] }, context())).resolves.toEqual({ success: false });
    const record = JSON.parse(readFileSync(join(workspace, 'dist/images/api/image.json'), 'utf8'));
    expect(record).toMatchObject({ project: 'api', status: 'failed', repository: '127.0.0.1:9/api' });
    expect(record.error).toContain('127.0.0.1:9');
  });
});

describe('session options', () => {
  it('takes the one platform given, and leaves several to the target (the host is the default)', async () => {
    const { sessionOptions } = await import('./impl');
    expect(sessionOptions({ platforms: ['linux/arm64'] }).platform).toEqual({ os: 'linux', architecture: 'arm64' });
    expect(sessionOptions({ platforms: ['linux/amd64', 'linux/arm64'] }).platform).toBeUndefined();
    expect(sessionOptions({}).platform).toBeUndefined();
  });
});
