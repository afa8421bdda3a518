import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { prng, randomStream } from './random.mjs';

/**
 * The bench monorepo: 12 apps (6 Node, 3 Python, 3 .NET), 40 libraries with shared dependencies,
 * third-party trees and an in-repo runtime base. Seeded: the same seed and scale give the same bytes.
 * Sizes at scale 1: node_modules ~20,000 files / ~200 MB, site-packages ~8,000 files, .NET ~60 MB.
 */
/** Bumped when the generated content changes, so cached copies in the work directory are not reused. */
const GENERATOR_VERSION = 2;

export const LANGUAGES = { node: { apps: 6, libs: 24 }, python: { apps: 3, libs: 8 }, dotnet: { apps: 3, libs: 8 } };

function write(file, content) {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, content);
}

/** Code-like text: a Zipf-ish vocabulary of identifiers in statement templates, so gzip sees realistic redundancy. */
export function textGenerator(seed, label) {
  const random = prng(seed, label);
  const syllables = ['get', 'set', 're', 'on', 'to', 'is', 'make', 'load', 'parse', 'node', 'val', 'map', 'list', 'key', 'err', 'opt', 'cfg', 'buf', 'str', 'id', 'ctx', 'req', 'res', 'data', 'type', 'item', 'path', 'name', 'src', 'dst'];
  const words = Array.from({ length: 3000 }, () => {
    const count = random.int(1, 3);
    let word = '';
    for (let i = 0; i < count; i++) {
      const s = random.pick(syllables);
      word += i === 0 ? s : s[0].toUpperCase() + s.slice(1);
    }
    return word + (random.next() < 0.3 ? random.int(0, 99) : '');
  });
  const id = () => words[random.skewed(words.length)];
  const templates = {
    js: [
      () => `const ${id()} = ${id()}.${id()}(${id()}, '${id()}');`,
      () => `function ${id()}(${id()}, ${id()}) {`,
      () => `  if (${id()} === ${random.int(0, 1000)}) return ${id()};`,
      () => `  return ${id()}.${id()}(${id()});`,
      () => '}',
      () => `// ${id()} ${id()} ${id()} when the ${id()} is ${id()}`,
      () => `exports.${id()} = ${id()};`,
      () => `  for (let i = 0; i < ${id()}.length; i++) ${id()}[i] = ${id()}(${id()}[i]);`,
    ],
    py: [
      () => `def ${id()}(${id()}, ${id()}=None):`,
      () => `    ${id()} = ${id()}.${id()}(${id()})`,
      () => `    if ${id()} is None:`,
      () => `        return ${id()}`,
      () => `# ${id()} ${id()} ${id()}`,
      () => `class ${id()}(${id()}):`,
      () => `from .${id()} import ${id()}, ${id()}`,
    ],
    cs: [
      () => `    public ${id()} ${id()}(${id()} ${id()}) => ${id()}.${id()}(${id()});`,
      () => `    private readonly ${id()} _${id()};`,
      () => `    // ${id()} ${id()} ${id()}`,
      () => '    {',
      () => '    }',
    ],
  };
  /** About `size` bytes of source in a language's style. */
  return (kind, size) => {
    const lines = [];
    for (let length = 0; length < size; ) {
      const line = random.pick(templates[kind])();
      lines.push(line);
      length += line.length + 1;
    }
    return `${lines.join('\n')}\n`;
  };
}

function nodeModules(root, seed, scale, text) {
  const random = prng(seed, 'node_modules');
  const targetFiles = Math.round(20_000 * scale);
  const packages = [];
  let files = 0;
  let bytes = 0;
  for (let index = 0; files < targetFiles; index++) {
    const name = index % 7 === 0 ? `@scope${index % 5}/pkg-${index}` : `pkg-${index}`;
    const version = `${random.int(0, 9)}.${random.int(0, 30)}.${random.int(0, 20)}`;
    const dir = join(root, 'node_modules', name);
    packages.push({ name, version });
    write(join(dir, 'package.json'), `${JSON.stringify({ name, version, main: 'index.js', license: 'MIT' }, null, 2)}\n`);
    write(join(dir, 'README.md'), text('js', random.int(500, 4000)).replace(/[;{}()]/g, ' '));
    write(join(dir, 'LICENSE'), 'MIT License\n\nPermission is hereby granted, free of charge, to any person obtaining a copy of this software.\n');
    const moduleFiles = random.int(5, 45);
    for (let f = 0; f < moduleFiles; f++) {
      // Mostly small files, a few large bundles: mean about 10 KB, as in real node_modules.
      const size = 200 + Math.floor(53_000 * random.next() ** 4);
      const file = f === 0 ? 'index.js' : `lib/${f % 4 === 0 ? 'internal/' : ''}m${f}.${f % 9 === 0 ? 'd.ts' : 'js'}`;
      const body = text('js', size);
      write(join(dir, file), body);
      bytes += body.length;
    }
    files += moduleFiles + 3;
  }
  return { packages, files, bytes };
}

