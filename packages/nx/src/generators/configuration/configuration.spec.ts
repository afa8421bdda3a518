import { describe, expect, it } from 'vitest';
import { addProjectConfiguration, readJson, writeJson } from '@nx/devkit';
import { createTreeWithEmptyWorkspace } from '@nx/devkit/testing';
import { configurationGenerator } from './configuration';

function workspaceWith(root: string, files: Record<string, string>) {
  const tree = createTreeWithEmptyWorkspace();
  addProjectConfiguration(tree, 'app', { root });
  for (const [file, content] of Object.entries(files)) tree.write(`${root}/${file}`, content);
  return tree;
}

describe('configuration generator', () => {
  it('writes a Node Dockerfile with a module block', async () => {
    const tree = workspaceWith('apps/app', { 'package.json': JSON.stringify({ name: 'app', main: 'dist/main.js' }) });
    await configurationGenerator(tree, { project: 'app', skipFormat: true });
    const dockerfile = tree.read('apps/app/Dockerfile', 'utf-8')!;
    expect(dockerfile).toContain('FROM node:22-slim\n');
    expect(dockerfile).toContain('# tessera:modules begin\nCOPY apps/app ./apps/app\n# tessera:modules end\n');
    expect(dockerfile).toContain('CMD ["node", "apps/app/dist/main.js"]');
  });

  it('writes Python and .NET Dockerfiles from pyproject.toml and *.csproj', async () => {
    const python = workspaceWith('apps/app', { 'pyproject.toml': '[project]\nname = "my-svc"\nversion = "1.0"\n' });
    await configurationGenerator(python, { project: 'app', skipFormat: true });
    expect(python.read('apps/app/Dockerfile', 'utf-8')).toContain('CMD ["python", "-m", "my_svc"]');

    const dotnet = workspaceWith('apps/app', { 'Shop.Web.csproj': '<Project Sdk="Microsoft.NET.Sdk.Web"></Project>' });
    await configurationGenerator(dotnet, { project: 'app', skipFormat: true, repository: 'reg.local/shop' });
    const dockerfile = dotnet.read('apps/app/Dockerfile', 'utf-8')!;
    expect(dockerfile).toContain('FROM mcr.microsoft.com/dotnet/aspnet:8.0');
    expect(dockerfile).toContain('ENTRYPOINT ["dotnet", "Shop.Web.dll"]');
    expect(readJson(dotnet, 'apps/app/project.json').tessera).toEqual({ repository: 'reg.local/shop' });
  });

  it('writes a layered configuration without a Dockerfile, into package.json when there is no project.json', async () => {
    const tree = createTreeWithEmptyWorkspace();
    writeJson(tree, 'libs/pkg/package.json', { name: 'pkg', nx: {} });
    await configurationGenerator(tree, { project: 'pkg', mode: 'layered', base: 'node:22-alpine', skipFormat: true });
    expect(tree.exists('libs/pkg/Dockerfile')).toBe(false);
    expect(readJson(tree, 'libs/pkg/package.json').tessera).toEqual({ base: 'node:22-alpine', runtime: 'node' });
  });

  it('refuses an unknown runtime and an existing Dockerfile', async () => {
    const bare = workspaceWith('apps/app', {});
    await expect(configurationGenerator(bare, { project: 'app', skipFormat: true })).rejects.toThrow('Pass --runtime');
    const existing = workspaceWith('apps/app', { Dockerfile: 'FROM x\n' });
    await expect(configurationGenerator(existing, { project: 'app', runtime: 'node', skipFormat: true })).rejects.toThrow(
      'already exists',
    );
  });
});
