import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { scratchImage } from './base-image';
import { copyImage, MediaType, ociLayoutDestination, selectManifest, type ImageIndex, type ImageManifest } from '@tessera/oci';
import { assembleLayeredImage, BuiltIndex, configPlatform, layerEntriesFromFiles, writeReproducibleLayer } from './layered';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((dir) => rmSync(dir, { recursive: true, force: true })));

function tree(mode: number, mtime: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-layered-'));
  dirs.push(dir);
  mkdirSync(join(dir, 'src'));
  writeFileSync(join(dir, 'src/index.js'), 'module.exports = 1;\n');
  writeFileSync(join(dir, 'run.sh'), '#!/bin/sh\n');
  chmodSync(join(dir, 'src/index.js'), mode);
  chmodSync(join(dir, 'run.sh'), mode | 0o100);
  symlinkSync('src/index.js', join(dir, 'main.js'));
  for (const file of ['src/index.js', 'run.sh', 'src', '.']) utimesSync(join(dir, file), mtime, mtime);
  return dir;
}

describe('layered images', () => {
  it('gives the same layer digest for the same files whatever their host mtime, umask or location', async () => {
    const out = mkdtempSync(join(tmpdir(), 'tessera-layered-out-'));
    dirs.push(out);
    const write = async (dir: string) =>
      writeReproducibleLayer(await layerEntriesFromFiles([{ hostPath: dir, imagePath: '/app/libs/shared' }]), { outputDir: out, mtime: new Date(0) });
    const first = await write(tree(0o644, 1_000));
    const second = await write(tree(0o664, 2_000_000));
    expect(second.digest).toBe(first.digest);
    const changed = tree(0o644, 1_000);
    writeFileSync(join(changed, 'src/index.js'), 'module.exports = 2;\n');
    expect((await write(changed)).digest).not.toBe(first.digest);
  });

  it('adds parents, normalises modes and owners, and keeps symlinks as links', async () => {
    const entries = await layerEntriesFromFiles([{ hostPath: tree(0o600, 1), imagePath: '/app/libs/a' }]);
    expect([...entries].sort((a, b) => (a.path < b.path ? -1 : 1)).map((e) => [e.path, e.type, e.mode.toString(8), e.uid, e.gid])).toEqual([
      ['app', 'directory', '755', 0, 0],
      ['app/libs', 'directory', '755', 0, 0],
      ['app/libs/a', 'directory', '755', 0, 0],
      ['app/libs/a/main.js', 'symlink', '777', 0, 0],
      ['app/libs/a/run.sh', 'file', '755', 0, 0],
      ['app/libs/a/src', 'directory', '755', 0, 0],
      ['app/libs/a/src/index.js', 'file', '644', 0, 0],
    ]);
    await expect(layerEntriesFromFiles([{ hostPath: '/nonexistent/x', imagePath: '/app/x' }])).rejects.toThrow('layer source not found');
  });

  it('appends layers to the base config with workdir, entrypoint, cmd, env and labels', async () => {
    const out = mkdtempSync(join(tmpdir(), 'tessera-layered-out-'));
    dirs.push(out);
    const written = await writeReproducibleLayer(await layerEntriesFromFiles([{ hostPath: tree(0o644, 1), imagePath: '/app/a' }]), { outputDir: out, mtime: new Date(0) });
    const base = scratchImage({ os: 'linux', architecture: 'amd64' });
    const image = assembleLayeredImage(base, [{ description: 'module a', written }], { workdir: '/app', cmd: ['node', 'a'], env: { NODE_ENV: 'production' }, labels: { x: 'y' }, ports: ['8080'] }, { created: new Date(0) });
    const again = assembleLayeredImage(base, [{ description: 'module a', written }], { workdir: '/app', cmd: ['node', 'a'], env: { NODE_ENV: 'production' }, labels: { x: 'y' }, ports: ['8080'] }, { created: new Date(0) });
    expect(again.digest).toBe(image.digest);
    expect(image.config.rootfs.diff_ids).toEqual([written.diffId]);
    expect(image.config.config).toMatchObject({ WorkingDir: '/app', Cmd: ['node', 'a'], Labels: { x: 'y' }, ExposedPorts: { '8080/tcp': {} } });
    expect(image.config.config?.Env).toContain('NODE_ENV=production');
    expect(image.config.created).toBe('1970-01-01T00:00:00.000Z');
  });
});

