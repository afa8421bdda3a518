import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, readFileSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCommand, runInRootfs, type CommandResult } from '../../tools/images/index';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CASES_DIR = fileURLToPath(new URL('./cases', import.meta.url));
const TESSERA_BIN = join(REPO_ROOT, 'packages/builder/bin/tessera.js');
const LAYOUT_TAG = 'conformance';

/** One allowed difference: a filesystem path (and everything below it) or a config field, with why. */
export type AllowEntry = ({ path: string } | { field: string }) & { reason: string };

export interface CaseSpec {
  buildArgs?: Record<string, string>;
  target?: string;
  /** `none`: buildah cannot build it (heredocs); only expectations on the tessera image are checked. */
  reference?: 'buildah' | 'none';
  /** Also build this case with a push to the registry (`--destination`) and compare the pulled image. */
  push?: boolean;
  expect?: {
    /** argv run chrooted in the built rootfs, with the config's Env and WorkingDir. */
    run?: string[];
    stdout?: string;
    /** Config fields that must equal these values (after normalisation). */
    config?: Partial<Record<ConfigField, unknown>>;
  };
  allow?: AllowEntry[];
}

export interface ConformanceCase extends CaseSpec {
  name: string;
  dir: string;
}

export function loadCases(dir = CASES_DIR): ConformanceCase[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => {
      const caseDir = join(dir, entry.name);
      const specPath = join(caseDir, 'case.json');
      const spec = existsSync(specPath) ? (JSON.parse(readFileSync(specPath, 'utf8')) as CaseSpec) : {};
      return { ...spec, name: entry.name, dir: caseDir };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** The config fields compared between builders. */
export const CONFIG_FIELDS = [
  'Env',
  'Cmd',
  'Entrypoint',
  'WorkingDir',
  'User',
  'ExposedPorts',
  'Volumes',
  'Labels',
  'StopSignal',
  'Healthcheck',
  'OnBuild',
  'Shell',
] as const;
export type ConfigField = (typeof CONFIG_FIELDS)[number];

/** A built image, unpacked: the filesystem plus the raw image config JSON. */
export interface BuiltImage {
  rootfs: string;
  config: ImageConfigJson;
}

export interface ImageConfigJson {
  author?: string;
  config?: Record<string, unknown>;
  [key: string]: unknown;
}

/** Private scratch space for one run: buildah storage, layouts and bundles; removed by dispose(). */
export class Workspace {
  private constructor(readonly dir: string) {}

  static async create(): Promise<Workspace> {
    return new Workspace(await mkdtemp(join(tmpdir(), 'tessera-conformance-')));
  }

  async subdir(name: string): Promise<string> {
    const path = join(this.dir, name);
    await rm(path, { recursive: true, force: true });
    await mkdir(path, { recursive: true });
    return path;
  }

  async dispose(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

function buildArgFlags(kase: ConformanceCase, baseRef: string): string[] {
  const args = { BASE: baseRef, ...kase.buildArgs };
  return Object.entries(args).flatMap(([key, value]) => ['--build-arg', `${key}=${value}`]);
}

/** buildah with private storage (vfs) under the workspace. */
export class Buildah {
  constructor(
    private readonly root: string,
    private readonly runroot: string,
  ) {}

  static async create(workspace: Workspace): Promise<Buildah> {
    return new Buildah(await workspace.subdir('buildah-root'), await workspace.subdir('buildah-runroot'));
  }

  private run(args: string[], cwd?: string): Promise<CommandResult> {
    return runCommand('buildah', ['--root', this.root, '--runroot', this.runroot, '--storage-driver', 'vfs', ...args], {
      cwd,
    });
  }

  /**
   * Builds the case in Docker format (the OCI config has no Healthcheck, OnBuild or Shell), keeps the
   * Docker config, and unpacks the layers with umoci.
   */
  async build(kase: ConformanceCase, baseRef: string, workspace: Workspace): Promise<BuiltImage> {
    const ref = `localhost/conformance-${kase.name}:latest`;
    const args = ['bud', '--quiet', '--format', 'docker', '--isolation=chroot', '--layers', '--tls-verify=false'];
    args.push('-t', ref, '-f', join(kase.dir, 'Dockerfile'), ...buildArgFlags(kase, baseRef));
    if (kase.target) args.push('--target', kase.target);
    await this.run([...args, kase.dir]);
    const work = await workspace.subdir(`reference-${kase.name}`);
    const dirCopy = join(work, 'dir');
    await this.run(['push', '--quiet', '--format', 'v2s2', ref, `dir:${dirCopy}`]);
    const manifest = JSON.parse(await readFile(join(dirCopy, 'manifest.json'), 'utf8')) as { config: { digest: string } };
    const config = JSON.parse(
      await readFile(join(dirCopy, manifest.config.digest.replace(/^sha256:/, '')), 'utf8'),
    ) as ImageConfigJson;
    const layout = join(work, 'layout');
    await runCommand('skopeo', ['--insecure-policy', 'copy', '--quiet', `dir:${dirCopy}`, `oci:${layout}:${LAYOUT_TAG}`]);
    const rootfs = await umociUnpack(layout, join(work, 'bundle'));
    await this.run(['rmi', '--force', ref]).catch(() => undefined);
    return { rootfs, config };
  }
}

async function umociUnpack(layout: string, bundle: string): Promise<string> {
  await runCommand('umoci', ['unpack', '--image', `${layout}:${LAYOUT_TAG}`, bundle]);
  return join(bundle, 'rootfs');
}

export interface TesseraBuild {
  /** The exact command line, for reports. */
  command: string;
  image: BuiltImage;
}

export class TesseraBuildError extends Error {}

/** Runs the tessera CLI on a case: into an OCI layout with --no-push, or pushed to `destination`. */
export async function buildWithTessera(
  kase: ConformanceCase,
  options: { baseRef: string; registryHost: string; workspace: Workspace; push: boolean },
): Promise<TesseraBuild> {
  const work = await options.workspace.subdir(`tessera-${kase.name}${options.push ? '-push' : ''}`);
  const destination = `${options.registryHost}/conformance/${kase.name}:${options.push ? 'pushed' : 'latest'}`;
  const layout = join(work, 'layout');
  const args = ['build', '--context', kase.dir, '--dockerfile', join(kase.dir, 'Dockerfile')];
  args.push('--destination', destination, '--insecure-registry', options.registryHost);
  args.push(...buildArgFlags(kase, options.baseRef));
  if (kase.target) args.push('--target', kase.target);
  if (!options.push) args.push('--no-push', '--oci-layout-path', layout);
  const command = `node ${TESSERA_BIN} ${args.join(' ')}`;
  try {
    await runCommand(process.execPath, [TESSERA_BIN, ...args], { cwd: REPO_ROOT });
  } catch (error) {
    throw new TesseraBuildError(`tessera build failed: ${command}\n${(error as Error).message}`);
  }
  if (options.push) {
    const { stdout } = await runCommand('skopeo', [
      '--insecure-policy',
      'inspect',
      '--config',
      '--raw',
      '--tls-verify=false',
      `docker://${destination}`,
    ]);
    await runCommand('skopeo', [
      '--insecure-policy',
      'copy',
      '--quiet',
      '--src-tls-verify=false',
      `docker://${destination}`,
      `oci:${layout}:${LAYOUT_TAG}`,
    ]);
    const rootfs = await umociUnpack(layout, join(work, 'bundle'));
    return { command, image: { rootfs, config: JSON.parse(stdout) as ImageConfigJson } };
  }
  const config = await tagLayoutImage(layout);
  const rootfs = await umociUnpack(layout, join(work, 'bundle'));
  return { command, image: { rootfs, config } };
}

interface IndexEntry {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

const INDEX_TYPES = new Set([
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
]);

/**
 * umoci unpacks only a tagged manifest; Kaniko-style layouts may be untagged or hold an index. Rewrites
 * index.json to name the single image manifest, and returns its config.
 */
async function tagLayoutImage(layout: string): Promise<ImageConfigJson> {
  const blob = async (digest: string) => JSON.parse(await readFile(join(layout, 'blobs', ...digest.split(':')), 'utf8'));
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: IndexEntry[] };
  let entries = index.manifests;
  while (entries.length === 1 && INDEX_TYPES.has(entries[0]!.mediaType)) {
    entries = ((await blob(entries[0]!.digest)) as { manifests: IndexEntry[] }).manifests;
  }
  if (entries.length !== 1) throw new Error(`expected one image in ${layout}/index.json, found ${entries.length}`);
  const entry = entries[0]!;
  const annotations = { ...entry.annotations, 'org.opencontainers.image.ref.name': LAYOUT_TAG };
  await writeFile(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ ...entry, annotations }] }));
  const manifest = (await blob(entry.digest)) as { config: { digest: string } };
  return (await blob(manifest.config.digest)) as ImageConfigJson;
}

