import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyImage } from '../src/copy';
import { sha256Digest } from '../src/digest';
import { MediaType } from '../src/media-types';
import { DOCKER_UNCOMPRESSED_LAYER, dockerArchiveDestination, dockerArchiveSource } from '../src/store/docker-archive';
import { OciLayout, ociLayoutDestination, ociLayoutSource, REF_NAME_ANNOTATION } from '../src/store/oci-layout';
import { indexTar } from '../src/store/tar-index';
import type { ImageManifest } from '../src/types';
import { run, skopeo, writeRandomImage, writeRandomIndex } from './store-fixtures';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tessera-layout-'));
});
afterAll(() => rm(work, { recursive: true, force: true }));

describe('OCI image layout', () => {
  it('writes a layout that skopeo and umoci accept', async () => {
    const dir = join(work, 'written');
    const image = await writeRandomImage(dir, 'v1', { layerCount: 2 });
    expect(JSON.parse(await readFile(join(dir, 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' });
    const inspected = JSON.parse(await skopeo('inspect', `oci:${dir}:v1`));
    expect(inspected.Digest).toBe(image.manifest.digest);
    expect(inspected.Layers).toEqual(image.layers.map((l) => l.digest));
    const bundle = join(work, 'bundle');
    await run('umoci', ['unpack', '--rootless', '--image', `${dir}:v1`, bundle]);
    expect((await stat(join(bundle, 'rootfs', 'data.bin'))).size).toBe(4096);
  });

  it('reads tags, replaces a tag atomically and refuses an ambiguous untagged reference', async () => {
    const dir = join(work, 'tags');
    const first = await writeRandomImage(dir, 'a');
    const source = await ociLayoutSource(dir);
    expect((await source.getManifest()).digest).toBe(first.manifest.digest);
    const second = await writeRandomImage(dir, 'b');
    await expect((await ociLayoutSource(dir)).getManifest()).rejects.toThrow(/holds 2 images/);
    const third = await writeRandomImage(dir, 'a');
    const layout = await OciLayout.open(dir);
    expect((await layout.tags()).sort()).toEqual(['a', 'b']);
    expect((await layout.resolve('a')).digest).toBe(third.manifest.digest);
    expect((await layout.resolve('b')).digest).toBe(second.manifest.digest);
    await expect((await ociLayoutSource(dir, 'nope')).getManifest()).rejects.toThrow(/no image tagged "nope"/);
    await expect(ociLayoutSource(join(work, 'missing'))).rejects.toThrow(/not an OCI image layout/);
  });

  it('keeps every entry when many writers tag at once', async () => {
    const dir = join(work, 'concurrent');
    const images = await Promise.all(Array.from({ length: 8 }, (_, i) => writeRandomImage(dir, `t${i}`, { layerCount: 1, layerSize: 100 })));
    const layout = await OciLayout.open(dir);
    for (const [i, image] of images.entries()) expect((await layout.resolve(`t${i}`)).digest).toBe(image.manifest.digest);
    expect((await layout.readIndex()).manifests).toHaveLength(8);
  });

  it('reads what umoci and skopeo write', async () => {
    const dir = join(work, 'umoci');
    await run('umoci', ['init', '--layout', dir]);
    await run('umoci', ['new', '--image', `${dir}:base`]);
    await run('umoci', ['config', '--image', `${dir}:base`, '--config.cmd', '/bin/true']);
    const source = await ociLayoutSource(dir, 'base');
    const raw = await source.getManifest();
    expect(raw.mediaType).toBe(MediaType.ociManifest);
    expect(raw.digest).toBe(sha256Digest(raw.bytes));
    const manifest = JSON.parse(raw.bytes.toString()) as ImageManifest;
    const config = JSON.parse((await readAll(await source.openBlob(manifest.config))).toString());
    expect(config.config.Cmd).toEqual(['/bin/true']);
  });

  it('copies one platform out of a two-platform index, or the whole index', async () => {
    const dir = join(work, 'multi');
    const { index, children } = await writeRandomIndex(dir, 'multi', [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
    ]);
    const arm = join(work, 'multi-arm');
    const destination = await ociLayoutDestination(arm);
    const result = await copyImage(await ociLayoutSource(dir, 'multi'), destination, { platform: { os: 'linux', architecture: 'arm64' }, tags: ['arm'] });
    await destination.close!();
    expect(result.digest).toBe(children[1].digest);
    expect(result.blobs).toEqual({ copied: 2, mounted: 0, skipped: 0 });
    expect(JSON.parse(await skopeo('inspect', `oci:${arm}:arm`)).Digest).toBe(children[1].digest);

    const all = join(work, 'multi-all');
    const everything = await ociLayoutDestination(all);
    const progress: string[] = [];
    const copied = await copyImage(await ociLayoutSource(dir, 'multi'), everything, {
      tags: ['x'],
      onProgress: (e) => progress.push(e.kind === 'manifest' ? `manifest ${e.digest}${e.tag ? ` ${e.tag}` : ''}` : `blob ${e.action}`),
    });
    await everything.close!();
    expect(copied).toMatchObject({ digest: index.digest, mediaType: MediaType.ociIndex, blobs: { copied: 4, mounted: 0, skipped: 0 } });
    // children before the index, which is written once, under its tag
    expect(progress.slice(-1)).toEqual([`manifest ${index.digest} x`]);
    expect(progress).not.toContain(`manifest ${index.digest}`);
    expect(progress.filter((p) => p.startsWith('manifest')).slice(0, 2).sort()).toEqual(children.map((c) => `manifest ${c.digest}`).sort());
    const raw = JSON.parse(await skopeo('inspect', '--raw', `oci:${all}:x`));
    expect(raw.manifests.map((m: { digest: string }) => m.digest)).toEqual(children.map((c) => c.digest));

    // a second copy finds every blob in place
    const again = await ociLayoutDestination(all);
    const second = await copyImage(await ociLayoutSource(dir, 'multi'), again, { tags: ['y'] });
    await again.close!();
    expect(second.blobs).toEqual({ copied: 0, mounted: 0, skipped: 4 });
    expect(second.bytes).toBe(0);
  });

  it('adds an untagged entry when nothing was tagged', async () => {
    const dir = join(work, 'untagged-src');
    const image = await writeRandomImage(dir, 'src', { layerCount: 1 });
    const out = join(work, 'untagged');
    const destination = await ociLayoutDestination(out);
    await copyImage(await ociLayoutSource(dir, 'src'), destination);
    await destination.close!();
    const entries = (await (await OciLayout.open(out)).readIndex()).manifests;
    expect(entries).toEqual([{ mediaType: MediaType.ociManifest, digest: image.manifest.digest, size: image.manifest.bytes.length }]);
    expect(entries[0].annotations?.[REF_NAME_ANNOTATION]).toBeUndefined();
  });
});

describe('docker-archive', () => {
  it('writes an archive that skopeo loads, and reads it back with the same layers', async () => {
    const dir = join(work, 'archive-src');
    const image = await writeRandomImage(dir, 'v1', { layerCount: 3 });
    const file = join(work, 'image.tar');
    const destination = await dockerArchiveDestination(file);
    await copyImage(await ociLayoutSource(dir, 'v1'), destination, { tags: ['example.com/team/app:v1', 'app'] });
    await destination.close!();

    const members = await indexTar(file);
    const manifestJson = JSON.parse((await readFile(file)).subarray(members.get('manifest.json')!.offset, members.get('manifest.json')!.offset + members.get('manifest.json')!.size).toString());
    expect(manifestJson).toEqual([
      {
        Config: `blobs/sha256/${image.config.digest.slice(7)}`,
        RepoTags: ['example.com/team/app:v1', 'app:latest'],
        Layers: image.layers.map((l) => `blobs/sha256/${l.digest.slice(7)}`),
      },
    ]);

    // skopeo accepts the archive and sees the same uncompressed content
    const out = join(work, 'from-archive');
    await skopeo('copy', `docker-archive:${file}:app:latest`, `oci:${out}:t`);
    const viaSkopeo = JSON.parse(await skopeo('inspect', '--config', `oci:${out}:t`));
    const original = JSON.parse(await skopeo('inspect', '--config', `oci:${dir}:v1`));
    expect(viaSkopeo.rootfs).toEqual(original.rootfs);

    // our reader: a synthesised Docker v2 manifest over the same blobs
    const source = await dockerArchiveSource(file, 'docker.io/library/app:latest');
    const raw = await source.getManifest();
    expect(raw.mediaType).toBe(MediaType.dockerManifest);
    const manifest = JSON.parse(raw.bytes.toString()) as ImageManifest;
    expect(manifest.config).toEqual({ ...image.config, mediaType: MediaType.dockerConfig });
    expect(manifest.layers.map((l) => [l.digest, l.mediaType])).toEqual(image.layers.map((l) => [l.digest, MediaType.dockerLayerGzip]));
    await expect(dockerArchiveSource(file, 'other:latest')).rejects.toThrow(/no image tagged/);
    expect((await (await dockerArchiveSource(file, '@0')).getManifest()).digest).toBe(raw.digest);

    // and it round-trips into a layout (a Docker manifest, as copies do not convert)
    const back = join(work, 'archive-back');
    const backDestination = await ociLayoutDestination(back);
    await copyImage(source, backDestination, { tags: ['back'] });
    await backDestination.close!();
    // (skopeo and umoci read only OCI media types from a layout, so check with our reader)
    const backRaw = await (await ociLayoutSource(back, 'back')).getManifest();
    expect(backRaw).toEqual(raw);
    const backLayout = await OciLayout.open(back);
    expect((await backLayout.blobs.verify()).corrupt).toEqual([]);
    expect((await backLayout.blobs.list()).sort()).toEqual([raw.digest, image.config.digest, ...image.layers.map((l) => l.digest)].sort());
  });

  it('reads an archive that skopeo wrote (uncompressed layers)', async () => {
    const dir = join(work, 'skopeo-archive-src');
    const image = await writeRandomImage(dir, 'v1', { layerCount: 2 });
    const file = join(work, 'skopeo.tar');
    await skopeo('copy', `oci:${dir}:v1`, `docker-archive:${file}:local/thing:v1`);
    const source = await dockerArchiveSource(file);
    const manifest = JSON.parse((await source.getManifest()).bytes.toString()) as ImageManifest;
    expect(manifest.layers).toHaveLength(2);
    expect(manifest.layers.map((l) => l.mediaType)).toEqual([DOCKER_UNCOMPRESSED_LAYER, DOCKER_UNCOMPRESSED_LAYER]);
    expect(manifest.config.digest).toBe(image.config.digest);
    const config = JSON.parse((await readAll(await source.openBlob(manifest.config))).toString());
    // skopeo stores layers uncompressed: each layer's digest is its diff ID
    expect(manifest.layers.map((l) => l.digest)).toEqual(config.rootfs.diff_ids);
    for (const layer of manifest.layers) expect((await readAll(await source.openBlob(layer))).length).toBe(layer.size);
  });

  it('refuses an index', async () => {
    const dir = join(work, 'archive-index');
    await writeRandomIndex(dir, 'multi', [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64' },
    ]);
    const destination = await dockerArchiveDestination(join(work, 'never.tar'));
    await expect(copyImage(await ociLayoutSource(dir, 'multi'), destination)).rejects.toThrow(/not an index; choose a platform/);
    await destination.abort();
    await expect(stat(join(work, 'never.tar'))).rejects.toThrow();
  });
});

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
