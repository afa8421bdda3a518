import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pullAndUnpack, pushBusyboxBase, runCommand, runInRootfs, skopeoInspect } from '../../../tools/images/index';
import { startRegistry, type RunningRegistry } from '../../../tools/registry/registry';
import { buildImage, defaultBuildOptions, type BuildOptions } from '../src/index';

let own: RunningRegistry;
const registry = () => own.host;
let work: string;
let base: string;
const logs: string[] = [];

async function context(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(work, 'ctx-'));
  for (const [name, content] of Object.entries(files)) {
    await mkdir(join(dir, name, '..'), { recursive: true });
    await writeFile(join(dir, name), content);
  }
  return dir;
}

function build(dir: string, overrides: Partial<BuildOptions> = {}) {
  return buildImage(
    defaultBuildOptions({
      context: dir,
      insecureRegistries: [registry()],
      buildArgs: { BASE: base },
      log: (line) => logs.push(line),
      ...overrides,
    }),
  );
}

beforeAll(async () => {
  own = await startRegistry();
  work = await mkdtemp(join(tmpdir(), 'tessera-build-test-'));
  base = (await pushBusyboxBase(registry(), 'engine/busybox')).reference;
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
  await own.stop();
});

describe('buildImage', () => {
  it('appends COPY and metadata to a registry base without downloading its layers, and pushes a runnable image', async () => {
    const dir = await context({
      Dockerfile: [
        'ARG BASE',
        'FROM ${BASE}',
        'ENV GREETING=hello',
        'WORKDIR /app',
        'COPY hello.sh ./',
        'LABEL stage=final',
        'EXPOSE 8080',
        'ENTRYPOINT ["/bin/sh", "/app/hello.sh"]',
      ].join('\n'),
      'hello.sh': 'echo "$GREETING from $(pwd)"\n',
    });
    const ref = `${registry()}/engine/copy-only:1`;
    const baseLayers = (await skopeoInspect(base, 'raw')).layers.map((l: { digest: string }) => l.digest);
    const before = blobGets(baseLayers);
    const result = await build(dir, { destinations: [ref] });
    expect(blobGets(baseLayers)).toBe(before);
    const manifest = await skopeoInspect(ref, 'raw');
    expect(manifest.layers.slice(0, baseLayers.length).map((l: { digest: string }) => l.digest)).toEqual(baseLayers);
    const config = await skopeoInspect(ref, 'config');
    expect(config.config.Env).toContain('GREETING=hello');
    expect(config.config.WorkingDir).toBe('/app');
    expect(config.config.Labels).toEqual({ stage: 'final' });
    expect(config.config.ExposedPorts).toEqual({ '8080/tcp': {} });
    expect(config.history.filter((h: { empty_layer?: boolean }) => !h.empty_layer)).toHaveLength(manifest.layers.length);
    expect(result.digest).toMatch(/^sha256:/);
    const image = await pullAndUnpack(ref);
    try {
      const run = await runInRootfs(image.rootfs, image.process.args!, { env: image.process.env, cwd: image.process.cwd });
      expect(run.stdout.trim()).toBe('hello from /app');
    } finally {
      await image.remove();
    }
  });

  it('runs RUN in a sandbox, snapshots deletions as whiteouts, and builds multi-stage images', async () => {
    const dir = await context({
      Dockerfile: [
        'ARG BASE',
        'FROM ${BASE} AS build',
        'RUN mkdir -p /out && echo built > /out/result.txt',
        'FROM ${BASE}',
        'RUN rm /bin/vi && echo "$(id -u):$(pwd)" > /whoami',
        'COPY --from=build /out/result.txt /result.txt',
        'CMD ["cat", "/result.txt", "/whoami"]',
      ].join('\n'),
    });
    const ref = `${registry()}/engine/multi:1`;
    const baseLayers = (await skopeoInspect(base, 'raw')).layers.map((l: { digest: string }) => l.digest);
    const before = blobGets(baseLayers);
    await build(dir, { destinations: [ref] });
    // A RUN needs the rootfs, so the base layers are fetched now.
    expect(blobGets(baseLayers)).toBeGreaterThan(before);
    const image = await pullAndUnpack(ref);
    try {
      const run = await runInRootfs(image.rootfs, image.process.args!, { env: image.process.env });
      expect(run.stdout).toBe('built\n0:/\n');
      await expect(readFile(join(image.rootfs, 'bin/vi'))).rejects.toThrow();
      await expect(readFile(join(image.rootfs, 'bin/sh'))).resolves.toBeDefined();
    } finally {
      await image.remove();
    }
  });

  it('fails a RUN that exits non-zero with the command and its code', async () => {
    const dir = await context({ Dockerfile: 'ARG BASE\nFROM ${BASE}\nRUN exit 3\n' });
    await expect(build(dir, { noPush: true })).rejects.toThrow(/Dockerfile:3: RUN .*exit 3.* non-zero code: 3/);
  });

  it('writes an OCI layout that umoci unpacks, with no registry', async () => {
    const dir = await context({ Dockerfile: 'FROM scratch\nCOPY a.txt /a.txt\n', 'a.txt': 'A\n' });
    const layout = join(work, 'layout');
    await build(dir, { noPush: true, ociLayoutPath: layout, reproducible: true });
    const bundle = join(work, 'bundle');
    await runCommand('umoci', ['unpack', '--image', `${layout}:latest`, bundle]);
    expect(await readFile(join(bundle, 'rootfs/a.txt'), 'utf8')).toBe('A\n');
  });

  it('gives the same digest for the same inputs with --reproducible', async () => {
    const dir = await context({ Dockerfile: 'FROM scratch\nCOPY a.txt /a.txt\n', 'a.txt': 'A\n' });
    const a = await build(dir, { noPush: true, reproducible: true });
    const b = await build(dir, { noPush: true, reproducible: true });
    expect(a.digest).toBe(b.digest);
  });
});

/** GETs of these blobs in the registry's access log (mounts and HEADs move no bytes). */
function blobGets(digests: string[]): number {
  return own
    .log()
    .split('\n')
    .filter((line) => /"GET \/v2\/[^ ]*\/blobs\/sha256:/.test(line) && digests.some((d) => line.includes(d))).length;
}
