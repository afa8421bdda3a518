import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, type Stats } from 'node:fs';
import { join, posix } from 'node:path';
import type { FileData, ProjectGraph } from '@nx/devkit';
import { hashFile, isListedTree, listedTreeDigest, WalkKey, type FileHashMemo, type LayerEntry, type LayerFileSource } from '@tessera/builder';
import { splitPublishOutput, type LayerPlan, type PlannedLayer, type PublishOutputSplit } from '../../planning/layers';
import { hashParts } from './input-hash';

/** One layer of a layered image, ready to hash and write. */
export interface ConcreteLayer {
  /** For history and the summary, e.g. `module shared (libs/shared)`. */
  description: string;
  /** Files to place. */
  files: LayerFileSource[];
  /** Generated entries (workspace package links), already at image paths. */
  extraEntries: LayerEntry[];
  /** Input hash: the layer's bytes depend on nothing else. */
  hash: string;
}

/** Nx's per-project file lists with content hashes, when the caller has them. */
export type ProjectFiles = Record<string, FileData[]>;

const HASH_CONCURRENCY = 4;

/** How layer files are hashed: through a stat memo, and with the hashes a run already has (`BuildSession.treeHashes`). */
export interface TreeHashing {
  memo?: FileHashMemo;
  shared?: Map<string, Promise<string>>;
}

/**
 * Turns a layer plan into concrete layers. Source layers take the project's files from Nx's file map
 * (which already leaves out ignored files and nested projects) and hash them with Nx's file hashes;
 * build outputs, root files and third-party packages are hashed with xxhash over the files.
 */
export async function concreteLayers(
  plan: LayerPlan,
  graph: ProjectGraph,
  workspaceRoot: string,
  projectFiles: ProjectFiles | undefined,
  hashing: TreeHashing = {},
): Promise<ConcreteLayer[]> {
  const layers: ConcreteLayer[] = [];
  // Listed once: every .NET layer takes its share of the same publish output.
  const publishSplit = plan.dotnet ? readPublishSplit(plan, workspaceRoot) : undefined;
  for (const planned of plan.layers) layers.push(await concreteLayer(planned, plan, graph, workspaceRoot, projectFiles, publishSplit, hashing));
  return layers;
}

async function concreteLayer(
  planned: PlannedLayer,
  plan: LayerPlan,
  graph: ProjectGraph,
  workspaceRoot: string,
  projectFiles: ProjectFiles | undefined,
  publishSplit: PublishOutputSplit | undefined,
  hashing: TreeHashing,
): Promise<ConcreteLayer> {
  switch (planned.kind) {
    case 'module':
    case 'project': {
      if (planned.content === 'assembly') {
        const description = `${planned.kind} ${planned.project} (assembly ${planned.assembly})`;
        const files = publishSplit?.byProject[planned.project] ?? [];
        if (!files.some((file) => file === `${planned.assembly}.dll` || file === `${planned.assembly}.exe`)) {
          throw new Error(`${description}: ${planned.sourcePath} has no ${planned.assembly}.dll (publish the app first, or check <AssemblyName>).`);
        }
        return publishedFilesLayer(description, 'assembly', files, planned.sourcePath, planned.destination, workspaceRoot, hashing);
      }
      const description = `${planned.kind} ${planned.project} (${planned.sourcePath})`;
      const nxFiles = planned.content === 'sources' ? projectFiles?.[planned.project] : undefined;
      if (nxFiles) {
        const files = [...nxFiles].sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
        const sources = files.map((file) => ({ hostPath: join(workspaceRoot, file.file), imagePath: posix.join(plan.workdir, file.file) }));
        const parts = files.flatMap((file) => [file.file, modeBits(join(workspaceRoot, file.file)), file.hash]);
        return { description, files: sources, extraEntries: [], hash: hashParts(['layer-v1', 'nx-files', plan.workdir, ...parts]) };
      }
      const hostDir = join(workspaceRoot, planned.sourcePath);
      if (!existsSync(hostDir)) {
        const hint = planned.content === 'outputs' ? ' (run its build target first)' : '';
        throw new Error(`${description}: ${planned.sourcePath} does not exist${hint}.`);
      }
      const source = { hostPath: hostDir, imagePath: planned.destination };
      return { description, files: [source], extraEntries: [], hash: await hashTrees([source], 'tree', hashing) };
    }
    case 'root-files': {
      const sources = planned.files
        .filter((file) => existsSync(join(workspaceRoot, file)))
        .map((file) => ({ hostPath: join(workspaceRoot, file), imagePath: posix.join(planned.destination, file) }));
      const links = plan.runtime === 'node' ? workspacePackageLinks(plan, graph, workspaceRoot) : [];
      const linkParts = links.flatMap((link) => [link.path, link.linkTarget!]);
      return {
        description: `root files (${planned.files.join(', ')})`,
        files: sources,
        extraEntries: links,
        hash: hashParts(['layer-v1', 'root', await hashTrees(sources, 'root', hashing), ...linkParts]),
      };
    }
    case 'third-party': {
      if (planned.runtime === 'node') {
        const sources = planned.packages
          .filter((pkg) => pkg.path !== undefined && existsSync(join(workspaceRoot, pkg.path)))
          .map((pkg) => ({ hostPath: join(workspaceRoot, pkg.path!), imagePath: posix.join(plan.workdir, pkg.path!) }));
        // Installed packages change only with their version: name@version identifies the content.
        const parts = planned.packages.flatMap((pkg) => [pkg.name, pkg.version ?? '', pkg.path ?? '']);
        return { description: `third-party npm packages (${planned.packages.length})`, files: sources, extraEntries: [], hash: hashParts(['layer-v1', 'npm', plan.workdir, ...parts]) };
      }
      if (planned.runtime === 'dotnet' && publishSplit) {
        return publishedFilesLayer(`third-party nuget (${planned.sourcePath})`, 'nuget', publishSplit.thirdParty, planned.sourcePath, planned.destination, workspaceRoot, hashing);
      }
      const hostDir = join(workspaceRoot, planned.sourcePath);
      if (!existsSync(hostDir)) throw new Error(`third-party layer: ${planned.sourcePath} does not exist.`);
      const source = { hostPath: hostDir, imagePath: planned.destination };
      return { description: `third-party ${planned.runtime} (${planned.sourcePath})`, files: [source], extraEntries: [], hash: await hashTrees([source], planned.runtime, hashing) };
    }
  }
}

