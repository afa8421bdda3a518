import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pullAndUnpack, pushBusyboxBase, pushNodeRuntimeBase, runInRootfs, skopeoInspect } from '../tools/images/index';
import { startRegistry, type RunningRegistry } from '../tools/registry/registry';

// The polyglot fixture, built by real Nx with the packed @tessera packages, against a real registry.
const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const fixture = join(repoRoot, 'test/fixtures/polyglot');
const repoModules = join(repoRoot, 'node_modules');
const tesseraPackages = ['oci', 'builder', 'nx'];
const allImages = ['node-base', 'api', 'worker', 'py-service', 'py-batch', 'dotnet-service'];
// py-batch's site-packages: gitignored, so each checkout "installs" it, as pip would.
const pythonPackagesDir = 'apps/py-batch/.venv/lib/python3.12/site-packages';
const pythonPackages: Record<string, string> = {
  'six.py': '__version__ = "1.16.0"\n',
  'six-1.16.0.dist-info/METADATA': 'Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\n',
  'six-1.16.0.dist-info/RECORD': 'six.py,,\n',
};

let registry: RunningRegistry;
let packDir: string;
const workspaces: string[] = [];

interface ImageRecord {
  project: string;
  status: string;
  repository: string;
  tags: string[];
  digest: string;
  inputHash: string;
  layers: Array<{ description: string; digest: string; size: number; rebuilt: boolean }>;
}

/**
 * Runs a program and collects its output, whatever its exit status. Asynchronous on purpose: the test's
 * event loop must keep reading the registry's log pipe, or the registry blocks writing its access log.
 */
function run(program: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<{ status: number | null; output: string }> {
  const child = spawn(program, args, {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      PATH: `${join(repoModules, '.bin')}:${process.env.PATH}`,
      NX_DAEMON: 'false',
      NX_NO_CLOUD: 'true',
      NX_TUI: 'false',
      NX_SKIP_NX_CACHE: 'true',
      FORCE_COLOR: '0',
      GIT_AUTHOR_NAME: 'Tessera Test',
      GIT_AUTHOR_EMAIL: 'test@tessera.invalid',
      GIT_COMMITTER_NAME: 'Tessera Test',
      GIT_COMMITTER_EMAIL: 'test@tessera.invalid',
      ...env,
    },
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, output }));
  });
}

async function mustRun(program: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<string> {
  const result = await run(program, args, cwd, env);
  if (result.status !== 0) throw new Error(`${program} ${args.join(' ')} failed (${result.status}):\n${result.output}`);
  return result.output;
}

const nx = (workspace: string, ...args: string[]) => run(process.execPath, [join(workspace, 'node_modules/nx/dist/bin/nx.js'), ...args], workspace);
const git = (workspace: string, ...args: string[]) => mustRun('git', args, workspace);

/** The third-party packages the fixture's own lockfile installs (`node_modules/<name>` entries that are not workspace links). */
function lockedPackages(workspace: string): string[] {
  const lock = JSON.parse(readFileSync(join(workspace, 'package-lock.json'), 'utf8')) as { packages: Record<string, { link?: boolean }> };
  return Object.entries(lock.packages)
    .filter(([path, entry]) => path.startsWith('node_modules/') && !entry.link)
    .map(([path]) => path.slice('node_modules/'.length));
}

/**
 * node_modules of a fixture workspace: the packed @tessera tarballs unpacked (as npm would install
 * them), the fixture's locked packages copied (their layer must hold real files), everything else linked
 * to the repository's installed packages (offline), and the workspace packages linked as npm workspaces link them.
 */
async function installModules(workspace: string): Promise<void> {
  const modules = join(workspace, 'node_modules');
  mkdirSync(modules, { recursive: true });
  const locked = new Set(lockedPackages(workspace));
  for (const name of locked) cpSync(join(repoModules, name), join(modules, name), { recursive: true });
  for (const name of readdirSync(repoModules)) {
    if (name === '@tessera' || name === '.bin' || name.startsWith('.') || locked.has(name)) continue;
    symlinkSync(join(repoModules, name), join(modules, name));
  }
  for (const name of tesseraPackages) {
    const target = join(modules, '@tessera', name);
    mkdirSync(target, { recursive: true });
    const tarball = readdirSync(packDir).find((file) => file.startsWith(`tessera-${name}-`))!;
    await mustRun('tar', ['xzf', join(packDir, tarball), '-C', target, '--strip-components=1'], workspace);
  }
  mkdirSync(join(modules, '@poly'), { recursive: true });
  for (const [name, dir] of [['api', 'apps/api'], ['worker', 'apps/worker'], ['greet', 'libs/greet'], ['format', 'libs/format']]) {
    symlinkSync(relative(join(modules, '@poly'), join(workspace, dir)), join(modules, '@poly', name));
  }
  for (const [file, text] of Object.entries(pythonPackages)) {
    mkdirSync(dirname(join(workspace, pythonPackagesDir, file)), { recursive: true });
    writeFileSync(join(workspace, pythonPackagesDir, file), text);
  }
}

async function copyFixture(): Promise<string> {
  const workspace = mkdtempSync(join(tmpdir(), 'tessera-polyglot-'));
  workspaces.push(workspace);
  cpSync(fixture, workspace, { recursive: true });
  const substitute = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) substitute(path);
      else writeFileSync(path, readFileSync(path, 'utf8').replaceAll('__REGISTRY__', registry.host));
    }
  };
  substitute(workspace);
  await git(workspace, 'init', '-q', '-b', 'main', '.');
  await git(workspace, 'add', '-A');
  await git(workspace, 'commit', '-qm', 'fixture');
  await installModules(workspace);
  return workspace;
}

