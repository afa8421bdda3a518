import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pullAndUnpack, pushBusyboxBase, runCommand, runInRootfs, skopeoInspect } from '../../../tools/images/index';
import { startRegistry, type RunningRegistry } from '../../../tools/registry/registry';
import { buildImage, defaultBuildOptions, type BuildOptions } from '../src/index';
import { writeContext } from './cli-helpers';

let own: RunningRegistry;
const registry = () => own.host;
let work: string;
let base: string;
const logs: string[] = [];

const context = (files: Record<string, string>) => writeContext(work, files);

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

  it('runs ONBUILD triggers of the base, sets base annotations, adds --label and writes the digest files', async () => {
    const parentDir = await context({ Dockerfile: 'ARG BASE\nFROM ${BASE}\nONBUILD COPY marker.txt /onbuild-marker.txt\nONBUILD RUN echo triggered > /triggered\n' });
    const parentRef = `${registry()}/engine/parent:1`;
    await build(parentDir, { destinations: [parentRef] });
    // skopeo's parsed config drops Docker's OnBuild; read the raw config blob.
    const rawConfig = async (ref: string) => JSON.parse((await runCommand('skopeo', ['inspect', '--config', '--raw', '--tls-verify=false', `docker://${ref}`])).stdout);
    expect((await rawConfig(parentRef)).config.OnBuild).toEqual(['COPY marker.txt /onbuild-marker.txt', 'RUN echo triggered > /triggered']);

    const dir = await context({ Dockerfile: `FROM ${parentRef}\nCMD ["cat", "/onbuild-marker.txt", "/triggered"]\n`, 'marker.txt': 'from child context\n' });
    const ref = `${registry()}/engine/child:2`;
    const files = { digest: join(work, 'digest'), withDigest: join(work, 'name-digest'), tagDigest: join(work, 'name-tag-digest') };
    const result = await build(dir, {
      destinations: [ref],
      labels: { team: 'platform' },
      digestFile: files.digest,
      imageNameWithDigestFile: files.withDigest,
      imageNameTagWithDigestFile: files.tagDigest,
    });
    const config = await rawConfig(ref);
    expect(config.config.OnBuild ?? null).toBeNull();
    expect(config.config.Labels).toEqual({ team: 'platform' });
    const manifest = await skopeoInspect(ref, 'raw');
    expect(manifest.annotations['org.opencontainers.image.base.name']).toBe(`${registry()}/engine/parent:1`);
    expect(manifest.annotations['org.opencontainers.image.base.digest']).toMatch(/^sha256:/);
    expect(await readFile(files.digest, 'utf8')).toBe(result.digest);
    expect(await readFile(files.withDigest, 'utf8')).toBe(`${registry()}/engine/child@${result.digest}\n`);
    expect(JSON.parse(await readFile(files.tagDigest, 'utf8'))).toEqual([{ image: `${registry()}/engine/child`, tag: '2', digest: result.digest }]);
    const image = await pullAndUnpack(ref);
    try {
      const run = await runInRootfs(image.rootfs, image.process.args!, { env: image.process.env });
      expect(run.stdout).toBe('from child context\ntriggered\n');
    } finally {
      await image.remove();
    }
  });

  it('makes one layer per stage with --single-snapshot', async () => {
    const dir = await context({
      Dockerfile: 'ARG BASE\nFROM ${BASE}\nRUN echo a > /a\nCOPY b.txt /b\nRUN echo c > /c && rm /bin/vi\n',
      'b.txt': 'b\n',
    });
    const ref = `${registry()}/engine/single:1`;
    await build(dir, { destinations: [ref], singleSnapshot: true });
    const baseLayers = (await skopeoInspect(base, 'raw')).layers.length;
    expect((await skopeoInspect(ref, 'raw')).layers).toHaveLength(baseLayers + 1);
    const image = await pullAndUnpack(ref);
    try {
      expect(await readFile(join(image.rootfs, 'a'), 'utf8')).toBe('a\n');
      expect(await readFile(join(image.rootfs, 'b'), 'utf8')).toBe('b\n');
      expect(await readFile(join(image.rootfs, 'c'), 'utf8')).toBe('c\n');
      await expect(readFile(join(image.rootfs, 'bin/vi'))).rejects.toThrow();
    } finally {
      await image.remove();
    }
  });

  it('keeps RUN cache mounts between builds and out of the image, and binds files from another stage', async () => {
    const cacheDir = join(work, 'cache');
    const dir = await context({
      Dockerfile: [
        'ARG BASE',
        'FROM ${BASE} AS tools',
        'RUN echo tool-output > /tool.txt',
        'FROM ${BASE}',
        'RUN --mount=type=cache,target=/var/cache/app echo run >> /var/cache/app/runs && wc -l < /var/cache/app/runs > /runs-seen',
        'RUN --mount=type=bind,from=tools,source=/tool.txt,target=/mnt/tool.txt cp /mnt/tool.txt /copied.txt',
      ].join('\n'),
    });
    const layout = join(work, 'mounts-layout');
    await build(dir, { noPush: true, cacheDir, ociLayoutPath: layout });
    await build(dir, { noPush: true, cacheDir, ociLayoutPath: layout });
    const bundle = join(work, 'mounts-bundle');
    await runCommand('umoci', ['unpack', '--image', `${layout}:latest`, bundle]);
    expect((await readFile(join(bundle, 'rootfs/runs-seen'), 'utf8')).trim()).toBe('2');
    expect(await readFile(join(bundle, 'rootfs/copied.txt'), 'utf8')).toBe('tool-output\n');
    await expect(readFile(join(bundle, 'rootfs/var/cache/app/runs'))).rejects.toThrow();
    await expect(readFile(join(bundle, 'rootfs/mnt/tool.txt'))).rejects.toThrow();
  });

  it('ADD unpacks local archives and fetches URLs checked with --checksum', async () => {
    const dir = await context({ 'payload/inner.txt': 'inside the archive\n', 'served.txt': 'served over http\n' });
    await runCommand('tar', ['-czf', join(dir, 'payload.tar.gz'), '-C', join(dir, 'payload'), '.']);
    const { createServer } = await import('node:http');
    const body = 'served over http\n';
    const server = createServer((_req, res) => res.end(body)).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const port = (server.address() as { port: number }).port;
    const { createHash } = await import('node:crypto');
    const checksum = 'sha256:' + createHash('sha256').update(body).digest('hex');
    try {
      await writeFile(
        join(dir, 'Dockerfile'),
        `FROM scratch\nADD payload.tar.gz /unpacked/\nADD --checksum=${checksum} http://127.0.0.1:${port}/files/remote.txt /remote/\n`,
      );
      const layout = join(work, 'add-layout');
      await build(dir, { noPush: true, ociLayoutPath: layout });
      const bundle = join(work, 'add-bundle');
      await runCommand('umoci', ['unpack', '--image', `${layout}:latest`, bundle]);
      expect(await readFile(join(bundle, 'rootfs/unpacked/inner.txt'), 'utf8')).toBe('inside the archive\n');
      expect(await readFile(join(bundle, 'rootfs/remote/remote.txt'), 'utf8')).toBe(body);

      await writeFile(join(dir, 'Dockerfile'), `FROM scratch\nADD --checksum=sha256:${'0'.repeat(64)} http://127.0.0.1:${port}/x.txt /x.txt\n`);
      await expect(build(dir, { noPush: true })).rejects.toThrow(/does not match|checksum/);
    } finally {
      server.close();
    }
  });

  it('writes a docker-archive that skopeo reads', async () => {
    const dir = await context({ Dockerfile: 'ARG BASE\nFROM ${BASE}\nCOPY a.txt /a.txt\n', 'a.txt': 'A\n' });
    const tarPath = join(work, 'image.tar');
    await build(dir, { noPush: true, tarPath, destinations: [`${registry()}/engine/archived:1`] });
    const { stdout } = await runCommand('skopeo', ['inspect', `docker-archive:${tarPath}`]);
    expect(JSON.parse(stdout).Layers.length).toBeGreaterThan(1);
  });
});

/** GETs of these blobs in the registry's access log (mounts and HEADs move no bytes). */
function blobGets(digests: string[]): number {
  return own
    .log()
    .split('\n')
    .filter((line) => /"GET \/v2\/[^ ]*\/blobs\/sha256:/.test(line) && digests.some((d) => line.includes(d))).length;
}
