import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExecutorContext, TaskGraph } from '@nx/devkit';
import { formatPlatform } from '@tessera/oci';
import {
  ARM64_MARKER,
  PLATFORM_MARKER_PATH,
  pullAndUnpack,
  pushBusyboxBase,
  pushTwoPlatformBase,
  runCommand,
  runInRootfs,
  skopeoInspect,
  type PushedMultiPlatformImage,
  type UnpackedImage,
} from '../../../tools/images/index';
import { startRegistry, type RunningRegistry } from '../../../tools/registry/registry';
import { testGraph } from '../src/testing/test-graph';
import imageBatchExecutor from '../src/executors/image/batch';
import imageExecutor from '../src/executors/image/impl';
import type { ImageExecutorOptions } from '../src/executors/image/schema';

// Multi-platform layered images against a registry of their own (its access log counts this file's requests only).
let registry: RunningRegistry;
let ociBase: PushedMultiPlatformImage;
let dockerBase: PushedMultiPlatformImage;
let busyboxBase: string;
const workspaces: string[] = [];
const unpacked: UnpackedImage[] = [];

beforeAll(async () => {
  registry = await startRegistry();
  ociBase = await pushTwoPlatformBase(registry.host, 'bases/multi-oci', { format: 'oci' });
  dockerBase = await pushTwoPlatformBase(registry.host, 'bases/multi-docker', { format: 'docker' });
  busyboxBase = (await pushBusyboxBase(registry.host, 'bases/busybox')).reference;
});

afterAll(async () => {
  await Promise.all(unpacked.map((image) => image.remove()));
  for (const dir of workspaces) rmSync(dir, { recursive: true, force: true });
  await registry.stop();
});

const PLATFORMS = ['linux/amd64', 'linux/arm64'];

function newWorkspace(): string {
  const root = mkdtempSync(join(tmpdir(), 'tessera-nx-platforms-'));
  workspaces.push(root);
  for (const [path, content] of Object.entries({
    'libs/shared/index.js': 'exports.greeting = "hello from shared";\n',
    'apps/api/main.js': 'console.log(require("../../libs/shared").greeting);\n',
    'apps/legacy/main.js': 'console.log("legacy");\n',
    'apps/web/index.html': '<p>web</p>\n',
    'apps/web/Dockerfile': `FROM ${busyboxBase}\nCOPY apps/web/index.html /srv/index.html\n`,
    'apps/web/Dockerfile.stages': `FROM ${busyboxBase} AS first\nARG GREETING=unset\nLABEL stage=first greeting=\${GREETING}\nFROM ${busyboxBase} AS second\nLABEL stage=second\n`,
  })) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content);
  }
  return root;
}

function graphFor() {
  const image = { image: { executor: '@tessera/nx:image' } };
  return testGraph(
    {
      shared: { root: 'libs/shared' },
      api: { root: 'apps/api', targets: image, metadata: { tessera: { base: ociBase.reference, runtime: 'node', cmd: ['node', 'apps/api/main.js'] } } },
      legacy: { root: 'apps/legacy', targets: image, metadata: { tessera: { base: dockerBase.reference, runtime: 'node' } } },
      web: { root: 'apps/web', targets: image },
    },
    { api: ['shared'], legacy: ['shared'] },
  );
}

function executorContext(root: string, projectName: string, taskGraph?: TaskGraph): ExecutorContext {
  return {
    root,
    cwd: root,
    isVerbose: false,
    projectName,
    targetName: 'image',
    projectGraph: graphFor(),
    projectsConfigurations: { version: 2, projects: {} },
    nxJsonConfiguration: {},
    taskGraph: taskGraph ?? { roots: [], tasks: {}, dependencies: {}, continuousDependencies: {} },
  } as unknown as ExecutorContext;
}

async function runBatch(root: string, projects: string[], options: ImageExecutorOptions) {
  const task = (project: string) => ({ id: `${project}:image`, target: { project, target: 'image' }, overrides: {}, outputs: [], parallelism: true });
  const tasks = Object.fromEntries(projects.map((name) => [`${name}:image`, task(name)]));
  const taskGraph = {
    roots: Object.keys(tasks),
    tasks,
    dependencies: Object.fromEntries(Object.keys(tasks).map((id) => [id, []])),
    continuousDependencies: {},
  } as unknown as TaskGraph;
  const inputs = Object.fromEntries(Object.keys(tasks).map((id) => [id, options]));
  return imageBatchExecutor(taskGraph, inputs, {}, executorContext(root, projects[0]!, taskGraph));
}