async function cloneWorkspace(from: string): Promise<string> {
  const workspace = mkdtempSync(join(tmpdir(), 'tessera-polyglot-clone-'));
  rmSync(workspace, { recursive: true });
  workspaces.push(workspace);
  await git(dirname(workspace), 'clone', '-q', from, workspace);
  await installModules(workspace);
  return workspace;
}

const imageRecord = (workspace: string, project: string): ImageRecord =>
  JSON.parse(readFileSync(join(workspace, 'dist/images', project, 'image.json'), 'utf8')) as ImageRecord;

/** Registry requests since `offset` (the access log has one `"METHOD URI HTTP/1.1" status` line per request). */
function requestsSince(offset: number): string[] {
  return [...registry.log().slice(offset).matchAll(/"(GET|HEAD|PUT|POST|PATCH|DELETE) (\S+) HTTP\/1\.1" (\d+)/g)].map((m) => `${m[1]} ${m[2]} ${m[3]}`);
}

/** Files and symlinks of a pushed layer (directories left out), from the registry blob. */
async function layerFiles(repository: string, digest: string): Promise<string[]> {
  const response = await fetch(`http://${registry.host}/v2/${repository}/blobs/${digest}`);
  expect(response.status).toBe(200);
  const dir = mkdtempSync(join(tmpdir(), 'tessera-layer-'));
  try {
    writeFileSync(join(dir, 'layer.tar.gz'), Buffer.from(await response.arrayBuffer()));
    const listing = await mustRun('tar', ['-tzf', 'layer.tar.gz'], dir);
    return listing.split('\n').filter((line) => line !== '' && !line.endsWith('/')).sort();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Each layer of an image (by its image.json) with its files. */
async function layerFileSets(workspace: string, project: string): Promise<Record<string, string[]>> {
  const record = imageRecord(workspace, project);
  const sets: Record<string, string[]> = {};
  const repository = record.repository.slice(`${registry.host}/`.length);
  for (const layer of record.layers) sets[layer.description] = await layerFiles(repository, layer.digest);
  return sets;
}

const blobUploads = (requests: string[]) => requests.filter((r) => /^PUT \/v2\/.+\/blobs\/uploads\/.*digest=/.test(r));
const mounts = (requests: string[]) => requests.filter((r) => /^POST \/v2\/.+\/blobs\/uploads\/\?.*mount=/.test(r));
const uploadedDigests = (requests: string[]) => blobUploads(requests).map((r) => decodeURIComponent(/digest=([^&\s]+)/.exec(r)![1]));

beforeAll(async () => {
  registry = await startRegistry();
  await pushNodeRuntimeBase(registry.host);
  await pushBusyboxBase(registry.host);
  await mustRun(process.execPath, [join(repoModules, 'typescript/bin/tsc'), '-b', 'packages/oci', 'packages/builder', 'packages/nx'], repoRoot);
  packDir = mkdtempSync(join(tmpdir(), 'tessera-pack-'));
  for (const name of tesseraPackages) {
    await mustRun('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', packDir], join(repoRoot, 'packages', name));
  }
}, 300_000);

afterAll(async () => {
  for (const workspace of workspaces) rmSync(workspace, { recursive: true, force: true });
  if (packDir) rmSync(packDir, { recursive: true, force: true });
  await registry?.stop();
});

describe('nx plugin on a polyglot workspace', { timeout: 600_000 }, () => {
  let workspace: string;
  const firstDigests: Record<string, string> = {};

  it('builds every image, the in-repo base first, and the Node images run with both libraries', async () => {
    workspace = await copyFixture();
    const result = await nx(workspace, 'run-many', '-t', 'image');
    expect(result.status, result.output).toBe(0);
    for (const project of allImages) {
      expect(result.output).toMatch(new RegExp(`${project}: built`));
      const record = imageRecord(workspace, project);
      expect(record.status).toBe('built');
      firstDigests[project] = record.digest;
    }
    // The dependants were built on exactly the base image just pushed.
    const baseLayers = (await skopeoInspect(`${registry.host}/node-base:latest`, 'raw')).layers as unknown[];
    const api = await skopeoInspect(`${registry.host}/api:1.4.0`, 'raw');
    const worker = await skopeoInspect(`${registry.host}/worker:latest`, 'raw');
    // api: npm packages, root files, format, greet, api; worker (no npm dependency): root files, format, worker.
    expect(api.layers).toHaveLength(baseLayers.length + 5);
    expect(worker.layers).toHaveLength(baseLayers.length + 3);
    expect(api.annotations['org.opencontainers.image.base.digest']).toBe(firstDigests['node-base']);
    expect(imageRecord(workspace, 'api').layers.map((layer) => layer.description)).toEqual([
      'third-party npm packages (2)',
      'root files (package.json)',
      'module format (libs/format)',
      'module greet (libs/greet)',
      'project api (apps/api)',
    ]);
    expect(imageRecord(workspace, 'worker').layers.map((layer) => layer.description)).toEqual([
      'root files (package.json)',
      'module format (libs/format)',
      'project worker (apps/worker)',
    ]);
    // The closure's npm packages, pruned to what it reaches (to-regex-range and its dependency), as real files.
    const apiFiles = await layerFileSets(workspace, 'api');
    expect(apiFiles['third-party npm packages (2)']).toEqual(
      ['is-number', 'to-regex-range'].flatMap((name) => ['LICENSE', 'README.md', 'index.js', 'package.json'].map((file) => `app/node_modules/${name}/${file}`)),
    );

    for (const [reference, expected] of [
      [`${registry.host}/api:latest`, '[format v1] hello from api via greet\nports 808[0-9]'],
      [`${registry.host}/worker:latest`, '[format v1] worker ready'],
    ] as const) {
      const unpacked = await pullAndUnpack(reference);
      try {
        const { stdout } = await runInRootfs(unpacked.rootfs, unpacked.process.args!, { env: unpacked.process.env, cwd: unpacked.process.cwd });
        expect(stdout.trim()).toBe(expected);
      } finally {
        await unpacked.remove();
      }
    }
    const python = await skopeoInspect(`${registry.host}/py-service:latest`, 'config');
    expect(python.config.Cmd).toEqual(['python', '-m', 'py_service']);
    const dotnet = await skopeoInspect(`${registry.host}/dotnet-service:latest`, 'config');
    expect(dotnet.config.Entrypoint).toEqual(['dotnet', 'Service.dll']);
    expect(dotnet.config.WorkingDir).toBe('/app');

    // .NET: the publish output split into NuGet assemblies, one layer per workspace assembly, the app.
    const busyboxLayers = (await skopeoInspect(`${registry.host}/tessera/busybox:latest`, 'raw')).layers as unknown[];
    expect((await skopeoInspect(`${registry.host}/dotnet-service:latest`, 'raw')).layers).toHaveLength(busyboxLayers.length + 4);
    expect(imageRecord(workspace, 'dotnet-service').layers.map((layer) => layer.description)).toEqual([
      'third-party nuget (apps/dotnet-service/publish)',
      'module dotnet-domain (assembly Domain)',
      'module dotnet-data (assembly Data)',
      'project dotnet-service (assembly Service)',
    ]);
    expect(await layerFileSets(workspace, 'dotnet-service')).toEqual({
      'third-party nuget (apps/dotnet-service/publish)': ['app/Newtonsoft.Json.dll', 'app/Serilog.dll'],
      'module dotnet-domain (assembly Domain)': ['app/Domain.dll', 'app/Domain.pdb'],
      'module dotnet-data (assembly Data)': ['app/Data.dll'],
      'project dotnet-service (assembly Service)': [
        'app/Service.deps.json',
        'app/Service.dll',
        'app/Service.runtimeconfig.json',
        'app/appsettings.json',
      ],
    });

    // Python (layered): the installed site-packages as the third-party layer, then py-common, then the app.
    expect((await skopeoInspect(`${registry.host}/py-batch:latest`, 'raw')).layers).toHaveLength(busyboxLayers.length + 3);
    expect(imageRecord(workspace, 'py-batch').layers.map((layer) => layer.description)).toEqual([
      `third-party python (${pythonPackagesDir})`,
      'module py-common (libs/py-common)',
      'project py-batch (apps/py-batch)',
    ]);
    expect(await layerFileSets(workspace, 'py-batch')).toEqual({
      [`third-party python (${pythonPackagesDir})`]: Object.keys(pythonPackages).map((file) => `app/${pythonPackagesDir}/${file}`).sort(),
      'module py-common (libs/py-common)': ['app/libs/py-common/project.json', 'app/libs/py-common/pyproject.toml', 'app/libs/py-common/src/py_common/__init__.py'],
      'project py-batch (apps/py-batch)': ['app/apps/py-batch/project.json', 'app/apps/py-batch/pyproject.toml', 'app/apps/py-batch/src/py_batch/__main__.py'],
    });
    expect((await skopeoInspect(`${registry.host}/py-batch:latest`, 'config')).config.Cmd).toEqual(['python', '-m', 'py_batch']);
  });

  it('reports every image unchanged on a rerun, with no uploads and at most 3 requests per image', async () => {
    const offset = registry.log().length;
    const result = await nx(workspace, 'run-many', '-t', 'image');
    expect(result.status, result.output).toBe(0);
    for (const project of allImages) {
      expect(result.output).toMatch(new RegExp(`${project}: unchanged`));
      expect(imageRecord(workspace, project).digest).toBe(firstDigests[project]);
    }
    const requests = requestsSince(offset);
    expect(blobUploads(requests)).toEqual([]);
    expect(requests.filter((r) => r.startsWith('PUT '))).toEqual([]);
    expect(requests.length).toBeLessThanOrEqual(3 * allImages.length);
  });

  it('rebuilds exactly the two Node images when a shared library changes: one new layer, uploaded once, mounted once', async () => {
    const before = { api: imageRecord(workspace, 'api'), worker: imageRecord(workspace, 'worker') };
    writeFileSync(join(workspace, 'libs/format/index.js'), 'exports.format = (text) => `[format v2] ${text}`;\n');
    await git(workspace, 'commit', '-qam', 'format v2');
    const offset = registry.log().length;
    const result = await nx(workspace, 'affected', '-t', 'image', '--base=HEAD~1');
    expect(result.status, result.output).toBe(0);
    expect(result.output).toMatch(/api: built/);
    expect(result.output).toMatch(/worker: built/);
    // The base runs as a dependency of the affected images and finds itself unchanged; Python and .NET never run.
    expect(result.output).not.toMatch(/node-base: built/);
    for (const untouched of ['py-service', 'py-batch', 'dotnet-service']) expect(result.output).not.toMatch(new RegExp(`${untouched}: `));

    const after = { api: imageRecord(workspace, 'api'), worker: imageRecord(workspace, 'worker') };
    const formatLayer = (record: ImageRecord) => record.layers.find((layer) => layer.description.startsWith('module format'))!;
    const newDigest = formatLayer(after.api).digest;
    expect(newDigest).not.toBe(formatLayer(before.api).digest);
    expect(formatLayer(after.worker).digest).toBe(newDigest);
    for (const name of ['api', 'worker'] as const) {
      // Only the format layer was rewritten; every other layer kept its digest.
      expect(after[name].layers.filter((layer) => layer.rebuilt).map((layer) => layer.description)).toEqual(['module format (libs/format)']);
      after[name].layers.forEach((layer, index) => {
        if (!layer.description.startsWith('module format')) expect(layer.digest).toBe(before[name].layers[index].digest);
      });
    }
    const requests = requestsSince(offset);
    expect(uploadedDigests(requests).filter((digest) => digest === newDigest)).toHaveLength(1);
    const layerUploads = uploadedDigests(requests).filter((digest) => [after.api, after.worker].some((r) => r.layers.some((l) => l.digest === digest)));
    expect(layerUploads).toEqual([newDigest]);
    const formatMounts = mounts(requests).filter((r) => r.includes(encodeURIComponent(newDigest)) || r.includes(newDigest));
    expect(formatMounts.some((r) => r.includes('/v2/api/') || r.includes('/v2/worker/'))).toBe(true);
  });

  it('builds nothing when a file outside every input changes', async () => {
    writeFileSync(join(workspace, 'README.md'), '# polyglot\n\nEdited.\n');
    await git(workspace, 'commit', '-qam', 'readme');
    const offset = registry.log().length;
    const result = await nx(workspace, 'affected', '-t', 'image', '--base=HEAD~1');
    expect(result.status, result.output).toBe(0);
    for (const project of allImages) expect(result.output).not.toMatch(new RegExp(`${project}: (built|unchanged)`));
    expect(requestsSince(offset)).toEqual([]);
  });

  it('refuses a hand-edited module block with the nx sync message, and nx sync fixes it', async () => {
    const dockerfile = join(workspace, 'apps/py-service/Dockerfile');
    const original = readFileSync(dockerfile, 'utf8');
    writeFileSync(dockerfile, original.replace('COPY libs/py-common ./libs/py-common\n', ''));
    const failed = await nx(workspace, 'run', 'py-service:image');
    expect(failed.status).not.toBe(0);
    expect(failed.output).toMatch(/nx sync/);
    const synced = await nx(workspace, 'sync');
    expect(synced.status, synced.output).toBe(0);
    expect(readFileSync(dockerfile, 'utf8')).toBe(original);
    const rerun = await nx(workspace, 'run', 'py-service:image');
    expect(rerun.status, rerun.output).toBe(0);
    expect(rerun.output).toMatch(/py-service: unchanged/);
  });

  it('gives the same digests in a second clone with a fresh cache', async () => {
    const clone = await cloneWorkspace(workspace);
    // No push and a fresh cache dir: every image is built from scratch into an OCI layout.
    const result = await nx(clone, 'run-many', '-t', 'image', '--push=false');
    expect(result.status, result.output).toBe(0);
    for (const project of allImages) {
      expect(imageRecord(clone, project).status).toBe('built');
      expect(imageRecord(clone, project).digest).toBe(imageRecord(workspace, project).digest);
      expect(existsSync(join(clone, 'dist/images', project, 'index.json'))).toBe(true);
    }
  });
});
