import { join, posix } from 'node:path';
import type { ProjectGraph, ProjectGraphProjectNode } from '@nx/devkit';
import { workspaceRoot as nxWorkspaceRoot } from '../nx-runtime';
import { DEFAULT_WORKDIR, type ModuleContent, type ProjectImageConfig, type ProjectRuntime } from '../plugins/options';
import { readProjectImageConfig } from '../plugins/project-config';
import { moduleClosure } from './closure';
import { readAssemblyName, type WorkspaceAssembly } from './dotnet';

export { readAssemblyName, splitPublishOutput, type PublishOutputSplit, type WorkspaceAssembly } from './dotnet';

export interface LayerPlanOptions {
  /** Base image reference; defaults to the project's `"tessera".base`. */
  base?: string;
  /** Working directory in the image; defaults to the project's `"tessera".workdir`, then `/app`. */
  workdir?: string;
  /** Runtime; defaults to the project's `"tessera".runtime`, then `node` for projects with JS metadata. */
  runtime?: ProjectRuntime;
  /** Content of modules that say nothing themselves. Default `sources`. */
  defaultContent?: ModuleContent;
  /** Per-project content, winning over each project's own `"tessera".content`. */
  content?: Record<string, ModuleContent>;
  /** Projects not layered as modules, e.g. workspace projects whose image is this project's base. */
  exclude?: Iterable<string>;
  /** Root-files layer: `auto` adds it for Node when workspace modules are layered. Default `auto`. */
  rootFilesLayer?: 'auto' | 'always' | 'never';
  /** Workspace root files of that layer, e.g. `['package.json', 'package-lock.json']`. Default `['package.json']`. */
  rootFiles?: string[];
  /** npm packages never shipped (e.g. dev tools the graph links to). */
  excludePackages?: string[];
  /** Where project roots are read from (.NET project files). Default: Nx's workspace root. */
  workspaceRoot?: string;
  /** .NET: a project's assembly name, undefined for a project that is not .NET. Default: read from its project file. */
  assemblyName?: (project: ProjectGraphProjectNode) => string | undefined;
}

export interface NodePackage {
  /** npm package name. */
  name: string;
  version?: string;
  /** `node_modules/<name>` for the hoisted copy; absent for nested versions, which the build resolves. */
  path?: string;
}

export type PlannedLayer =
  | { kind: 'third-party'; runtime: 'node'; packages: NodePackage[]; destination: string }
  | { kind: 'third-party'; runtime: 'python'; sourcePath: string; destination: string }
  /** The publish output minus the workspace assemblies (`LayerPlan.dotnet`). */
  | { kind: 'third-party'; runtime: 'dotnet'; sourcePath: string; destination: string; assemblies: 'nuget' }
  | { kind: 'root-files'; files: string[]; destination: string }
  | { kind: 'module' | 'project'; project: string; content: ModuleContent; sourcePath: string; destination: string }
  /** A .NET project's own files of the publish output at `sourcePath`, flat at `destination` (the workdir). */
  | { kind: 'module' | 'project'; project: string; content: 'assembly'; assembly: string; sourcePath: string; destination: string };

/** How a .NET image's publish output is split: one layer per workspace assembly, the rest third-party. */
export interface DotnetPublishSplit {
  publishDir: string;
  /** The closure's .NET projects with their assembly names, in layer order, the app last. */
  assemblies: WorkspaceAssembly[];
}

export interface LayerPlan {
  project: string;
  base: string;
  workdir: string;
  runtime?: ProjectRuntime;
  /** Workspace modules in layer order, the project last. */
  closure: string[];
  /** Layers in order, least often changing first. The base image is not a layer here. */
  layers: PlannedLayer[];
  /** .NET with a `publishDir`: the split of its publish output. */
  dotnet?: DotnetPublishSplit;
}

/** The layered-mode plan for a project's image: base, third-party, root files, one layer per module, the project. Pure data. */
export function planLayers(graph: ProjectGraph, projectName: string, options: LayerPlanOptions = {}): LayerPlan {
  const closure = moduleClosure(graph, projectName, { exclude: options.exclude });
  const node = graph.nodes[projectName];
  const config = readProjectImageConfig(node.data);
  const base = options.base ?? config?.base;
  if (!base) throw new Error(`Project "${projectName}" has no base image: set "tessera": { "base": "..." } in its project.json.`);
  const workdir = posix.normalize(options.workdir ?? config?.workdir ?? DEFAULT_WORKDIR);
  const runtime = options.runtime ?? config?.runtime ?? detectRuntime(node);

  const dotnet = runtime === 'dotnet' && config?.publishDir ? planDotnetSplit(graph, closure, projectName, config.publishDir, options) : undefined;
  const assemblyOf = new Map(dotnet?.assemblies.map((entry) => [entry.project, entry.assembly]));

  const layers: PlannedLayer[] = [];
  const thirdParty = planThirdParty(graph, closure, runtime, config, workdir, options);
  if (thirdParty) layers.push(thirdParty);

  const modules = closure.filter((name) => name !== projectName);
  const rootFilesMode = options.rootFilesLayer ?? 'auto';
  if (rootFilesMode === 'always' || (rootFilesMode === 'auto' && runtime === 'node' && modules.length > 0)) {
    layers.push({ kind: 'root-files', files: [...(options.rootFiles ?? ['package.json'])].sort(), destination: workdir });
  }

  for (const name of closure) {
    const kind = name === projectName ? 'project' : 'module';
    const assembly = assemblyOf.get(name);
    if (dotnet && assembly) {
      layers.push({ kind, project: name, content: 'assembly', assembly, sourcePath: dotnet.publishDir, destination: workdir });
      continue;
    }
    const moduleNode = graph.nodes[name];
    const moduleConfig = readProjectImageConfig(moduleNode.data);
    const content = options.content?.[name] ?? moduleConfig?.content ?? options.defaultContent ?? 'sources';
    const sourcePath = content === 'sources' ? moduleNode.data.root : moduleOutputPath(moduleNode.data.root, moduleConfig);
    layers.push({
      kind,
      project: name,
      content,
      sourcePath,
      destination: posix.join(workdir, sourcePath),
    });
  }
  return { project: projectName, base, workdir, ...(runtime ? { runtime } : {}), closure, layers, ...(dotnet ? { dotnet } : {}) };
}

