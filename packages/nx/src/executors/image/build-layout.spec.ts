import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { assembleLayeredImage, BuiltIndex, configPlatform, layerEntriesFromFiles, scratchImage, writeReproducibleLayer } from '@tessera/builder';
import { copyImage, ociLayoutDestination, ociLayoutSource, selectManifest, type ImageConfig, type ImageIndex, type ImageManifest, type RawManifest } from '@tessera/oci';
import { planLayers } from '../../planning/layers';
import { testGraph } from '../../testing/test-graph';
import { buildProjectImage, type ProjectImageRequest } from './build';
import type { ImageExecutorOptions } from './schema';
import { BuildSession } from './session';

// Layered builds into OCI layouts, in process: the base is a two-platform index written to a layout.
let workspace: string;
let session: BuildSession;
beforeEach(() => {
  workspace = mkdtempSync(join(tmpdir(), 'tessera-nx-layout-'));
  session = new BuildSession({ platform: { os: 'linux', architecture: 'amd64' } });
});
afterEach(() => {
  session.close();
  rmSync(workspace, { recursive: true, force: true });
});

function write(path: string, content: string) {
  mkdirSync(dirname(join(workspace, path)), { recursive: true });
  writeFileSync(join(workspace, path), content);
}

/** A base index (amd64 and arm64/v8, each with its own marker layer) in `base-layout`, tagged latest. */
async function writeBaseIndex(): Promise<string> {
  const dir = join(workspace, 'base-layout');
  const blobs = mkdtempSync(join(tmpdir(), 'tessera-nx-base-'));
  try {
    const image = async (architecture: string, variant?: string) => {
      write(`base-src/${architecture}/marker`, architecture);
      const layer = await writeReproducibleLayer(await layerEntriesFromFiles([{ hostPath: join(workspace, `base-src/${architecture}`), imagePath: '/etc/base' }]), {
        outputDir: blobs,
        mtime: new Date(0),
      });
      const base = scratchImage({ os: 'linux', architecture, ...(variant ? { variant } : {}) });
      return assembleLayeredImage(base, [{ description: 'base', written: layer }], { cmd: ['/bin/sh'] }, { created: new Date(0) });
    };
    const images = [await image('amd64'), await image('arm64', 'v8')];
    const index = await BuiltIndex.of(images.map((built) => ({ platform: configPlatform(built.config), image: built })));
    const layout = await ociLayoutDestination(dir);
    await copyImage(index, layout, { tags: ['latest'] });
    await layout.close?.();
  } finally {
    rmSync(blobs, { recursive: true, force: true });
  }
  return dir;
}

const json = <T>(raw: RawManifest): T => JSON.parse(raw.bytes.toString('utf8')) as T;

async function readConfig(layoutDir: string, manifestDigest: string): Promise<ImageConfig> {
  const source = await ociLayoutSource(layoutDir);
  const manifest = json<ImageManifest>(await source.getManifestByDigest(manifestDigest));
  const chunks: Buffer[] = [];
  for await (const chunk of await source.openBlob(manifest.config)) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as ImageConfig;
}

/** The workspace (a project on a library) and the base layout; `run` builds `api` with the given options. */
async function setup() {
  write('libs/shared/index.js', 'exports.shared = 1;\n');
  write('apps/api/main.js', 'require("../../libs/shared");\n');
  const baseDir = await writeBaseIndex();
  const graph = testGraph(
    { api: { root: 'apps/api', metadata: { tessera: { base: 'base:latest' } } }, shared: { root: 'libs/shared' } },
    { api: ['shared'] },
  );
  const request: ProjectImageRequest = {
    projectName: 'api',
    workspaceRoot: workspace,
    repository: 'api',
    tags: ['latest'],
    plan: planLayers(graph, 'api', { runtime: 'node', rootFilesLayer: 'never' }),
    layoutBases: { 'base:latest': baseDir },
  };
  const run = (options: ImageExecutorOptions) =>
    buildProjectImage(request, { push: false, cacheDir: join(workspace, '.tessera/cache'), ...options }, { session, graph, log: () => {} });
  return { run, outputDir: join(workspace, 'dist/images/api') };
}

