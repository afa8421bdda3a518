import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readAssemblyName, splitPublishOutput } from './dotnet';

describe('readAssemblyName', () => {
  const dirs: string[] = [];
  const projectDir = (files: Record<string, string>) => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-csproj-'));
    dirs.push(dir);
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    return dir;
  };
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('takes the project file name, or its <AssemblyName>', () => {
    expect(readAssemblyName(projectDir({ 'Domain.csproj': '<Project Sdk="Microsoft.NET.Sdk" />', 'README.md': '' }))).toBe('Domain');
    expect(readAssemblyName(projectDir({ 'Api.csproj': '<Project><PropertyGroup>\n  <AssemblyName> Acme.Api </AssemblyName>\n</PropertyGroup></Project>' }))).toBe('Acme.Api');
    expect(readAssemblyName(projectDir({ 'Lib.fsproj': '<Project><PropertyGroup><AssemblyName>$(MSBuildProjectName).Core</AssemblyName></PropertyGroup></Project>' }))).toBe('Lib.Core');
  });

  it('is undefined without a project file, and refuses properties it cannot evaluate', () => {
    expect(readAssemblyName(projectDir({ 'package.json': '{}' }))).toBeUndefined();
    expect(readAssemblyName(join(tmpdir(), 'tessera-no-such-dir'))).toBeUndefined();
    expect(() => readAssemblyName(projectDir({ 'X.csproj': '<AssemblyName>$(RootNamespace)</AssemblyName>' }))).toThrow(/cannot evaluate/);
  });
});

describe('splitPublishOutput', () => {
  const assemblies = [
    { project: 'domain', assembly: 'Domain' },
    { project: 'data', assembly: 'Data' },
    { project: 'service', assembly: 'Service' },
  ];

  it('gives each workspace assembly its files, the app its loose files, and the rest to the NuGet layer', () => {
    const files = [
      'Service',
      'Service.dll',
      'Service.pdb',
      'Service.deps.json',
      'Service.runtimeconfig.json',
      'appsettings.json',
      'appsettings.Production.json',
      'web.config',
      'wwwroot/css/site.css',
      'Domain.dll',
      'Domain.pdb',
      'Domain.xml',
      'Data.dll',
      'Data.Common.dll',
      'Newtonsoft.Json.dll',
      'Newtonsoft.Json.xml',
      'libe_sqlite3.so',
      'de/Domain.resources.dll',
      'de/Humanizer.resources.dll',
      'runtimes/linux-x64/native/libe_sqlite3.so',
    ];
    expect(splitPublishOutput(files, assemblies, 'service')).toEqual({
      byProject: {
        domain: ['Domain.dll', 'Domain.pdb', 'Domain.xml', 'de/Domain.resources.dll'],
        data: ['Data.dll'],
        service: [
          'Service',
          'Service.deps.json',
          'Service.dll',
          'Service.pdb',
          'Service.runtimeconfig.json',
          'appsettings.Production.json',
          'appsettings.json',
          'web.config',
          'wwwroot/css/site.css',
        ],
      },
      thirdParty: ['Data.Common.dll', 'Newtonsoft.Json.dll', 'Newtonsoft.Json.xml', 'de/Humanizer.resources.dll', 'libe_sqlite3.so', 'runtimes/linux-x64/native/libe_sqlite3.so'],
    });
  });

  it('assigns every file exactly once', () => {
    const files = ['Service.dll', 'Domain.dll', 'Data.dll', 'Polly.dll', 'appsettings.json', 'x/y/z.txt'];
    const split = splitPublishOutput(files, assemblies, 'service');
    expect([...split.thirdParty, ...Object.values(split.byProject).flat()].sort()).toEqual([...files].sort());
  });
});
