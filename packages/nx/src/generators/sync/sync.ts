import { createProjectGraphAsync, readCachedProjectGraph, readNxJson, type ProjectGraph, type Tree } from '@nx/devkit';
import type { SyncGeneratorResult } from 'nx/src/utils/sync-generators';
import { dockerfilePath } from '../../plugins/dependencies';
import { readProjectImageConfig } from '../../plugins/project-config';
import { readPluginOptions } from '../../plugins/read-plugin-options';
import { expectedModuleBlock } from '../../sync/expected-block';
import { hasModuleBlock, isModuleBlockInSync, replaceModuleBlock } from '../../sync/module-block';

/** Rewrites every stale `# tessera:modules` block; returns the Dockerfiles it changed. */
export function syncModuleBlocks(tree: Tree, graph: ProjectGraph): string[] {
  const pluginOptions = readPluginOptions(readNxJson(tree));
  const changed: string[] = [];
  for (const name of Object.keys(graph.nodes).sort()) {
    const node = graph.nodes[name];
    const dockerfile = dockerfilePath(node.data.root, readProjectImageConfig(node.data));
    if (!tree.exists(dockerfile)) continue;
    const text = tree.read(dockerfile, 'utf-8')!;
    if (!hasModuleBlock(text)) continue;
    const block = expectedModuleBlock(graph, name, text, pluginOptions);
    if (isModuleBlockInSync(text, block)) continue;
    tree.write(dockerfile, replaceModuleBlock(text, block));
    changed.push(dockerfile);
  }
  return changed;
}

/**
 * Nx builds the project graph right before it runs sync generators, and caches it: reading that cache
 * saves building it a second time (without the daemon, a process per plugin). With no cache yet, build it.
 */
async function currentProjectGraph(): Promise<ProjectGraph> {
  try {
    return readCachedProjectGraph();
  } catch {
    return createProjectGraphAsync();
  }
}

/** `@tessera/nx:sync`: keeps each Dockerfile's module block equal to its project's module closure. */
export default async function syncGenerator(tree: Tree): Promise<SyncGeneratorResult> {
  const graph = await currentProjectGraph();
  const changed = syncModuleBlocks(tree, graph);
  if (changed.length === 0) return;
  return {
    outOfSyncMessage: 'The "# tessera:modules" blocks of some Dockerfiles do not match their module closure.',
    outOfSyncDetails: changed.map((file) => `${file} needs an updated module block`),
  };
}
