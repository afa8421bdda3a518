import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ExecutorContext, ProjectGraph } from '@nx/devkit';
import { logger, projectFileMap, workspaceRoot } from '../../nx-runtime';
import { parsePlatform } from '@tessera/oci';
import { moduleClosure } from '../../planning/closure';
import { planLayers } from '../../planning/layers';
import { projectVersion, renderTag, tagUsesGit, type TagValues } from '../../planning/tags';
import { findImageBaseProjects, imageRepositoryOwners } from '../../plugins/dependencies';
import { imageRepository } from '../../plugins/options';
import { readProjectImageConfig } from '../../plugins/project-config';
import { expectedModuleBlock } from '../../sync/expected-block';
import { hasModuleBlock, isModuleBlockInSync, staleModuleBlockMessage } from '../../sync/module-block';
import { parseFromImages, repositoryOf } from '../../plugins/dockerfile-from';
import { buildProjectImage, emptyReport, imageOutputDir, shouldPush, type ImageBuildReport, type ProjectImageRequest } from './build';
import type { ProjectFiles } from './layer-sources';
import type { ImageExecutorOptions } from './schema';
import { BuildSession } from './session';
import { summaryLine } from './summary';

/** `@tessera/nx:image`: resolves repository, tags and plan for one project, builds, and prints one summary line. */
export default async function imageExecutor(options: ImageExecutorOptions, context: ExecutorContext): Promise<{ success: boolean }> {
  const session = new BuildSession(sessionOptions(options));
  try {
    const report = await buildTask(options, context, session, await loadProjectFiles(context.projectGraph, context.root));
    logger.info(summaryLine(report));
    return { success: report.status !== 'failed' };
  } finally {
    session.close();
  }
}

/** Resolves and builds one task's image; a failure to resolve is a failed report too. */
export async function buildTask(
  options: ImageExecutorOptions,
  context: ExecutorContext,
  session: BuildSession,
  projectFiles: ProjectFiles | undefined,
): Promise<ImageBuildReport> {
  let request: ProjectImageRequest;
  try {
    request = resolveImageRequest(options, context);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return failedReport(context.projectName ?? '?', message);
  }
  return buildProjectImage(request, options, { session, graph: context.projectGraph, projectFiles, log: (line) => logger.verbose(`${request.projectName}: ${line}`) });
}

/**
 * The session's settings. Its platform is the default for targets that name none: the one platform
 * given, else the host's. A target with several platforms builds each of them (see `targetPlatforms`).
 */
export function sessionOptions(options: ImageExecutorOptions): ConstructorParameters<typeof BuildSession>[0] {
  const platforms = options.platforms ?? [];
  return {
    insecureRegistries: options.insecureRegistries ?? [],
    ...(platforms.length === 1 ? { platform: parsePlatform(platforms[0]!) } : {}),
  };
}

/**
 * Nx's file map (files and content hashes per project); undefined outside a real workspace, or when
 * Nx's workspace (found from the working directory) is not the context's root: its map would list
 * another tree's files, and the layers would miss the real ones.
 */
export async function loadProjectFiles(graph: ProjectGraph, root?: string): Promise<ProjectFiles | undefined> {
  if (root !== undefined && resolve(root) !== resolve(workspaceRoot)) return undefined;
  try {
    return await projectFileMap(graph);
  } catch {
    return undefined;
  }
}

function failedReport(project: string, error: string): ImageBuildReport {
  return emptyReport(project, { error });
}

export function resolveImageRequest(options: ImageExecutorOptions, context: ExecutorContext): ProjectImageRequest {
  const projectName = context.projectName;
  if (!projectName) throw new Error('The image executor needs a project.');
  const graph = context.projectGraph;
  const node = graph.nodes[projectName];
  const config = readProjectImageConfig(node.data);
  const repository = options.repository ?? imageRepository(projectName, config, options.registry);
  const inputsHash = taskHash(context);
  const templates = options.tags ?? config?.tags ?? ['latest'];
  // Two git processes per image add up in a batch: ask git only when a tag needs it.
  const usesGit = templates.some(tagUsesGit);
  const values: TagValues = { projectName, ...projectManifestVersion(join(context.root, node.data.root)), ...(usesGit ? gitValues(context.root) : {}), inputsHash };
  const tags = templates.map((template) => renderTag(template, values));
  const base: ProjectImageRequest = {
    projectName,
    workspaceRoot: context.root,
    repository,
    tags,
    ...(inputsHash ? { inputsHash } : {}),
    ...(config ? { config } : {}),
  };
  const owners = imageRepositoryOwners(
    Object.fromEntries(Object.entries(graph.nodes).map(([name, project]) => [name, project.data])),
    options,
  );

  if (options.dockerfile) {
    const text = readFileSync(join(context.root, options.dockerfile), 'utf8');
    if (hasModuleBlock(text) && !isModuleBlockInSync(text, expectedModuleBlock(graph, projectName, text, options))) {
      throw new Error(staleModuleBlockMessage(projectName, options.dockerfile));
    }
    const bases = findImageBaseProjects(projectName, config, text, owners).map((entry) => entry.project);
    const layoutBases = unpushedWorkspaceBases(parseFromImages(text).map((from) => from.image), owners, options, context.root);
    return { ...base, dockerfile: options.dockerfile, closure: moduleClosure(graph, projectName, { exclude: bases }), ...layoutBases };
  }
  const exclude = findImageBaseProjects(projectName, config, undefined, owners).map((entry) => entry.project);
  const layoutBases = unpushedWorkspaceBases(config?.base ? [config.base] : [], owners, options, context.root);
  return { ...base, plan: planLayers(graph, projectName, { exclude, workspaceRoot: context.root }), ...layoutBases };
}

/**
 * Bases that name a workspace project's image which is not pushed (push off): each is read from that
 * project's OCI layout, found by the same repository → project mapping as `createDependencies`.
 */
function unpushedWorkspaceBases(
  references: string[],
  owners: Map<string, string>,
  options: ImageExecutorOptions,
  workspaceRoot: string,
): Pick<ProjectImageRequest, 'layoutBases'> {
  const layoutBases: Record<string, string> = {};
  for (const reference of references) {
    const repository = repositoryOf(reference);
    const owner = owners.get(repository);
    if (owner && !shouldPush(repository, options)) layoutBases[reference] = imageOutputDir(workspaceRoot, owner);
  }
  return Object.keys(layoutBases).length ? { layoutBases } : {};
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

const gitValuesByRoot = new Map<string, Pick<TagValues, 'commitSha' | 'branch'>>();

/** Commit and branch, when the workspace is a git checkout; tags that need them fail otherwise. Asked once per batch. */
function gitValues(cwd: string): Pick<TagValues, 'commitSha' | 'branch'> {
  let values = gitValuesByRoot.get(cwd);
  if (!values) {
    values = readGitValues(cwd);
    gitValuesByRoot.set(cwd, values);
  }
  return values;
}

function readGitValues(cwd: string): Pick<TagValues, 'commitSha' | 'branch'> {
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