/** The plan's .NET publish output, listed and split between the workspace assemblies and the third-party layer. */
function readPublishSplit(plan: LayerPlan, workspaceRoot: string): PublishOutputSplit {
  const { publishDir, assemblies } = plan.dotnet!;
  const hostDir = join(workspaceRoot, publishDir);
  if (!existsSync(hostDir)) throw new Error(`${plan.project}: publish output ${publishDir} does not exist (run dotnet publish first).`);
  return splitPublishOutput(listFiles(hostDir), assemblies, plan.project);
}

/** Files and symlinks below a directory, as sorted posix paths relative to it. */
function listFiles(dir: string, prefix = ''): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(join(dir, prefix), { withFileTypes: true })) {
    const path = prefix ? posix.join(prefix, entry.name) : entry.name;
    if (entry.isDirectory()) files.push(...listFiles(dir, path));
    else if (entry.isFile() || entry.isSymbolicLink()) files.push(path);
  }
  return files.sort();
}

/** A layer of some files of a publish output, each at its publish-relative path below `destination`. */
async function publishedFilesLayer(
  description: string,
  label: string,
  files: readonly string[],
  sourcePath: string,
  destination: string,
  workspaceRoot: string,
  hashing: TreeHashing,
): Promise<ConcreteLayer> {
  const sources = files.map((file) => ({ hostPath: join(workspaceRoot, sourcePath, file), imagePath: posix.join(destination, file) }));
  return { description, files: sources, extraEntries: [], hash: await hashTrees(sources, label, hashing) };
}

/**
 * `node_modules/<package name>` links to the workspace modules of the closure, as npm workspaces make
 * them, so `require('@scope/lib')` resolves inside the image.
 */
export function workspacePackageLinks(plan: LayerPlan, graph: ProjectGraph, workspaceRoot: string): LayerEntry[] {
  const links: LayerEntry[] = [];
  for (const name of plan.closure) {
    const node = graph.nodes[name];
    const packageName = (node?.data.metadata as { js?: { packageName?: string } } | undefined)?.js?.packageName ?? readPackageName(join(workspaceRoot, node.data.root));
    if (!packageName) continue;
    const linkPath = posix.join('node_modules', packageName);
    const target = posix.relative(posix.dirname(linkPath), node.data.root);
    links.push({ path: posix.join(plan.workdir, linkPath).slice(1), type: 'symlink', mode: 0o777, uid: 0, gid: 0, linkTarget: target });
  }
  return links.sort((a, b) => (a.path < b.path ? -1 : 1));
}