function sitePackages(root, seed, scale, text) {
  const random = prng(seed, 'site-packages');
  const base = join(root, 'third_party/python/site-packages');
  const requirements = [];
  let files = 0;
  for (let index = 0; files < Math.round(8000 * scale); index++) {
    const name = `pylib_${index}`;
    const version = `${random.int(0, 5)}.${random.int(0, 20)}`;
    requirements.push(`${name}==${version}`);
    const count = random.int(5, 60);
    for (let f = 0; f < count; f++) write(join(base, name, f === 0 ? '__init__.py' : `mod_${f}.py`), text('py', 200 + Math.floor(20_000 * random.next() ** 4)));
    if (index % 6 === 0) {
      const native = randomStream(seed, `so-${index}`);
      write(join(base, name, '_speedups.so'), native.next(random.int(50_000, 600_000)));
      files++;
    }
    write(join(base, `${name}-${version}.dist-info/METADATA`), `Metadata-Version: 2.1\nName: ${name}\nVersion: ${version}\n`);
    write(join(base, `${name}-${version}.dist-info/RECORD`), `${name}/__init__.py,,\n`);
    files += count + 2;
  }
  write(join(root, 'third_party/python/requirements.txt'), `${requirements.join('\n')}\n`);
  return { files };
}

function dotnetAssemblies(root, seed, scale) {
  const random = prng(seed, 'dotnet');
  const target = Math.round(60e6 * scale);
  const references = [];
  let bytes = 0;
  for (let index = 0; bytes < target; index++) {
    const name = `Vendor${index % 9}.Package${index}`;
    const size = 20_000 + Math.floor(2_000_000 * random.next() ** 3);
    // Assemblies compress about 2:1: half random bytes, half metadata-like text.
    const noise = randomStream(seed, `dll-${index}`).next(size >> 1);
    const strings = Buffer.from(`${name} System.Runtime System.Collections.Generic `.repeat(Math.ceil(size / 2 / 60))).subarray(0, size - noise.length);
    write(join(root, 'third_party/dotnet/packages', `${name}.dll`), Buffer.concat([noise, strings]));
    references.push({ name, version: `${random.int(1, 8)}.0.${random.int(0, 9)}` });
    bytes += size;
  }
  write(join(root, 'third_party/dotnet/packages.lock.json'), `${JSON.stringify({ version: 1, dependencies: references }, null, 2)}\n`);
  return { bytes };
}