/** One filesystem entry, with everything compared (no mtimes, no directory sizes). */
export interface FsEntry {
  type: 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket';
  mode: string;
  uid: number;
  gid: number;
  size?: number;
  sha256?: string;
  target?: string;
  rdev?: number;
}

function hashFile(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path)
      .on('error', reject)
      .on('data', (chunk) => hash.update(chunk))
      .on('end', () => resolve(hash.digest('hex')));
  });
}

/** Walks a rootfs into a map of absolute image path to entry. */
export async function snapshotTree(rootfs: string): Promise<Map<string, FsEntry>> {
  const entries = new Map<string, FsEntry>();
  const visit = async (hostPath: string, imagePath: string): Promise<void> => {
    const stats = await lstat(hostPath);
    const base = { mode: (stats.mode & 0o7777).toString(8).padStart(4, '0'), uid: stats.uid, gid: stats.gid };
    if (stats.isDirectory()) {
      entries.set(imagePath, { type: 'dir', ...base });
      for (const name of (await readdir(hostPath)).sort()) {
        await visit(join(hostPath, name), imagePath === '/' ? `/${name}` : `${imagePath}/${name}`);
      }
    } else if (stats.isSymbolicLink()) {
      entries.set(imagePath, { type: 'symlink', ...base, mode: '-', target: await readlink(hostPath) });
    } else if (stats.isFile()) {
      entries.set(imagePath, { type: 'file', ...base, size: stats.size, sha256: await hashFile(hostPath) });
    } else {
      const type = stats.isCharacterDevice() ? 'char' : stats.isBlockDevice() ? 'block' : stats.isFIFO() ? 'fifo' : 'socket';
      entries.set(imagePath, { type, ...base, rdev: stats.rdev });
    }
  };
  await visit(rootfs, '/');
  return entries;
}

