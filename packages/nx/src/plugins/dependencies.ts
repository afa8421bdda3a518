import { posix } from 'node:path';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CreateDependencies, ProjectConfiguration, RawProjectGraphDependency } from '@nx/devkit';
import { DependencyType } from '../nx-runtime';
import { parseFromImages, repositoryOf } from './dockerfile-from';
import { imageRepository, normalizePluginOptions, type TesseraPluginOptions } from './options';
import { hasImageTarget, readProjectImageConfig } from './project-config';

/** A workspace project whose image another project builds on. */
export interface ImageBaseReference {
  project: string;
  /** Where the reference is made: `dockerfile` (a FROM line) or `config` (the `base` option). */
  via: 'dockerfile' | 'config';
}

/** Map from image repository to the workspace project that builds it. */
export function imageRepositoryOwners(
  projects: Record<string, Pick<ProjectConfiguration, 'targets' | 'metadata'>>,
  pluginOptions: TesseraPluginOptions | undefined,
): Map<string, string> {
  const { targetName, registry } = normalizePluginOptions(pluginOptions);
  const owners = new Map<string, string>();
  for (const name of Object.keys(projects).sort()) {
    const project = projects[name];
    if (!hasImageTarget(project, targetName)) continue;
    const targetRepository = (project.targets?.[targetName]?.options as { repository?: unknown } | undefined)?.repository;
    owners.set(typeof targetRepository === 'string' ? targetRepository : imageRepository(name, readProjectImageConfig(project), registry), name);
  }
  return owners;
}

/** The workspace projects whose images `projectName` builds on, from its Dockerfile FROM lines and its `base` option. */
export function findImageBaseProjects(
  projectName: string,
  config: { base?: string } | undefined,
  dockerfileText: string | undefined,
  owners: Map<string, string>,
): ImageBaseReference[] {
  const found: ImageBaseReference[] = [];
  const add = (reference: string, via: ImageBaseReference['via']) => {
    const owner = owners.get(repositoryOf(reference));
    if (owner && owner !== projectName && !found.some((entry) => entry.project === owner && entry.via === via)) {
      found.push({ project: owner, via });
    }
  };
  if (dockerfileText !== undefined) for (const from of parseFromImages(dockerfileText)) add(from.image, 'dockerfile');
  if (config?.base) add(config.base, 'config');
  return found;
}

/** Path of the project's Dockerfile relative to the workspace root. */
export function dockerfilePath(projectRoot: string, config: { dockerfile?: string } | undefined): string {
  return posix.join(projectRoot, config?.dockerfile ?? 'Dockerfile');
}

/** Adds a static dependency from a project to every workspace project whose image it builds on. */
export const createDependencies: CreateDependencies<TesseraPluginOptions> = (options, context) => {
  const owners = imageRepositoryOwners(context.projects, options);
  const dependencies: RawProjectGraphDependency[] = [];
  for (const name of Object.keys(context.projects).sort()) {
    const project = context.projects[name];
    const config = readProjectImageConfig(project);
    const projectFiles = new Set((context.fileMap.projectFileMap[name] ?? []).map((file) => file.file));
    const dockerfile = dockerfilePath(project.root, config);
    const dockerfileText = projectFiles.has(dockerfile) ? readText(join(context.workspaceRoot, dockerfile)) : undefined;
    const configFile = ['project.json', 'package.json']
      .map((file) => posix.join(project.root, file))
      .find((file) => projectFiles.has(file));
    for (const base of findImageBaseProjects(name, config, dockerfileText, owners)) {
      const sourceFile = base.via === 'dockerfile' ? dockerfile : configFile;
      dependencies.push({
        source: name,
        target: base.project,
        type: sourceFile ? DependencyType.static : DependencyType.implicit,
        ...(sourceFile ? { sourceFile } : {}),
      } as RawProjectGraphDependency);
    }
  }
  return dependencies;
};

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}