function imageJson(root: string, project: string) {
  return JSON.parse(readFileSync(join(root, 'dist/images', project, 'image.json'), 'utf8'));
}

/** skopeo inspect of the image for linux/<arch> in a multi-platform image (`docker://…` or `oci:…`). */
async function inspectFor(arch: string, transportReference: string, what: 'config' | 'inspect' = 'inspect') {
  const { stdout } = await runCommand('skopeo', [
    '--insecure-policy',
    '--override-arch',
    arch,
    '--override-os',
    'linux',
    'inspect',
    ...(what === 'config' ? ['--config'] : []),
    '--tls-verify=false',
    transportReference,
  ]);
  return JSON.parse(stdout) as Record<string, any>;
}

/** sha256 of the top-level manifest exactly as stored. */
async function rawDigest(transportReference: string): Promise<string> {
  const { stdout } = await runCommand('skopeo', ['--insecure-policy', 'inspect', '--raw', '--tls-verify=false', transportReference]);
  return `sha256:${createHash('sha256').update(stdout.replace(/\n$/, '')).digest('hex')}`;
}

function uploadedDigests(log: string): string[] {
  return [...log.matchAll(/PUT \/v2\/[^ ]+\/blobs\/uploads\/[^ ]*digest=sha256%3A([0-9a-f]{64})/g)].map((match) => `sha256:${match[1]}`);
}

async function unpack(reference: string): Promise<UnpackedImage> {
  const image = await pullAndUnpack(reference);
  unpacked.push(image);
  return image;
}

