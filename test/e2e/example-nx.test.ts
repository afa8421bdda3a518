import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand, runInRootfs } from '../../tools/images/index';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const example = join(repoRoot, 'examples/polyglot');
const projects = ['busybox-base', 'node-base', 'api', 'worker', 'py-service', 'dotnet-service'];

// The command's own Nx must find its own workspace, whatever Nx task (if any) runs this test.
const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('NX_')));

async function exampleNx(): Promise<Map<string, string>> {
  const { stdout, stderr } = await runCommand('npm', ['run', 'example:nx'], { cwd: repoRoot, env });
  // One summary line per image: "api: built, layers 4/4 rebuilt, oci layout, sha256:…, 0.3 s".
  const statuses = new Map<string, string>();
  for (const match of `${stdout}\n${stderr}`.matchAll(/^([\w-]+): (built|unchanged|failed)\b/gm)) statuses.set(match[1], match[2]);
  return statuses;
}

interface ImageManifest {
  layers: Array<{ digest: string }>;
}

async function taggedManifest(project: string, tag = 'latest'): Promise<ImageManifest> {
  const layout = join(example, 'dist/images', project);
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> };
  const entry = index.manifests.find((manifest) => manifest.annotations?.['org.opencontainers.image.ref.name'] === tag);
  expect(entry, `${project} has a ${tag} tag`).toBeDefined();
  return JSON.parse(await readFile(join(layout, 'blobs/sha256', entry!.digest.slice('sha256:'.length)), 'utf8')) as ImageManifest;
}

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tessera-example-nx-'));
});
afterAll(() => rm(work, { recursive: true, force: true }));

/** `umoci unpack`s the project's layout, then runs the config's command under chroot. */
async function unpackAndRun(project: string): Promise<string> {
  const bundle = join(work, project);
  await runCommand('umoci', ['unpack', '--image', `${join(example, 'dist/images', project)}:latest`, bundle]);
  const spec = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8')) as { process: { args: string[]; env: string[]; cwd: string } };
  return (await runInRootfs(join(bundle, 'rootfs'), spec.process.args, { env: spec.process.env, cwd: spec.process.cwd })).stdout;
}

describe("the README's third command, the main job: npm run example:nx", () => {
  it('builds every image of the polyglot example to OCI layouts with no registry, the images run, and a rerun changes nothing', async () => {
    // A cold start: no earlier layouts and no local cache.
    await rm(join(example, 'dist'), { recursive: true, force: true });
    await rm(join(example, '.tessera'), { recursive: true, force: true });

    const first = await exampleNx();
    expect(Object.fromEntries(first)).toEqual(Object.fromEntries(projects.map((project) => [project, 'built'])));

    // Workspace bases come from the layouts just written: each image starts with its base's layers.
    const busybox = await taggedManifest('busybox-base');
    const node = await taggedManifest('node-base');
    const api = await taggedManifest('api');
    expect(node.layers.slice(0, busybox.layers.length)).toEqual(busybox.layers);
    expect(api.layers.slice(0, node.layers.length)).toEqual(node.layers);
    expect((await taggedManifest('api', '1.4.0')).layers).toEqual(api.layers);
    for (const project of ['py-service', 'dotnet-service']) {
      expect((await taggedManifest(project)).layers.slice(0, busybox.layers.length)).toEqual(busybox.layers);
    }

    // The node binary, its shared libraries and both workspace modules load in the layered image.
    expect(await unpackAndRun('api')).toBe('[format v1] hello from api via greet\n');
    expect(await unpackAndRun('worker')).toBe('[format v1] worker ready\n');
    expect(await unpackAndRun('py-service')).toBe(
      'py-service modules:\napps/py-service/src/py_service/__main__.py\nlibs/py-common/src/py_common/__init__.py\n',
    );
    expect(await unpackAndRun('dotnet-service')).toBe('dotnet-service assemblies:\nData.dll\nDomain.dll\nService.dll\n');
    for (const project of ['busybox-base', 'node-base']) {
      await runCommand('umoci', ['unpack', '--image', `${join(example, 'dist/images', project)}:latest`, join(work, project)]);
    }

    const second = await exampleNx();
    expect(Object.fromEntries(second)).toEqual(Object.fromEntries(projects.map((project) => [project, 'unchanged'])));
  }, 120_000);
});