/** The closure's .NET projects (those with a project file) and their assembly names; the app must be one. */
function planDotnetSplit(graph: ProjectGraph, closure: string[], projectName: string, publishDir: string, options: LayerPlanOptions): DotnetPublishSplit {
  const root = options.workspaceRoot ?? nxWorkspaceRoot;
  const assemblyName = options.assemblyName ?? ((project: ProjectGraphProjectNode) => readAssemblyName(join(root, project.data.root)));
  const assemblies: WorkspaceAssembly[] = [];
  for (const name of closure) {
    const assembly = assemblyName(graph.nodes[name]);
    if (assembly) assemblies.push({ project: name, assembly });
  }
  if (!assemblies.some((entry) => entry.project === projectName)) {
    throw new Error(`Project "${projectName}" has a publishDir but no .csproj (or .fsproj/.vbproj) in ${graph.nodes[projectName].data.root}: its assembly name is needed to split the publish output.`);
  }
  return { publishDir: normalizeDir(publishDir), assemblies };
}

function moduleOutputPath(root: string, config: ProjectImageConfig | undefined): string {
  return config?.outputPath ?? posix.join('dist', root);
}

function detectRuntime(node: ProjectGraphProjectNode): ProjectRuntime | undefined {
  return node.data.metadata?.js ? 'node' : undefined;
}

function planThirdParty(
  graph: ProjectGraph,
  closure: string[],
  runtime: ProjectRuntime | undefined,
  config: ProjectImageConfig | undefined,
  workdir: string,
  options: LayerPlanOptions,
): PlannedLayer | undefined {
  switch (runtime) {
    case 'node': {
      const packages = externalNpmPackages(graph, closure, new Set(options.excludePackages ?? []));
      return packages.length > 0
        ? { kind: 'third-party', runtime: 'node', packages, destination: posix.join(workdir, 'node_modules') }
        : undefined;
    }
    case 'python':
      return config?.pythonPackagesDir
        ? { kind: 'third-party', runtime: 'python', sourcePath: config.pythonPackagesDir, destination: posix.join(workdir, config.pythonPackagesDir) }
        : undefined;
    case 'dotnet':
      return config?.publishDir
        ? { kind: 'third-party', runtime: 'dotnet', sourcePath: normalizeDir(config.publishDir), destination: workdir, assemblies: 'nuget' }
        : undefined;
    default:
      return undefined;
  }
}

/** npm packages the closure reaches, following package-to-package edges, sorted by name then version. */
function externalNpmPackages(graph: ProjectGraph, closure: string[], excluded: ReadonlySet<string>): NodePackage[] {
  const externalNodes = graph.externalNodes ?? {};
  const seen = new Set<string>();
  const pending = closure.flatMap((name) => (graph.dependencies[name] ?? []).map((dependency) => dependency.target));
  while (pending.length > 0) {
    const name = pending.pop()!;
    const external = externalNodes[name];
    if (!external || external.type !== 'npm' || seen.has(name) || excluded.has(external.data.packageName)) continue;
    seen.add(name);
    for (const dependency of graph.dependencies[name] ?? []) pending.push(dependency.target);
  }
  return [...seen]
    .map((name) => {
      const { packageName, version } = externalNodes[name].data;
      // Nx names the hoisted copy `npm:<name>` and nested copies `npm:<name>@<version>`.
      const hoisted = name === `npm:${packageName}`;
      return { name: packageName, version, ...(hoisted ? { path: posix.join('node_modules', packageName) } : {}) };
    })
    .sort((a, b) => (a.name === b.name ? compare(a.version, b.version) : compare(a.name, b.name)));
}

function compare(a: string | undefined, b: string | undefined): number {
  return (a ?? '') < (b ?? '') ? -1 : (a ?? '') > (b ?? '') ? 1 : 0;
}

/** `apps/web/bin/publish/` and `apps/web/./bin/publish` are `apps/web/bin/publish`. */
function normalizeDir(path: string): string {
  return posix.normalize(path).replace(/(.)\/+$/, '$1');
}