/** One difference between the reference and tessera images. */
export interface Difference {
  /** Filesystem path, or `config.FIELD`. */
  key: string;
  message: string;
}

/**
 * Files and directories buildah creates as bind-mount targets for RUN (empty), and which Docker's
 * builders do not commit. Ignored only while empty on the buildah side.
 */
const BUILDAH_RUN_PLACEHOLDERS = new Set(['/etc/hostname', '/etc/hosts', '/etc/resolv.conf', '/run', '/sys']);

function isEmptyPlaceholder(path: string, entry: FsEntry, tree: Map<string, FsEntry>): boolean {
  if (!BUILDAH_RUN_PLACEHOLDERS.has(path)) return false;
  if (entry.type === 'file') return entry.size === 0;
  return entry.type === 'dir' && ![...tree.keys()].some((other) => other.startsWith(`${path}/`));
}

function describeEntry(entry: FsEntry): string {
  const parts: string[] = [entry.type];
  if (entry.type !== 'symlink') parts.push(`mode=${entry.mode}`);
  parts.push(`uid=${entry.uid}`, `gid=${entry.gid}`);
  if (entry.target !== undefined) parts.push(`-> ${entry.target}`);
  if (entry.sha256) parts.push(`size=${entry.size}`, `sha256=${entry.sha256.slice(0, 12)}`);
  if (entry.rdev !== undefined) parts.push(`rdev=${entry.rdev}`);
  return parts.join(' ');
}

