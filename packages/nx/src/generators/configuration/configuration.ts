import { posix } from 'node:path';
import { formatFiles, readProjectConfiguration, updateJson, type Tree } from '@nx/devkit';
import { CONFIG_KEY, DEFAULT_WORKDIR, type ProjectImageConfig, type ProjectRuntime } from '../../plugins/options';
import { renderModuleBlock } from '../../sync/module-block';
import type { ConfigurationGeneratorSchema } from './schema';

export const DEFAULT_BASE_IMAGES: Record<ProjectRuntime, string> = {
  node: 'node:22-slim',
  python: 'python:3.12-slim',
  dotnet: 'mcr.microsoft.com/dotnet/aspnet:8.0',
};

/** `@tessera/nx:configuration`: gives a project an image, as a Dockerfile or as a layered `"tessera"` block. */
export async function configurationGenerator(tree: Tree, schema: ConfigurationGeneratorSchema): Promise<void> {
  const project = readProjectConfiguration(tree, schema.project);
  const root = project.root;
  const runtime = schema.runtime ?? detectProjectRuntime(tree, root);
  if (!runtime) {
    throw new Error(
      `Cannot tell the runtime of "${schema.project}": ${root} has no package.json, pyproject.toml or *.csproj. Pass --runtime.`,
    );
  }
  const base = schema.base ?? DEFAULT_BASE_IMAGES[runtime];
  const config: ProjectImageConfig = schema.repository ? { repository: schema.repository } : {};

  if ((schema.mode ?? 'dockerfile') === 'layered') {
    writeProjectImageConfig(tree, root, { ...config, base, runtime });
  } else {
    const dockerfile = posix.join(root, 'Dockerfile');
    if (tree.exists(dockerfile)) throw new Error(`${dockerfile} already exists; edit it instead.`);
    tree.write(dockerfile, dockerfileTemplate(tree, schema.project, root, runtime, base));
    if (Object.keys(config).length > 0) writeProjectImageConfig(tree, root, config);
  }
  if (!schema.skipFormat) await formatFiles(tree);
}

export default configurationGenerator;

/** The runtime a project's files point to: a *.csproj, a pyproject.toml, then a package.json. */
export function detectProjectRuntime(tree: Tree, root: string): ProjectRuntime | undefined {
  if (tree.children(root).some((file) => file.endsWith('.csproj'))) return 'dotnet';
  if (tree.exists(posix.join(root, 'pyproject.toml'))) return 'python';
  if (tree.exists(posix.join(root, 'package.json'))) return 'node';
  return undefined;
}

/** Merges `config` into the `"tessera"` block of project.json, or of package.json when the project has no project.json. */
export function writeProjectImageConfig(tree: Tree, root: string, config: ProjectImageConfig): void {
  const projectJson = posix.join(root, 'project.json');
  const file = tree.exists(projectJson) ? projectJson : posix.join(root, 'package.json');
  if (!tree.exists(file)) throw new Error(`${root} has neither project.json nor package.json to hold the "${CONFIG_KEY}" block.`);
  updateJson(tree, file, (json: Record<string, unknown>) => ({
    ...json,
    [CONFIG_KEY]: { ...(json[CONFIG_KEY] as ProjectImageConfig | undefined), ...config },
  }));
}

function dockerfileTemplate(tree: Tree, projectName: string, root: string, runtime: ProjectRuntime, base: string): string {
  // The block lists only the project until `nx sync` fills in its workspace dependencies.
  const modules = renderModuleBlock([projectName], { [projectName]: root });
  const appDir = posix.join(DEFAULT_WORKDIR, root);
  switch (runtime) {
    case 'node': {
      const main = readJsonField(tree, posix.join(root, 'package.json'), 'main') ?? 'index.js';
      return [
        `FROM ${base}`,
        `WORKDIR ${DEFAULT_WORKDIR}`,
        'ENV NODE_ENV=production',
        'COPY package.json package-lock.json ./',
        'RUN npm ci --omit=dev',
        modules,
        `CMD ["node", "${posix.join(root, main)}"]`,
        '',
      ].join('\n');
    }
    case 'python': {
      const module = (pyprojectName(tree, root) ?? projectName).replace(/-/g, '_');
      return [
        `FROM ${base}`,
        `WORKDIR ${DEFAULT_WORKDIR}`,
        'ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1',
        modules,
        `ENV PYTHONPATH=${appDir}/src:${appDir}`,
        `CMD ["python", "-m", "${module}"]`,
        '',
      ].join('\n');
    }
    case 'dotnet': {
      const csproj = tree.children(root).find((file) => file.endsWith('.csproj'))!;
      const assembly = posix.basename(csproj, '.csproj');
      return [
        `FROM ${base}`,
        `WORKDIR ${DEFAULT_WORKDIR}`,
        '# The output of `dotnet publish`, built by the build target.',
        `COPY ${posix.join('dist', root)} ./`,
        `ENTRYPOINT ["dotnet", "${assembly}.dll"]`,
        '',
      ].join('\n');
    }
  }
}

function readJsonField(tree: Tree, path: string, field: string): string | undefined {
  if (!tree.exists(path)) return undefined;
  const value = (JSON.parse(tree.read(path, 'utf-8')!) as Record<string, unknown>)[field];
  return typeof value === 'string' ? value : undefined;
}

function pyprojectName(tree: Tree, root: string): string | undefined {
  const path = posix.join(root, 'pyproject.toml');
  if (!tree.exists(path)) return undefined;
  return /^\s*name\s*=\s*["']([^"']+)["']/m.exec(tree.read(path, 'utf-8')!)?.[1];
}
