import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { logger, type ExecutorContext } from '@nx/devkit';
import { planLayers } from '../../planning/layers';
import { projectVersion, renderTag, type TagValues } from '../../planning/tags';
import { findImageBaseProjects, imageRepositoryOwners } from '../../plugins/dependencies';
import { imageRepository } from '../../plugins/options';
import { readProjectImageConfig } from '../../plugins/project-config';
import { expectedModuleBlock } from '../../sync/expected-block';
import { hasModuleBlock, isModuleBlockInSync, staleModuleBlockMessage } from '../../sync/module-block';
import { buildProjectImage, type ProjectImageRequest } from './build';
import type { ImageExecutorOptions } from './schema';

/** `@tessera/nx:image`: resolves repository, tags and plan for one project, then hands them to the build engine. */
export default async function imageExecutor(options: ImageExecutorOptions, context: ExecutorContext): Promise<{ success: boolean }> {
  const request = resolveImageRequest(options, context);
  logger.info(`${request.projectName}: ${request.repository} (${request.tags.join(', ')})`);
  await buildProjectImage(request, options);
  return { success: true };
}

export function resolveImageRequest(options: ImageExecutorOptions, context: ExecutorContext): ProjectImageRequest {
  const projectName = context.projectName;
  if (!projectName) throw new Error('The image executor needs a project.');
  const graph = context.projectGraph;
  const node = graph.nodes[projectName];
  const config = readProjectImageConfig(node.data);
  const repository = imageRepository(projectName, config, options.registry);
  const inputsHash = taskHash(context);
  const values: TagValues = { projectName, ...projectManifestVersion(join(context.root, node.data.root)), ...gitValues(context.root), inputsHash };
  const tags = (options.tags ?? config?.tags ?? ['latest']).map((template) => renderTag(template, values));
  const base: ProjectImageRequest = { projectName, workspaceRoot: context.root, repository, tags, ...(inputsHash ? { inputsHash } : {}) };

  if (options.dockerfile) {
    const text = readFileSync(join(context.root, options.dockerfile), 'utf8');
    if (hasModuleBlock(text) && !isModuleBlockInSync(text, expectedModuleBlock(graph, projectName, text, options))) {
      throw new Error(staleModuleBlockMessage(projectName, options.dockerfile));
    }
    return { ...base, dockerfile: options.dockerfile };
  }
  const owners = imageRepositoryOwners(
    Object.fromEntries(Object.entries(graph.nodes).map(([name, project]) => [name, project.data])),
    options,
  );
  const exclude = findImageBaseProjects(projectName, config, undefined, owners).map((entry) => entry.project);
  return { ...base, plan: planLayers(graph, projectName, { exclude }) };
}

function taskHash(context: ExecutorContext): string | undefined {
  const tasks = Object.values(context.taskGraph?.tasks ?? {});
  return tasks.find((task) => task.target.project === context.projectName && task.target.target === context.targetName)?.hash;
}

function projectManifestVersion(projectDir: string): { version?: string } {
  const read = (file: string) => (existsSync(join(projectDir, file)) ? readFileSync(join(projectDir, file), 'utf8') : undefined);
  const csprojFile = existsSync(projectDir) ? readdirSync(projectDir).find((file) => file.endsWith('.csproj')) : undefined;
  const version = projectVersion({
    packageJson: read('package.json'),
    csproj: csprojFile ? read(csprojFile) : undefined,
    pyproject: read('pyproject.toml'),
  });
  return version ? { version } : {};
}

/** Commit and branch, when the workspace is a git checkout; tags that need them fail otherwise. */
function gitValues(cwd: string): Pick<TagValues, 'commitSha' | 'branch'> {
  const git = (...args: string[]) => {
    try {
      return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return undefined;
    }
  };
  const commitSha = git('rev-parse', 'HEAD');
  const branch = process.env.GITHUB_HEAD_REF || process.env.GITHUB_REF_NAME || git('rev-parse', '--abbrev-ref', 'HEAD');
  return { ...(commitSha ? { commitSha } : {}), ...(branch && branch !== 'HEAD' ? { branch } : {}) };
}
