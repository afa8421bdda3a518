import type { ProjectGraph } from '@nx/devkit';

export interface ModuleClosureOptions {
  /** Workspace projects not to follow, e.g. projects whose image is this project's base. */
  exclude?: Iterable<string>;
}

export class ModuleCycleError extends Error {
  constructor(readonly cycle: string[]) {
    super(`Workspace modules depend on each other in a cycle: ${cycle.join(' -> ')}. Break the cycle to build a layered image.`);
    this.name = 'ModuleCycleError';
  }
}

/** The workspace projects a project depends on directly (external `npm:` nodes and excluded projects left out), sorted. */
export function workspaceDependencies(graph: ProjectGraph, projectName: string, excluded: ReadonlySet<string> = new Set()): string[] {
  const targets = (graph.dependencies[projectName] ?? [])
    .map((dependency) => dependency.target)
    .filter((target) => target !== projectName && graph.nodes[target] !== undefined && !excluded.has(target));
  return [...new Set(targets)].sort();
}

/**
 * The project and its workspace dependencies, transitively, dependencies first.
 * Among modules whose dependencies are all placed, the smallest name goes first, so the
 * order is stable whatever order the graph lists edges in. The project itself is last.
 */
export function moduleClosure(graph: ProjectGraph, projectName: string, options: ModuleClosureOptions = {}): string[] {
  if (!graph.nodes[projectName]) throw new Error(`Project "${projectName}" is not in the project graph.`);
  const excluded = new Set(options.exclude ?? []);
  excluded.delete(projectName);

  // Depth-first walk collects the closure and reports the first cycle with its path.
  const members = new Set<string>();
  const onPath: string[] = [];
  const visit = (name: string) => {
    const cycleStart = onPath.indexOf(name);
    if (cycleStart >= 0) throw new ModuleCycleError([...onPath.slice(cycleStart), name]);
    if (members.has(name)) return;
    onPath.push(name);
    for (const dependency of workspaceDependencies(graph, name, excluded)) visit(dependency);
    onPath.pop();
    members.add(name);
  };
  visit(projectName);

  const remaining = new Map([...members].map((name) => [name, new Set(workspaceDependencies(graph, name, excluded))]));
  const order: string[] = [];
  while (remaining.size > 0) {
    const ready = [...remaining].filter(([, deps]) => deps.size === 0).map(([name]) => name).sort();
    const next = ready[0];
    order.push(next);
    remaining.delete(next);
    for (const deps of remaining.values()) deps.delete(next);
  }
  return order;
}
