/**
 * The runtime values this package takes from Nx, from the modules `@nx/devkit` re-exports them from.
 * Requiring `@nx/devkit`'s index loads most of Nx (about 0.1 s in each plugin worker and executor
 * process), which a no-change run pays for nothing. Types still come from `@nx/devkit`.
 */
export { createNodesFromFiles } from 'nx/src/project-graph/plugins/utils';
export { DependencyType } from 'nx/src/config/project-graph';
export { logger } from 'nx/src/utils/logger';
export { workspaceRoot } from 'nx/src/utils/workspace-root';

/** Nx's file map per project. Loaded on first use: it brings in Nx's workspace context. */
export async function projectFileMap(graph: import('@nx/devkit').ProjectGraph): Promise<Record<string, import('@nx/devkit').FileData[]>> {
  const { createProjectFileMapUsingProjectGraph } = await import('nx/src/project-graph/file-map-utils');
  return createProjectFileMapUsingProjectGraph(graph);
}