export function compareTrees(reference: Map<string, FsEntry>, tessera: Map<string, FsEntry>): Difference[] {
  const differences: Difference[] = [];
  const paths = [...new Set([...reference.keys(), ...tessera.keys()])].sort();
  for (const path of paths) {
    const ref = reference.get(path);
    const ours = tessera.get(path);
    if (ref && isEmptyPlaceholder(path, ref, reference)) continue;
    if (!ref) differences.push({ key: path, message: `only in tessera: ${describeEntry(ours!)}` });
    else if (!ours) differences.push({ key: path, message: `only in buildah: ${describeEntry(ref)}` });
    else {
      const a = describeEntry(ref);
      const b = describeEntry(ours);
      if (a !== b) differences.push({ key: path, message: `buildah: ${a}\n      tessera: ${b}` });
    }
  }
  return differences;
}

/** Labels buildah adds on its own. */
const BUILDER_LABELS = ['io.buildah.version'];

/** Absent, null, [] and {} mean the same to a runtime; Docker-format configs write them inconsistently. */
function normaliseField(field: ConfigField, value: unknown): unknown {
  if (value === null || value === undefined || value === '') return undefined;
  if (Array.isArray(value) && value.length === 0) return undefined;
  if (typeof value === 'object' && !Array.isArray(value)) {
    const record = { ...(value as Record<string, unknown>) };
    if (field === 'Labels') for (const label of BUILDER_LABELS) delete record[label];
    if (Object.keys(record).length === 0) return undefined;
    return Object.fromEntries(Object.keys(record).sort().map((key) => [key, record[key]]));
  }
  return value;
}

export function configFields(config: ImageConfigJson): Record<ConfigField, unknown> {
  const inner = config.config ?? {};
  return Object.fromEntries(CONFIG_FIELDS.map((field) => [field, normaliseField(field, inner[field])])) as Record<
    ConfigField,
    unknown
  >;
}

export function compareConfigs(reference: ImageConfigJson, tessera: ImageConfigJson): Difference[] {
  const a = configFields(reference);
  const b = configFields(tessera);
  const differences: Difference[] = [];
  for (const field of CONFIG_FIELDS) {
    const left = JSON.stringify(a[field]);
    const right = JSON.stringify(b[field]);
    if (left !== right) differences.push({ key: `config.${field}`, message: `buildah: ${left}\n      tessera: ${right}` });
  }
  const authorA = JSON.stringify(reference.author ?? null);
  const authorB = JSON.stringify(tessera.author ?? null);
  if (authorA !== authorB) differences.push({ key: 'config.author', message: `buildah: ${authorA}\n      tessera: ${authorB}` });
  return differences;
}

export function isAllowed(difference: Difference, allow: readonly AllowEntry[] = []): boolean {
  return allow.some((entry) => {
    if ('path' in entry) return difference.key === entry.path || difference.key.startsWith(`${entry.path}/`);
    return difference.key === `config.${entry.field}` || difference.key === entry.field;
  });
}

export function formatDifferences(name: string, differences: readonly Difference[]): string {
  const lines = differences.slice(0, 60).map((d) => `  ${d.key}\n      ${d.message}`);
  if (differences.length > 60) lines.push(`  … and ${differences.length - 60} more`);
  return `case ${name}: ${differences.length} difference(s) between buildah and tessera\n${lines.join('\n')}`;
}

/** Full comparison: filesystem and config, minus the case's allow-list. */
export async function compareImages(kase: ConformanceCase, reference: BuiltImage, tessera: BuiltImage): Promise<Difference[]> {
  const [refTree, ourTree] = await Promise.all([snapshotTree(reference.rootfs), snapshotTree(tessera.rootfs)]);
  return [...compareTrees(refTree, ourTree), ...compareConfigs(reference.config, tessera.config)].filter(
    (difference) => !isAllowed(difference, kase.allow),
  );
}

/** Runs the case's `expect.run` chrooted in the image, with its Env and WorkingDir. */
export async function runExpectation(kase: ConformanceCase, image: BuiltImage): Promise<string> {
  const argv = kase.expect?.run;
  if (!argv) throw new Error(`case ${kase.name} has no expect.run`);
  const inner = image.config.config ?? {};
  const env = (inner.Env as string[] | undefined) ?? [];
  const cwd = (inner.WorkingDir as string | undefined) || undefined;
  const { stdout } = await runInRootfs(image.rootfs, argv, { env, cwd });
  return stdout;
}
