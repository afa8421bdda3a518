import type { LayeredConfig } from '@tessera/builder';

/** Options of the `@tessera/nx/plugin` entry in nx.json `plugins`. */
export interface TesseraPluginOptions {
  /** Name of the inferred target. Default `image`. */
  targetName?: string;
  /** Registry host (and optional path prefix) that image repositories default to, e.g. `registry.example.com/team`. */
  registry?: string;
  /** Registry repository that holds the shared build cache. */
  cacheRepo?: string;
  /** Local directory of the layer cache. */
  cacheDir?: string;
  /** Registries reached over plain HTTP or with unverified TLS. */
  insecureRegistries?: string[];
  /** Push the built images. */
  push?: boolean;
  /** Target platforms, e.g. `linux/amd64`. */
  platforms?: string[];
  /** Reproducible output: fixed timestamps, no build-time metadata. */
  reproducible?: boolean;
  /** Skip the build when the image input hash is already in the cache repo. */
  skipUnchanged?: boolean;
}

export type NormalizedPluginOptions = Required<Pick<TesseraPluginOptions, 'targetName'>> &
  Omit<TesseraPluginOptions, 'targetName'>;

export const DEFAULT_TARGET_NAME = 'image';

export function normalizePluginOptions(options: TesseraPluginOptions | undefined): NormalizedPluginOptions {
  return { ...options, targetName: options?.targetName ?? DEFAULT_TARGET_NAME };
}

/** Where a module's files come from: its source tree, or the outputs of its build target. */
export type ModuleContent = 'sources' | 'outputs';

export type ProjectRuntime = 'node' | 'python' | 'dotnet';

/**
 * The `"tessera"` block of a project's `project.json` (or `package.json`).
 * On an application it configures the image; on a library it says how the library is layered.
 * Its image settings (`workdir`, default `/app`; `entrypoint`, `cmd`, `env`, `user`, `ports`, `labels`)
 * are the builder's `LayeredConfig`.
 */
export interface ProjectImageConfig extends LayeredConfig {
  /** Image repository. Default `<registry>/<projectName>`, or `<projectName>` without a registry. */
  repository?: string;
  /** Base image for layered mode (no Dockerfile). */
  base?: string;
  /** Dockerfile path relative to the project root. Default `Dockerfile` when present. */
  dockerfile?: string;
  /** Tag templates, see `renderTag`. Default `['{version}', 'latest']` is left to the executor. */
  tags?: string[];
  /** Sources or build outputs for this project's layer. Default `sources`. */
  content?: ModuleContent;
  /** Build output directory, relative to the workspace root, used when `content` is `outputs`. Default `dist/<projectRoot>`. */
  outputPath?: string;
  /** Build target run before the image when `content` is `outputs`. Default `build`. */
  buildTarget?: string;
  /** Runtime, used to plan the third-party layer. Detected from the project files when absent. */
  runtime?: ProjectRuntime;
  /** Python: the virtualenv or site-packages directory (workspace-relative) copied as the third-party layer. */
  pythonPackagesDir?: string;
  /** .NET: the publish output directory (workspace-relative) that NuGet assemblies are taken from. */
  publishDir?: string;
}

export const CONFIG_KEY = 'tessera';
export const DEFAULT_WORKDIR = '/app';

/** The repository a project's image is pushed to. */
export function imageRepository(projectName: string, config: ProjectImageConfig | undefined, registry: string | undefined): string {
  if (config?.repository) return config.repository;
  return registry ? `${registry.replace(/\/+$/, '')}/${projectName}` : projectName;
}
