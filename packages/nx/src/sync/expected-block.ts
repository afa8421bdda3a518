import type { ProjectGraph } from '@nx/devkit';
import { moduleClosure } from '../planning/closure';
import { findImageBaseProjects, imageRepositoryOwners } from '../plugins/dependencies';
import type { TesseraPluginOptions } from '../plugins/options';
import { readProjectImageConfig } from '../plugins/project-config';
import { renderModuleBlock } from './module-block';

/**
 * The module block a project's Dockerfile should hold: its module closure, leaving out
 * workspace projects whose images it builds on (those are bases, not modules).
 */
export function expectedModuleBlock(
  graph: ProjectGraph,
  projectName: string,
  dockerfileText: string,
  pluginOptions: TesseraPluginOptions | undefined,
): string {
  const projects = Object.fromEntries(Object.entries(graph.nodes).map(([name, node]) => [name, node.data]));
  const owners = imageRepositoryOwners(projects, pluginOptions);
  const config = readProjectImageConfig(graph.nodes[projectName]?.data);
  const bases = findImageBaseProjects(projectName, config, dockerfileText, owners).map((base) => base.project);
  const closure = moduleClosure(graph, projectName, { exclude: bases });
  const roots = Object.fromEntries(closure.map((name) => [name, graph.nodes[name].data.root]));
  return renderModuleBlock(closure, roots);
}
