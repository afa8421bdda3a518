import type { ProjectGraph, ProjectGraphProjectNode } from '@nx/devkit';
import { DependencyType } from '@nx/devkit';

/** A hand-built project graph for planning tests: `edges` maps a project to the projects or `npm:` nodes it depends on. */
export function testGraph(
  projects: Record<string, Partial<ProjectGraphProjectNode['data']>>,
  edges: Record<string, string[]>,
  npm: Record<string, { packageName: string; version: string }> = {},
): ProjectGraph {
  const nodes = Object.fromEntries(
    Object.entries(projects).map(([name, data]) => [name, { name, type: 'lib' as const, data: { root: `libs/${name}`, ...data } }]),
  );
  const externalNodes = Object.fromEntries(
    Object.entries(npm).map(([name, data]) => [name, { type: 'npm' as const, name: name as `npm:${string}`, data }]),
  );
  const dependencies = Object.fromEntries(
    [...Object.keys(nodes), ...Object.keys(externalNodes)].map((source) => [
      source,
      (edges[source] ?? []).map((target) => ({ source, target, type: DependencyType.static })),
    ]),
  );
  return { nodes, externalNodes, dependencies } as ProjectGraph;
}