describe('built image index', () => {
  async function twoPlatforms(family: 'oci' | 'docker') {
    const out = mkdtempSync(join(tmpdir(), 'tessera-layered-out-'));
    dirs.push(out);
    const written = await writeReproducibleLayer(await layerEntriesFromFiles([{ hostPath: tree(0o644, 1), imagePath: '/app/a' }]), { outputDir: out, mtime: new Date(0) });
    const image = (architecture: string, variant?: string) => {
      const base = { ...scratchImage({ os: 'linux', architecture, ...(variant ? { variant } : {}) }), family };
      return assembleLayeredImage(base, [{ description: 'module a', written }], { workdir: '/app' }, { created: new Date(0) });
    };
    const amd64 = image('amd64');
    const arm64 = image('arm64', 'v8');
    const index = await BuiltIndex.of([
      { platform: configPlatform(amd64.config), image: amd64 },
      { platform: configPlatform(arm64.config), image: arm64 },
    ]);
    return { written, amd64, arm64, index };
  }

  it('lists each platform image with its platform, and copies a shared layer once', async () => {
    const { written, amd64, arm64, index } = await twoPlatforms('oci');
    const raw = await index.getManifest();
    expect(raw.mediaType).toBe(MediaType.ociIndex);
    const parsed = JSON.parse(raw.bytes.toString()) as ImageIndex;
    expect(parsed.manifests.map((entry) => [entry.digest, entry.platform])).toEqual([
      [amd64.digest, { os: 'linux', architecture: 'amd64' }],
      [arm64.digest, { os: 'linux', architecture: 'arm64', variant: 'v8' }],
    ]);
    expect(selectManifest(parsed, { os: 'linux', architecture: 'arm64' }).digest).toBe(arm64.digest);
    expect((await index.getManifestByDigest(arm64.digest)).digest).toBe(arm64.digest);
    await expect(index.getManifestByDigest(`sha256:${'0'.repeat(64)}`)).rejects.toThrow('has no manifest');
    // Same inputs, same index digest.
    expect((await twoPlatforms('oci')).index.digest).toBe(index.digest);

    const layoutDir = mkdtempSync(join(tmpdir(), 'tessera-layered-index-'));
    dirs.push(layoutDir);
    const layout = await ociLayoutDestination(layoutDir);
    const result = await copyImage(index, layout, { tags: ['latest'] });
    await layout.close?.();
    expect(result.digest).toBe(index.digest);
    // One shared layer blob and two configs (the platforms' configs differ).
    expect(result.blobs.copied).toBe(3);
    const childLayers = async (image: typeof amd64) => (JSON.parse((await image.getManifest()).bytes.toString()) as ImageManifest).layers.map((layer) => layer.digest);
    expect(await childLayers(amd64)).toEqual([written.digest]);
    expect(await childLayers(arm64)).toEqual([written.digest]);
    expect(amd64.configDigest).not.toBe(arm64.configDigest);
  });

  it('is a Docker manifest list without annotations when the images use Docker media types', async () => {
    const { index } = await twoPlatforms('docker');
    expect(index.mediaType).toBe(MediaType.dockerManifestList);
    const parsed = JSON.parse((await index.getManifest()).bytes.toString()) as ImageIndex;
    expect(parsed.manifests.every((entry) => entry.mediaType === MediaType.dockerManifest)).toBe(true);
    expect(parsed.annotations).toBeUndefined();
  });

  it('needs at least one image', async () => {
    await expect(BuiltIndex.of([])).rejects.toThrow('at least one image');
  });
});