describe('layered build with several platforms, to an OCI layout', () => {
  it('writes an index over one image per platform, sharing the module layers, and skips it on a rerun', async () => {
    const { run, outputDir } = await setup();
    const options = { platforms: ['linux/amd64', 'linux/arm64'] };
    const report = await run(options);
    expect(report.error).toBeUndefined();
    expect(report.status).toBe('built');
    expect(report.platforms?.map((entry) => entry.platform)).toEqual(['linux/amd64', 'linux/arm64/v8']);

    const layout = await ociLayoutSource(outputDir, 'latest');
    const top = await layout.getManifest();
    expect(top.digest).toBe(report.digest);
    const index = json<ImageIndex>(top);
    expect(index.manifests.map((entry) => entry.digest)).toEqual(report.platforms?.map((entry) => entry.digest));
    const arm64Digest = selectManifest(index, { os: 'linux', architecture: 'arm64' }).digest;
    const amd64 = json<ImageManifest>(await layout.getManifestByDigest(report.platforms![0]!.digest));
    const arm64 = json<ImageManifest>(await layout.getManifestByDigest(arm64Digest));
    // Base layers differ per platform; the appended layers are the same blobs.
    const appended = report.layers.map((layer) => layer.digest);
    expect(appended).toHaveLength(2);
    expect(amd64.layers.slice(1).map((layer) => layer.digest)).toEqual(appended);
    expect(arm64.layers.slice(1).map((layer) => layer.digest)).toEqual(appended);
    expect(amd64.layers[0]!.digest).not.toBe(arm64.layers[0]!.digest);
    // Each config is the base's for its platform, with the project's changes.
    const armConfig = await readConfig(outputDir, arm64Digest);
    expect(armConfig).toMatchObject({ architecture: 'arm64', os: 'linux', variant: 'v8', created: '1970-01-01T00:00:00.000Z' });
    expect(armConfig.config?.WorkingDir).toBe('/app');
    expect(arm64.annotations?.['org.opencontainers.image.base.digest']).toBe(report.platforms![1]!.baseDigest);

    const record = JSON.parse(readFileSync(join(outputDir, 'image.json'), 'utf8'));
    expect(record).toMatchObject({ digest: report.digest, platforms: report.platforms, status: 'built' });

    const again = await run(options);
    expect(again).toMatchObject({ status: 'unchanged', digest: report.digest, platforms: report.platforms });
    expect(JSON.parse(readFileSync(join(outputDir, 'image.json'), 'utf8')).platforms).toEqual(report.platforms);
  });

  it('builds one image (no index) for one platform picked from a multi-platform base', async () => {
    const { run, outputDir } = await setup();
    const report = await run({ platforms: ['linux/arm64'] });
    expect(report.status).toBe('built');
    expect(report.platforms).toBeUndefined();
    const top = await (await ociLayoutSource(outputDir, 'latest')).getManifest();
    expect(top.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect((await readConfig(outputDir, top.digest)).architecture).toBe('arm64');
  });

  it('refuses a platform the base does not have', async () => {
    const { run } = await setup();
    const report = await run({ platforms: ['linux/amd64', 'linux/s390x'] });
    expect(report.status).toBe('failed');
    expect(report.error).toContain('no image for platform linux/s390x');
  });
});

describe('reproducible option in layered mode', () => {
  it('dates config and history at SOURCE_DATE_EPOCH by default, and at build time when false, keeping the layer blobs', async () => {
    const { run, outputDir } = await setup();
    const fixed = await run({ platforms: ['linux/amd64'] });
    const fixedConfig = await readConfig(outputDir, fixed.digest!);
    expect(fixedConfig.created).toBe('1970-01-01T00:00:00.000Z');

    const started = Date.now();
    const dated = await run({ platforms: ['linux/amd64'], reproducible: false });
    expect(dated.status).toBe('built');
    expect(dated.inputHash).not.toBe(fixed.inputHash);
    expect(dated.digest).not.toBe(fixed.digest);
    const datedConfig = await readConfig(outputDir, dated.digest!);
    expect(Date.parse(datedConfig.created!)).toBeGreaterThanOrEqual(started - 1000);
    const appendedHistory = datedConfig.history!.slice(-dated.layers.length);
    expect(appendedHistory.every((entry) => entry.created === datedConfig.created)).toBe(true);
    expect(dated.layers.map((layer) => layer.digest)).toEqual(fixed.layers.map((layer) => layer.digest));
  });
});