/** Busybox rootfs as the in-repo runtime base (applet links made inside the rootfs, never on the host). */
function runtimeBase(root) {
  const rootfs = join(root, 'base/runtime/rootfs');
  mkdirSync(join(rootfs, 'bin'), { recursive: true });
  copyFileSync('/bin/busybox', join(rootfs, 'bin/busybox'));
  chmodSync(join(rootfs, 'bin/busybox'), 0o755);
  for (const applet of execFileSync('/bin/busybox', ['--list-full'], { encoding: 'utf8' }).split('\n').filter(Boolean)) {
    if (applet === 'bin/busybox') continue;
    mkdirSync(join(rootfs, dirname(applet)), { recursive: true });
    try {
      symlinkSync('/bin/busybox', join(rootfs, applet));
    } catch (error) {
      if (error.code !== 'EEXIST') throw error;
    }
  }
  write(join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/app:/bin/sh\n');
  write(join(rootfs, 'etc/group'), 'root:x:0:\napp:x:1000:\n');
  mkdirSync(join(rootfs, 'tmp'), { recursive: true });
  write(join(root, 'base/runtime/Dockerfile'), 'FROM scratch\nCOPY rootfs/ /\nENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n');
}

const manifestFile = { node: 'package.json', python: 'pyproject.toml', dotnet: 'project.csproj' };
const sourceKind = { node: 'js', python: 'py', dotnet: 'cs' };

function moduleManifest(language, name, deps, npmDeps = []) {
  if (language === 'node') {
    const dependencies = Object.fromEntries([...deps.map((d) => [`@bench/${d}`, '*']), ...npmDeps.map((p) => [p.name, `^${p.version}`])]);
    return `${JSON.stringify({ name: `@bench/${name}`, version: '1.0.0', dependencies }, null, 2)}\n`;
  }
  if (language === 'python') return `[project]\nname = "${name}"\nversion = "1.0.0"\ndependencies = [${deps.map((d) => `"${d}"`).join(', ')}]\n`;
  return `<Project Sdk="Microsoft.NET.Sdk">\n  <ItemGroup>\n${deps.map((d) => `    <ProjectReference Include="../../libs/${d}/project.csproj" />`).join('\n')}\n  </ItemGroup>\n</Project>\n`;
}

/** Third-party tree and its manifest(s) per language, as paths in the repository. */
const thirdParty = {
  node: { manifests: ['package.json', 'package-lock.json'], tree: 'node_modules', installTo: '/app/node_modules', prune: "find /app/node_modules -name README.md -exec rm {} +" },
  python: { manifests: ['third_party/python/requirements.txt'], tree: 'third_party/python/site-packages', installTo: '/app/site-packages', prune: "find /app/site-packages -name RECORD -exec rm {} +" },
  dotnet: { manifests: ['third_party/dotnet/packages.lock.json'], tree: 'third_party/dotnet/packages', installTo: '/app/packages', prune: 'true' },
};

function dockerfiles(app, closure) {
  const tp = thirdParty[app.language];
  const modules = [...closure.map((lib) => `libs/${lib}`), `apps/${app.name}`];
  const header = ['ARG RUNTIME_IMAGE', ''];
  const install = `RUN mkdir -p /app && cp -a /src/${tp.tree} ${tp.installTo} && ${tp.prune}`;
  const build = `RUN sh /src/tools/build.sh /app/dist ${modules.map((m) => `/src/${m}`).join(' ')}`;
  const final = [
    'FROM ${RUNTIME_IMAGE}',
    'WORKDIR /app',
    `COPY --from=deps ${tp.installTo} ${tp.installTo}`,
    'COPY --from=build /app/dist /app/dist',
    `CMD ["/bin/sh", "-c", "ls /app/dist"]`,
  ];
  const naive = [
    ...header,
    'FROM ${RUNTIME_IMAGE} AS deps',
    'WORKDIR /src',
    'COPY . .',
    install,
    '',
    'FROM ${RUNTIME_IMAGE} AS build',
    'WORKDIR /src',
    'COPY . .',
    build,
    '',
    ...final,
  ];
  const optimised = [
    ...header,
    'FROM ${RUNTIME_IMAGE} AS deps',
    'WORKDIR /src',
    ...tp.manifests.map((file) => `COPY ${file} /src/${file}`),
    `COPY ${tp.tree} /src/${tp.tree}`,
    install,
    '',
    'FROM ${RUNTIME_IMAGE} AS build',
    'WORKDIR /src',
    'COPY tools/build.sh /src/tools/build.sh',
    ...modules.map((m) => `COPY ${m}/${manifestFile[app.language]} /src/${m}/${manifestFile[app.language]}`),
    ...modules.map((m) => `COPY ${m}/src /src/${m}/src`),
    build,
    '',
    ...final,
  ];
  return { naive: `${naive.join('\n')}\n`, optimised: `${optimised.join('\n')}\n` };
}

export function generateMonorepo(root, { seed = 1, scale = 1 } = {}) {
  const random = prng(seed, 'graph');
  const text = textGenerator(seed, 'sources');
  const libs = [];
  const apps = [];
  for (const [language, counts] of Object.entries(LANGUAGES)) {
    const ofLanguage = [];
    for (let i = 0; i < counts.libs; i++) {
      // Earlier libraries are the shared core: later ones depend on them, so sharing is uneven, as in real repos.
      const deps = new Set();
      for (let d = random.int(0, Math.min(3, i)); d > 0; d--) deps.add(ofLanguage[random.skewed(i)].name);
      const lib = { name: `${language}-lib-${String(i).padStart(2, '0')}`, language, deps: [...deps].sort() };
      ofLanguage.push(lib);
      libs.push(lib);
    }
    for (let i = 0; i < counts.apps; i++) {
      const deps = new Set([ofLanguage[0].name]);
      for (let d = random.int(2, 5); d > 0; d--) deps.add(ofLanguage[random.int(0, ofLanguage.length - 1)].name);
      apps.push({ name: `${language}-app-${i}`, language, deps: [...deps].sort() });
    }
  }
  const byName = new Map(libs.map((lib) => [lib.name, lib]));
  const closureOf = (deps) => {
    const seen = new Set();
    const visit = (name) => {
      if (seen.has(name)) return;
      seen.add(name);
      byName.get(name).deps.forEach(visit);
    };
    deps.forEach(visit);
    return [...seen].sort();
  };

  const node = nodeModules(root, seed, scale, text);
  // npm dependencies of Node modules: popular packages shared widely; the core library always uses pkg-1 (S5 changes it).
  const npmDepsOf = (module) => {
    if (module.language !== 'node') return [];
    const chosen = new Set(module.name === 'node-lib-00' ? [node.packages[1]] : []);
    for (let count = random.int(2, 8); count > 0; count--) chosen.add(node.packages[random.skewed(node.packages.length)]);
    return [...chosen].sort((a, b) => (a.name < b.name ? -1 : 1));
  };
  for (const module of [...libs.map((lib) => ({ ...lib, kind: 'libs' })), ...apps.map((app) => ({ ...app, kind: 'apps' }))]) {
    const dir = join(root, module.kind, module.name);
    write(join(dir, manifestFile[module.language]), moduleManifest(module.language, module.name, module.deps, npmDepsOf(module)));
    write(join(dir, 'project.json'), `${JSON.stringify({ name: module.name, projectType: module.kind === 'apps' ? 'application' : 'library', tags: [`lang:${module.language}`], implicitDependencies: module.deps }, null, 2)}\n`);
    const fileCount = random.int(8, 30);
    for (let f = 0; f < fileCount; f++) write(join(dir, 'src', `file${f}.${sourceKind[module.language]}`), text(sourceKind[module.language], random.int(500, 12_000)));
    if (module.kind === 'apps') {
      const { naive, optimised } = dockerfiles(module, closureOf(module.deps));
      write(join(dir, 'Dockerfile.naive'), naive);
      write(join(dir, 'Dockerfile.optimised'), optimised);
    }
  }

  const python = sitePackages(root, seed, scale, text);
  const dotnet = dotnetAssemblies(root, seed, scale);
  runtimeBase(root);
  write(join(root, 'tools/build.sh'), '#!/bin/sh\n# The bench "build": concatenate each module\'s sources into one file per module.\nset -e\nout=$1; shift\nmkdir -p "$out"\nfor module in "$@"; do cat "$module"/src/* > "$out/$(basename "$module").bundle"; done\n');
  const nodeDeps = Object.fromEntries(node.packages.map((p) => [p.name, p.version]));
  write(join(root, 'package.json'), `${JSON.stringify({ name: 'bench-monorepo', private: true, workspaces: ['apps/*', 'libs/*'], dependencies: nodeDeps }, null, 2)}\n`);
  const lockPackages = { '': { name: 'bench-monorepo', dependencies: nodeDeps }, ...Object.fromEntries(node.packages.map((p) => [`node_modules/${p.name}`, { version: p.version, license: 'MIT' }])) };
  write(join(root, 'package-lock.json'), `${JSON.stringify({ name: 'bench-monorepo', lockfileVersion: 3, requires: true, packages: lockPackages }, null, 2)}\n`);
  write(join(root, 'nx.json'), `${JSON.stringify({ $schema: './node_modules/nx/schemas/nx-schema.json', namedInputs: { default: ['{projectRoot}/**/*'] } }, null, 2)}\n`);
  write(join(root, '.dockerignore'), '.git\n**/Dockerfile.*\n');
  return {
    root,
    apps: apps.map((app) => ({ ...app, closure: closureOf(app.deps) })),
    libs,
    nodeModules: { files: node.files, bytes: node.bytes },
    sitePackages: python,
    dotnet,
  };
}

/**
 * A pruned build context for one app, as `nx prune`-style tools make it for a naive `COPY . .`: the
 * app, its library closure, the build script, and its stack's manifests and third-party tree. Made of
 * hard links, so it is cheap and follows the working copy's contents at the time it is made.
 */
export async function prunedContext(workRoot, app, destination) {
  const { rmSync } = await import('node:fs');
  rmSync(destination, { recursive: true, force: true });
  const tp = thirdParty[app.language];
  const paths = ['tools/build.sh', ...tp.manifests, tp.tree, ...app.closure.map((lib) => `libs/${lib}`), `apps/${app.name}`];
  for (const path of paths) {
    mkdirSync(dirname(join(destination, path)), { recursive: true });
    execFileSync('cp', ['-al', join(workRoot, path), join(destination, path)]);
  }
  return destination;
}

/** The monorepo for a seed and scale, generated once into the work directory and reused by later runs. */
export async function ensureMonorepo(workDir, seed, scale) {
  const { existsSync, readFileSync, rmSync } = await import('node:fs');
  const root = join(workDir, `monorepo-v${GENERATOR_VERSION}-seed${seed}-scale${scale}`);
  const marker = `${root}.json`;
  // The marker alone is not enough: a cleaned temp dir can take the tree and leave the marker.
  if (existsSync(marker) && existsSync(root)) return JSON.parse(readFileSync(marker, 'utf8'));
  rmSync(root, { recursive: true, force: true });
  const summary = generateMonorepo(root, { seed, scale });
  writeFileSync(marker, JSON.stringify(summary));
  return summary;
}
