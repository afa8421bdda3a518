import { existsSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import type { CreateNodes, CreateNodesContext, CreateNodesResult, TargetConfiguration } from '@nx/devkit';
import { createNodesFromFiles } from '../nx-runtime';
import {
  CONFIG_KEY,
  normalizePluginOptions,
  type NormalizedPluginOptions,
  type ProjectImageConfig,
  type TesseraPluginOptions,
} from './options';
import { hasModuleBlock } from '../sync/module-block';
import { IMAGE_EXECUTOR } from './project-config';

export { createDependencies } from './dependencies';

type TargetInput = NonNullable<TargetConfiguration['inputs']>[number];

export const PLUGIN_NAME = '@tessera/nx/plugin';
export const SYNC_GENERATOR = '@tessera/nx:sync';
const PROJECT_FILES_GLOB = '**/{project.json,package.json,Dockerfile}';

interface ProjectFiles {
  projectJson?: ProjectJsonLike;
  packageJson?: PackageJsonLike;
}
interface ProjectJsonLike {
  name?: string;
  targets?: Record<string, unknown>;
  namedInputs?: Record<string, unknown>;
  tessera?: ProjectImageConfig;
}
interface PackageJsonLike {
  name?: string;
  scripts?: Record<string, string>;
  nx?: { targets?: Record<string, unknown>; namedInputs?: Record<string, unknown> };
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  tessera?: ProjectImageConfig;
}

/**
 * Infers the image target. A project gets one when its root holds a Dockerfile
 * (or the Dockerfile its `"tessera".dockerfile` names), or when its `"tessera"` block
 * sets a `base` (layered mode, no Dockerfile). Any `"tessera"` block is also surfaced
 * as `metadata.tessera`, so libraries can say how they are layered.
 */
export const createNodes: CreateNodes<TesseraPluginOptions> = [
  PROJECT_FILES_GLOB,
  async (configFiles, options, context) => {
    const normalized = normalizePluginOptions(options);
    const usesPublishedPlugin = rootDeclaresPlugin(context.workspaceRoot);
    // Several matched files can share a project root; infer each root once.
    const firstFileOfRoot = new Map<string, string>();
    for (const file of [...configFiles].sort()) {
      const root = posix.dirname(file);
      if (!firstFileOfRoot.has(root)) firstFileOfRoot.set(root, file);
    }
    return createNodesFromFiles(
      (file, _options, ctx) => createNodesForRoot(posix.dirname(file), normalized, ctx, usesPublishedPlugin),
      [...firstFileOfRoot.values()],
      options,
      context,
    );
  },
];

/** Alias for workspaces on Nx 22, which read `createNodesV2`. */
export const createNodesV2 = createNodes;

export function createNodesForRoot(
  root: string,
  options: NormalizedPluginOptions,
  context: CreateNodesContext,
  usesPublishedPlugin = false,
): CreateNodesResult {
  const absoluteRoot = join(context.workspaceRoot, root);
  const files: ProjectFiles = {
    projectJson: readJson<ProjectJsonLike>(join(absoluteRoot, 'project.json')),
    packageJson: readJson<PackageJsonLike>(join(absoluteRoot, 'package.json')),
  };
  // A Dockerfile alone does not make a project.
  if (!files.projectJson && !files.packageJson) return {};
  const config = files.projectJson?.[CONFIG_KEY] ?? files.packageJson?.[CONFIG_KEY];
  const dockerfileName = config?.dockerfile ?? 'Dockerfile';
  const dockerfileText = readText(join(absoluteRoot, dockerfileName));
  const buildsImage = dockerfileText !== undefined || config?.base !== undefined;
  if (!config && !buildsImage) return {};

  const projectRoot = root === '' ? '.' : root;
  if (!buildsImage) return { projects: { [projectRoot]: { metadata: { [CONFIG_KEY]: config } } } };

  const target = imageTarget(projectRoot, options, context, files, config, dockerfileText, dockerfileName, usesPublishedPlugin);
  return {
    projects: {
      [projectRoot]: {
        targets: { [options.targetName]: target },
        metadata: config ? { [CONFIG_KEY]: config } : {},
      },
    },
  };
}

function imageTarget(
  projectRoot: string,
  options: NormalizedPluginOptions,
  context: CreateNodesContext,
  files: ProjectFiles,
  config: ProjectImageConfig | undefined,
  dockerfileText: string | undefined,
  dockerfileName: string,
  usesPublishedPlugin: boolean,
): TargetConfiguration {
  const { targetName, ...executorOptions } = options;
  const namedInputs = {
    ...context.nxJsonConfiguration.namedInputs,
    ...files.packageJson?.nx?.namedInputs,
    ...files.projectJson?.namedInputs,
  };
  const sourceInputs = 'production' in namedInputs ? ['production', '^production'] : ['default', '^default'];
  const inputs: TargetInput[] = [
    ...sourceInputs,
    `{projectRoot}/${dockerfileName}`,
    `{projectRoot}/.dockerignore`,
    // Layer timestamps come from it, so it changes the image bytes.
    { env: 'SOURCE_DATE_EPOCH' },
  ];
  if (usesPublishedPlugin) inputs.push({ externalDependencies: ['@tessera/nx'] });

  const buildTargetName = config?.buildTarget ?? 'build';
  const hasBuildTarget =
    files.projectJson?.targets?.[buildTargetName] !== undefined ||
    files.packageJson?.nx?.targets?.[buildTargetName] !== undefined ||
    files.packageJson?.scripts?.[buildTargetName] !== undefined;
  const outputPath = config?.outputPath ?? posix.join('dist', projectRoot);
  const usesBuildOutputs =
    config?.content === 'outputs' || (dockerfileText !== undefined && dockerfileText.includes(outputPath));
  const dependsOn: string[] = [`^${targetName}`];
  if (usesBuildOutputs && (hasBuildTarget || config?.content === 'outputs')) {
    dependsOn.push(buildTargetName, `^${buildTargetName}`);
  }

  return {
    executor: IMAGE_EXECUTOR,
    options: {
      ...executorOptions,
      ...(dockerfileText !== undefined ? { dockerfile: posix.join(projectRoot, dockerfileName) } : {}),
    },
    inputs,
    dependsOn,
    // Not cacheable: pushing an image is a side effect. Skipping unchanged images is the executor's job.
    cache: false,
    // Only a Dockerfile with a module block has anything to sync; without the daemon, Nx builds the
    // project graph again (a process per plugin) to run a target's sync generators.
    ...(dockerfileText !== undefined && hasModuleBlock(dockerfileText) ? { syncGenerators: [SYNC_GENERATOR] } : {}),
    metadata: {
      description:
        dockerfileText !== undefined
          ? `Build the image from ${dockerfileName} with Tessera`
          : 'Build the layered image with Tessera (one layer per workspace module)',
      technologies: ['docker'],
    },
  };
}

function rootDeclaresPlugin(workspaceRoot: string): boolean {
  const rootPackage = readJson<PackageJsonLike>(join(workspaceRoot, 'package.json'));
  return Boolean(rootPackage?.dependencies?.['@tessera/nx'] ?? rootPackage?.devDependencies?.['@tessera/nx']);
}

function readText(path: string): string | undefined {
  return existsSync(path) ? readFileSync(path, 'utf8') : undefined;
}

function readJson<T>(path: string): T | undefined {
  const text = readText(path);
  return text === undefined ? undefined : (JSON.parse(text) as T);
}
