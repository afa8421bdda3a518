import { posix } from 'node:path';
import type { ProjectGraph, ProjectGraphProjectNode } from '@nx/devkit';
import { DEFAULT_WORKDIR, type ModuleContent, type ProjectImageConfig, type ProjectRuntime } from '../plugins/options';
import { readProjectImageConfig } from '../plugins/project-config';
import { moduleClosure } from './closure';

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
  | { kind: 'third-party'; runtime: 'dotnet'; sourcePath: string; destination: string; assemblies: 'nuget' }
  | { kind: 'root-files'; files: string[]; destination: string }
  | { kind: 'module' | 'project'; project: string; content: ModuleContent; sourcePath: string; destination: string };

export interface LayerPlan {
  project: string;
  base: string;
  workdir: string;
  runtime?: ProjectRuntime;
  /** Workspace modules in layer order, the project last. */
  closure: string[];
  /** Layers in order, least often changing first. The base image is not a layer here. */
  layers: PlannedLayer[];
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

  const layers: PlannedLayer[] = [];
  const thirdParty = planThirdParty(graph, closure, runtime, config, workdir, options);
  if (thirdParty) layers.push(thirdParty);

  const modules = closure.filter((name) => name !== projectName);
  const rootFilesMode = options.rootFilesLayer ?? 'auto';
  if (rootFilesMode === 'always' || (rootFilesMode === 'auto' && runtime === 'node' && modules.length > 0)) {
    layers.push({ kind: 'root-files', files: [...(options.rootFiles ?? ['package.json'])].sort(), destination: workdir });
  }

  for (const name of closure) {
    const moduleNode = graph.nodes[name];
    const moduleConfig = readProjectImageConfig(moduleNode.data);
    const content = options.content?.[name] ?? moduleConfig?.content ?? options.defaultContent ?? 'sources';
    const sourcePath = content === 'sources' ? moduleNode.data.root : moduleOutputPath(moduleNode.data.root, moduleConfig);
    layers.push({
      kind: name === projectName ? 'project' : 'module',
      project: name,
      content,
      sourcePath,
      destination: posix.join(workdir, sourcePath),
    });
  }
  return { project: projectName, base, workdir, ...(runtime ? { runtime } : {}), closure, layers };
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
        ? { kind: 'third-party', runtime: 'dotnet', sourcePath: config.publishDir, destination: workdir, assemblies: 'nuget' }
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
