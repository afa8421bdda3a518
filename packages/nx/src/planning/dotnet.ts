import { readdirSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';

const PROJECT_FILE = /\.(cs|fs|vb)proj$/;

/**
 * A .NET project's assembly name: the `<AssemblyName>` of its project file, else the project file's
 * name, as MSBuild does. Undefined when the directory holds no project file (not a .NET project).
 */
export function readAssemblyName(projectDir: string): string | undefined {
  let names: string[];
  try {
    names = readdirSync(projectDir).filter((name) => PROJECT_FILE.test(name)).sort();
  } catch {
    return undefined;
  }
  if (names.length === 0) return undefined;
  const projectName = names[0].replace(PROJECT_FILE, '');
  const declared = /<AssemblyName>\s*([^<]+?)\s*<\/AssemblyName>/.exec(readFileSync(join(projectDir, names[0]), 'utf8'))?.[1];
  if (declared === undefined) return projectName;
  const name = declared.replaceAll('$(MSBuildProjectName)', projectName);
  if (name.includes('$(')) throw new Error(`${join(projectDir, names[0])}: <AssemblyName>${declared}</AssemblyName> uses an MSBuild property Tessera cannot evaluate.`);
  return name;
}

/** A workspace project's assembly in a publish output. */
export interface WorkspaceAssembly {
  project: string;
  assembly: string;
}

/** Files of a publish output (paths relative to it), split by owner. */
export interface PublishOutputSplit {
  /** NuGet (and framework) assemblies with their siblings, native libraries, and anything below a subdirectory that no workspace project owns. */
  thirdParty: string[];
  /** Per workspace project: its assembly files; the app also gets the loose files (appsettings, web.config, wwwroot). */
  byProject: Record<string, string[]>;
}

// Longest first: `Service.runtimeconfig.json` has the stem `Service`, not `Service.runtimeconfig`.
const ASSEMBLY_SUFFIXES = ['.runtimeconfig.dev.json', '.runtimeconfig.json', '.deps.json', '.dll.config', '.exe.config', '.dll', '.exe', '.pdb', '.xml'];
const NATIVE_SUFFIXES = ['.so', '.dylib'];

/**
 * Splits `dotnet publish` output between the workspace projects and the third-party layer.
 * A top-level file belongs to a workspace project when its name is the project's assembly name plus
 * an assembly suffix (`Domain.dll`, `Domain.pdb`, `Domain.xml`, `Service.deps.json`), or, for the
 * app, the bare apphost (`Service`). Satellite assemblies (`de/Domain.resources.dll`) follow their
 * assembly. Other assemblies and native libraries are third-party; remaining top-level files and
 * `wwwroot/` are the app's. Pure: paths are posix, relative to the publish directory.
 */
export function splitPublishOutput(files: readonly string[], assemblies: readonly WorkspaceAssembly[], app: string): PublishOutputSplit {
  const ownerOfAssembly = new Map(assemblies.map(({ project, assembly }) => [assembly, project]));
  const appAssembly = assemblies.find((entry) => entry.project === app)?.assembly;
  const byProject: Record<string, string[]> = Object.fromEntries(assemblies.map(({ project }) => [project, []]));
  if (!(app in byProject)) byProject[app] = [];
  const thirdParty: string[] = [];
  for (const file of [...files].sort()) {
    const owner = ownerOf(file, ownerOfAssembly, app, appAssembly);
    if (owner === undefined) thirdParty.push(file);
    else byProject[owner].push(file);
  }
  return { thirdParty, byProject };
}

function ownerOf(file: string, ownerOfAssembly: ReadonlyMap<string, string>, app: string, appAssembly: string | undefined): string | undefined {
  const name = posix.basename(file);
  if (file.includes('/')) {
    if (file.startsWith('wwwroot/')) return app;
    return name.endsWith('.resources.dll') ? ownerOfAssembly.get(name.slice(0, -'.resources.dll'.length)) : undefined;
  }
  if (name === appAssembly) return app;
  const suffix = ASSEMBLY_SUFFIXES.find((candidate) => name.endsWith(candidate));
  if (suffix) return ownerOfAssembly.get(name.slice(0, -suffix.length));
  if (NATIVE_SUFFIXES.some((candidate) => name.endsWith(candidate) || name.includes(`${candidate}.`))) return undefined;
  return app;
}