function readPackageName(projectDir: string): string | undefined {
  try {
    const name = (JSON.parse(readFileSync(join(projectDir, 'package.json'), 'utf8')) as { name?: unknown }).name;
    return typeof name === 'string' ? name : undefined;
  } catch {
    return undefined;
  }
}

function modeBits(path: string): string {
  try {
    return lstatSync(path).mode & 0o111 ? 'x' : '-';
  } catch {
    return '?';
  }
}

/**
 * xxhash of every file below the sources (paths, exec bits, link targets, contents), in a fixed order.
 * With a memo, a file whose stat is unchanged since it was last hashed is not read again, and a tree
 * whose every stat is unchanged has the hash it had then, with no per-file lookups.
 */
async function hashTrees(sources: readonly LayerFileSource[], label: string, hashing: TreeHashing): Promise<string> {
  if (!hashing.shared) return hashTreesNow(sources, label, hashing.memo);
  const key = JSON.stringify([label, sources.map((source) => [source.hostPath, source.imagePath])]);
  let hash = hashing.shared.get(key);
  if (!hash) {
    hash = hashTreesNow(sources, label, hashing.memo);
    hashing.shared.set(key, hash);
  }
  return hash;
}

async function hashTreesNow(sources: readonly LayerFileSource[], label: string, memo: FileHashMemo | undefined): Promise<string> {
  const listedKey = memo ? await listedWalkKey(sources, label) : undefined;
  if (listedKey) {
    const remembered = memo!.recallWalk(listedKey);
    if (remembered) return remembered;
  }
  const items: Array<{ imagePath: string; hostPath: string; kind: 'file' | 'dir' | 'link' | 'x'; stats: Stats }> = [];
  const walk = (hostPath: string, imagePath: string) => {
    const stats = lstatSync(hostPath);
    if (stats.isDirectory()) {
      items.push({ imagePath, hostPath, kind: 'dir', stats });
      for (const name of readdirSync(hostPath).sort()) walk(join(hostPath, name), posix.join(imagePath, name));
    } else if (stats.isSymbolicLink()) {
      items.push({ imagePath, hostPath, kind: 'link', stats });
    } else if (stats.isFile()) {
      items.push({ imagePath, hostPath, kind: stats.mode & 0o111 ? 'x' : 'file', stats });
    }
  };
  for (const source of sources) walk(source.hostPath, source.imagePath);
  let walkKey = listedKey;
  if (memo && !walkKey) {
    const key = await WalkKey.start();
    for (const item of items) {
      const type = item.kind === 'dir' ? 'directory' : item.kind === 'link' ? 'symlink' : 'file';
      key.file({ relativePath: item.imagePath, absolutePath: item.hostPath, type, stats: item.stats }, 0);
    }
    walkKey = key.finish([], ['tessera-nx-layer-tree', label, ...sources.map((source) => `${source.hostPath}\0${source.imagePath}`)]);
    const remembered = memo.recallWalk(walkKey);
    if (remembered) return remembered;
  }
  const hashes: string[] = new Array(items.length).fill('');
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      const item = items[index];
      if (item.kind === 'file' || item.kind === 'x') hashes[index] = memo ? await memo.hash(item.hostPath, item.stats) : await hashFile(item.hostPath);
      else if (item.kind === 'link') hashes[index] = readlinkSync(item.hostPath);
    }
  };
  await Promise.all(Array.from({ length: HASH_CONCURRENCY }, worker));
  const hash = hashParts(['layer-v1', label, ...items.flatMap((item, index) => [item.imagePath, item.kind, hashes[index]])]);
  if (walkKey) memo!.rememberWalk(walkKey, hash);
  return hash;
}

/**
 * The walk key of a source that is one big directory, from GNU find's listing (as the builder lists big
 * COPY sources): find runs in another process, and a no-change run then makes no lstat call per file.
 * `undefined` for other sources or when find cannot list it; the tree is then walked in Node.
 */
async function listedWalkKey(sources: readonly LayerFileSource[], label: string): Promise<string | undefined> {
  if (sources.length !== 1) return undefined;
  const [source] = sources;
  let stats: Stats;
  try {
    stats = lstatSync(source.hostPath);
  } catch {
    return undefined;
  }
  if (!isListedTree(stats)) return undefined;
  const digest = await listedTreeDigest(source.hostPath, []);
  if (digest === undefined) return undefined;
  const key = await WalkKey.start();
  key.listedTree(0, digest);
  return key.finish([], ['tessera-nx-layer-tree-listed', label, `${source.hostPath}\0${source.imagePath}`]);
}