describe('layered images for several platforms', () => {
  const pushOptions = (): ImageExecutorOptions => ({
    registry: registry.host,
    insecureRegistries: [registry.host],
    platforms: PLATFORMS,
  });

  it('pushes an index per image (OCI, or a Docker list on a Docker base), with shared module layers uploaded once, and skips it on a rerun', async () => {
    const root = newWorkspace();
    const options = { ...pushOptions(), cacheDir: join(root, '.tessera/cache') };
    const offset = registry.log().length;
    const results = await runBatch(root, ['api', 'legacy'], options);
    expect(results['api:image']).toMatchObject({ success: true });
    expect(results['legacy:image']).toMatchObject({ success: true });
    expect(results['api:image']!.terminalOutput).toMatch(/^api: built, layers 3\/3 rebuilt, 2 platforms, [^\n]+ uploaded, sha256:[0-9a-f]{12}, [\d.]+ s$/);

    // The index: both platforms, OCI media types like the base.
    const api = imageJson(root, 'api');
    const apiRef = `${registry.host}/api:latest`;
    const index = await skopeoInspect(apiRef, 'raw');
    expect(index.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    // Entries say what each image's config says (the arm64 stand-in's config names no variant).
    expect(index.manifests.map((entry: any) => entry.platform)).toEqual([
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64' },
    ]);
    expect(api.digest).toBe(await rawDigest(`docker://${apiRef}`));
    expect(api.platforms.map((entry: any) => [entry.platform, entry.digest])).toEqual(index.manifests.map((entry: any) => [formatPlatform(entry.platform), entry.digest]));
    expect(api.platforms.map((entry: any) => entry.baseDigest)).toEqual(ociBase.platforms.map((entry) => entry.digest));

    // Each platform's config is its base's: arm64 from the arm64 base, amd64 from busybox.
    const armConfig = await inspectFor('arm64', `docker://${apiRef}`, 'config');
    expect(armConfig).toMatchObject({ architecture: 'arm64', os: 'linux' });
    expect(Date.parse(armConfig.created)).toBe(0);
    expect(armConfig.config.Cmd).toEqual(['node', 'apps/api/main.js']);
    expect(armConfig.config.WorkingDir).toBe('/app');
    expect((await inspectFor('amd64', `docker://${apiRef}`, 'config')).architecture).toBe('amd64');

    // The module layers are the same blobs on both platforms, and each went up once.
    const children = await Promise.all(api.platforms.map((entry: any) => skopeoInspect(`${registry.host}/api@${entry.digest}`, 'raw')));
    const appended = api.layers.map((layer: any) => layer.digest);
    for (const child of children) expect(child.layers.slice(-appended.length).map((layer: any) => layer.digest)).toEqual(appended);
    const uploads = uploadedDigests(registry.log().slice(offset));
    for (const digest of appended) expect(uploads.filter((uploaded) => uploaded === digest)).toHaveLength(1);
    // The shared library's layer is also legacy's (mounted, not uploaded again).
    const sharedLayer = api.layers.find((layer: any) => layer.description.startsWith('module shared')).digest;
    expect(imageJson(root, 'legacy').layers.map((layer: any) => layer.digest)).toContain(sharedLayer);

    // A Docker base gives a Docker manifest list of Docker manifests.
    const legacyIndex = await skopeoInspect(`${registry.host}/legacy:latest`, 'raw');
    expect(legacyIndex.mediaType).toBe('application/vnd.docker.distribution.manifest.list.v2+json');
    expect(legacyIndex.manifests.map((entry: any) => entry.mediaType)).toEqual([
      'application/vnd.docker.distribution.manifest.v2+json',
      'application/vnd.docker.distribution.manifest.v2+json',
    ]);
    expect((await inspectFor('arm64', `docker://${registry.host}/legacy:latest`)).Architecture).toBe('arm64');

    // The amd64 image runs; the arm64 one holds the stand-in's marker under the same module files.
    const amd64 = await unpack(`${registry.host}/api@${api.platforms[0].digest}`);
    const run = await runInRootfs(amd64.rootfs, ['/bin/sh', '-c', 'uname -m; cat libs/shared/index.js'], { env: amd64.process.env, cwd: '/app' });
    expect(run.stdout).toBe(`x86_64\n${readFileSync(join(root, 'libs/shared/index.js'), 'utf8')}`);
    const arm64 = await unpack(`${registry.host}/api@${api.platforms[1].digest}`);
    expect(await readFile(join(arm64.rootfs, PLATFORM_MARKER_PATH), 'utf8')).toBe(ARM64_MARKER);
    expect(await readFile(join(arm64.rootfs, 'app/apps/api/main.js'), 'utf8')).toBe(readFileSync(join(root, 'apps/api/main.js'), 'utf8'));

    // Rerun: unchanged by the index digest, no blob uploaded, a few requests per image.
    const rerunOffset = registry.log().length;
    const again = await runBatch(root, ['api', 'legacy'], options);
    expect(again['api:image']!.terminalOutput).toMatch(/^api: unchanged, layers 0\/3 rebuilt, 2 platforms, 0 B uploaded, /);
    expect(again['legacy:image']!.terminalOutput).toContain('legacy: unchanged');
    const rerunLog = registry.log().slice(rerunOffset);
    expect(uploadedDigests(rerunLog)).toEqual([]);
    expect(rerunLog.match(/"(GET|HEAD|PUT|POST|PATCH|DELETE) \/v2\//g)?.length ?? 0).toBeLessThanOrEqual(6);
    expect(imageJson(root, 'api')).toMatchObject({ status: 'unchanged', digest: api.digest, platforms: api.platforms });
  });

  it('writes the index to an OCI layout with push off, which skopeo and umoci read', async () => {
    const root = newWorkspace();
    const options: ImageExecutorOptions = { push: false, insecureRegistries: [registry.host], platforms: PLATFORMS, cacheDir: join(root, '.tessera/cache') };
    await expect(imageExecutor(options, executorContext(root, 'api'))).resolves.toEqual({ success: true });
    const layout = join(root, 'dist/images/api');
    const record = imageJson(root, 'api');
    const raw = await runCommand('skopeo', ['--insecure-policy', 'inspect', '--raw', `oci:${layout}:latest`]);
    const index = JSON.parse(raw.stdout);
    expect(index.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(index.manifests.map((entry: any) => entry.digest)).toEqual(record.platforms.map((entry: any) => entry.digest));
    const layoutIndex = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
    expect(layoutIndex.manifests).toEqual([expect.objectContaining({ digest: record.digest, mediaType: 'application/vnd.oci.image.index.v1+json' })]);
    expect((await inspectFor('arm64', `oci:${layout}:latest`)).Architecture).toBe('arm64');

    // umoci lists the tag, and unpacks the amd64 image once skopeo picked it from the index.
    expect((await runCommand('umoci', ['ls', '--layout', layout])).stdout.trim()).toBe('latest');
    const picked = join(root, 'picked');
    await runCommand('skopeo', ['--insecure-policy', '--override-arch', 'amd64', 'copy', '--quiet', `oci:${layout}:latest`, `oci:${picked}:amd64`]);
    await runCommand('umoci', ['unpack', '--image', `${picked}:amd64`, join(root, 'bundle')]);
    const run = await runInRootfs(join(root, 'bundle/rootfs'), ['/bin/cat', '/app/apps/api/main.js']);
    expect(run.stdout).toBe(readFileSync(join(root, 'apps/api/main.js'), 'utf8'));

    await expect(imageExecutor(options, executorContext(root, 'api'))).resolves.toEqual({ success: true });
    expect(imageJson(root, 'api')).toMatchObject({ status: 'unchanged', digest: record.digest, platforms: record.platforms });
  });

  it('refuses several platforms for a Dockerfile image, in one line that says why', async () => {
    const root = newWorkspace();
    const options = { ...pushOptions(), cacheDir: join(root, '.tessera/cache'), dockerfile: 'apps/web/Dockerfile' };
    await expect(imageExecutor(options, executorContext(root, 'web'))).resolves.toEqual({ success: false });
    const error: string = imageJson(root, 'web').error;
    expect(error).not.toContain('\n');
    expect(error).toMatch(/RUN .*emulation/);
  });

  it("dates a Dockerfile image's history at build time with reproducible false, and at SOURCE_DATE_EPOCH by default", async () => {
    const root = newWorkspace();
    const base = { push: false, insecureRegistries: [registry.host], cacheDir: join(root, '.tessera/cache'), dockerfile: 'apps/web/Dockerfile' };
    // The builder dates the config and the history entries of the instructions it runs.
    const copyCreated = async () => {
      const { stdout } = await runCommand('skopeo', ['--insecure-policy', 'inspect', '--config', `oci:${join(root, 'dist/images/web')}:latest`]);
      const history = (JSON.parse(stdout) as { history: { created: string; created_by?: string }[] }).history;
      return history.find((entry) => entry.created_by?.includes('COPY'))!.created;
    };
    await expect(imageExecutor(base, executorContext(root, 'web'))).resolves.toEqual({ success: true });
    expect(Date.parse(await copyCreated())).toBe(0);
    const first = imageJson(root, 'web');
    const started = Date.now();
    await expect(imageExecutor({ ...base, reproducible: false }, executorContext(root, 'web'))).resolves.toEqual({ success: true });
    expect(imageJson(root, 'web')).toMatchObject({ status: 'built' });
    expect(imageJson(root, 'web').inputHash).not.toBe(first.inputHash);
    expect(Date.parse(await copyCreated())).toBeGreaterThanOrEqual(started - 1000);
  });

  it('passes buildArgs and target to a Dockerfile build, and both are inputs of the image', async () => {
    const root = newWorkspace();
    const base = { push: false, insecureRegistries: [registry.host], cacheDir: join(root, '.tessera/cache'), dockerfile: 'apps/web/Dockerfile.stages' };
    const labels = async () => {
      const { stdout } = await runCommand('skopeo', ['--insecure-policy', 'inspect', '--config', `oci:${join(root, 'dist/images/web')}:latest`]);
      return (JSON.parse(stdout) as { config: { Labels?: Record<string, string> } }).config.Labels;
    };
    await expect(imageExecutor(base, executorContext(root, 'web'))).resolves.toEqual({ success: true });
    expect(await labels()).toMatchObject({ stage: 'second' });
    const last = imageJson(root, 'web').inputHash;
    await expect(imageExecutor({ ...base, target: 'first', buildArgs: { GREETING: 'hello' } }, executorContext(root, 'web'))).resolves.toEqual({ success: true });
    expect(await labels()).toMatchObject({ stage: 'first', greeting: 'hello' });
    const first = imageJson(root, 'web');
    expect(first).toMatchObject({ status: 'built' });
    expect(first.inputHash).not.toBe(last);
    await expect(imageExecutor({ ...base, target: 'first', buildArgs: { GREETING: 'bye' } }, executorContext(root, 'web'))).resolves.toEqual({ success: true });
    expect(await labels()).toMatchObject({ stage: 'first', greeting: 'bye' });
    expect(imageJson(root, 'web').inputHash).not.toBe(first.inputHash);
  });

  it('takes the repository from the target option first', async () => {
    const root = newWorkspace();
    await expect(imageExecutor({ ...pushOptions(), repository: `${registry.host}/custom/place` }, executorContext(root, 'api'))).resolves.toEqual({ success: true });
    const record = imageJson(root, 'api');
    expect(record.repository).toBe(`${registry.host}/custom/place`);
    expect((await skopeoInspect(`${registry.host}/custom/place:latest`, 'raw')).manifests).toHaveLength(2);
  });
});
