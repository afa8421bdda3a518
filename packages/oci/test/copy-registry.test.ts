import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startRegistry, type RunningRegistry } from '../../../tools/registry/registry';
import { copyImage } from '../src/copy';
import { MediaType } from '../src/media-types';
import { parseReference } from '../src/reference';
import { RegistryClient, registryImageDestination, registryImageSource } from '../src/registry/index';
import { dockerArchiveDestination, dockerArchiveSource } from '../src/store/docker-archive';
import { ociLayoutDestination, ociLayoutSource } from '../src/store/oci-layout';
import { openImageDestination, openImageSource, parseTransportReference, type RegistryTransportAccess } from '../src/transports';
import type { ImageManifest } from '../src/types';
import { run, skopeo, writeRandomImage, writeRandomIndex } from './store-fixtures';

let work: string;
let host: string;
let client: RegistryClient;
let access: RegistryTransportAccess;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tessera-copy-'));
  host = inject('registryHost');
  client = new RegistryClient({ insecureRegistries: [host] });
  access = { source: (r) => registryImageSource(client, r), destination: (r) => registryImageDestination(client, r) };
});
afterAll(async () => {
  client.close();
  await rm(work, { recursive: true, force: true });
});

const source = (ref: string) => registryImageSource(client, parseReference(ref));
const destination = (ref: string) => registryImageDestination(client, parseReference(ref));
const inspect = async (...args: string[]) => JSON.parse(await skopeo('inspect', '--tls-verify=false', ...args));

/** Copy through the transport syntax, as the CLI does. */
async function copyByName(from: string, to: string, options: Parameters<typeof copyImage>[2] = {}) {
  const src = await openImageSource(parseTransportReference(from), access);
  const { destination: dst, tags } = await openImageDestination(parseTransportReference(to), access);
  const result = await copyImage(src, dst, { ...options, tags });
  await dst.close?.();
  return result;
}

describe('copy against a registry', () => {
  it('round-trips registry → OCI layout → new repository → docker-archive with the same digests', async () => {
    const seed = join(work, 'seed');
    const image = await writeRandomImage(seed, 'v1', { layerCount: 3 });
    await skopeo('copy', '--dest-tls-verify=false', `oci:${seed}:v1`, `docker://${host}/round/a:v1`);

    const layout = join(work, 'round-layout');
    const pulled = await copyByName(`docker://${host}/round/a:v1`, `oci:${layout}:pulled`);
    expect(pulled).toMatchObject({ digest: image.manifest.digest, mediaType: MediaType.ociManifest, blobs: { copied: 4, mounted: 0, skipped: 0 } });
    expect((await inspect(`oci:${layout}:pulled`)).Digest).toBe(image.manifest.digest);
    await run('umoci', ['unpack', '--rootless', '--image', `${layout}:pulled`, join(work, 'round-bundle')]);
    expect((await stat(join(work, 'round-bundle', 'rootfs', 'data.bin'))).isFile()).toBe(true);

    const pushed = await copyByName(`oci:${layout}:pulled`, `docker://${host}/round/b:v2`);
    expect(pushed.digest).toBe(image.manifest.digest);
    const remote = await inspect(`docker://${host}/round/b:v2`);
    expect(remote.Digest).toBe(image.manifest.digest);
    expect(remote.Layers).toEqual(image.layers.map((l) => l.digest));

    const archive = join(work, 'round.tar');
    await copyByName(`docker://${host}/round/b:v2`, `docker-archive:${archive}:round/b:v2`);
    const fromArchive = join(work, 'round-from-archive');
    await skopeo('copy', `docker-archive:${archive}`, `oci:${fromArchive}:x`);
    expect((await inspect('--config', `oci:${fromArchive}:x`)).rootfs).toEqual((await inspect('--config', `docker://${host}/round/a:v1`)).rootfs);
    const archiveManifest = JSON.parse((await (await dockerArchiveSource(archive, 'round/b:v2')).getManifest()).bytes.toString()) as ImageManifest;
    expect(archiveManifest.layers.map((l) => l.digest)).toEqual(image.layers.map((l) => l.digest));
  });

  it('pushes a docker-archive that skopeo wrote (uncompressed layers) so that skopeo and umoci read it back', async () => {
    const seed = join(work, 'archive-seed');
    const image = await writeRandomImage(seed, 'v1', { layerCount: 2 });
    const archive = join(work, 'skopeo-written.tar');
    await skopeo('copy', `oci:${seed}:v1`, `docker-archive:${archive}:some/name:v1`);
    await copyByName(`docker-archive:${archive}:some/name:v1`, `docker://${host}/from-archive/img:v1`);
    const pushedConfig = await inspect('--config', `docker://${host}/from-archive/img:v1`);
    expect(pushedConfig.rootfs.diff_ids).toHaveLength(2);
    const back = join(work, 'from-archive-layout');
    await skopeo('copy', '--src-tls-verify=false', `docker://${host}/from-archive/img:v1`, `oci:${back}:v1`);
    await run('umoci', ['unpack', '--rootless', '--image', `${back}:v1`, join(work, 'from-archive-bundle')]);
    expect((await stat(join(work, 'from-archive-bundle', 'rootfs', 'data.bin'))).size).toBe(4096);
    expect(pushedConfig.rootfs).toEqual((await inspect('--config', `oci:${seed}:v1`)).rootfs);
    expect(image.layers).toHaveLength(2);
  });

  it('mounts blobs across repositories of one registry, and skips what is already there', async () => {
    const seed = join(work, 'mount-seed');
    const image = await writeRandomImage(seed, 'v1', { layerCount: 2 });
    await skopeo('copy', '--dest-tls-verify=false', `oci:${seed}:v1`, `docker://${host}/mount/from:v1`);
    const requests: string[] = [];
    const logging = new RegistryClient({ insecureRegistries: [host], log: (line) => requests.push(line) });
    try {
      const result = await copyImage(
        registryImageSource(logging, parseReference(`${host}/mount/from:v1`)),
        registryImageDestination(logging, parseReference(`${host}/mount/to:v1`)),
        { tags: ['v1'] },
      );
      expect(result.blobs).toEqual({ copied: 0, mounted: 3, skipped: 0 });
      expect(result.bytes).toBe(0);
      expect(requests.some((l) => /POST .*mount\/to\/blobs\/uploads\/\?.*mount=/.test(l))).toBe(true);
      expect(requests.some((l) => /blobs\/uploads\/[^?]+\?.*digest=/.test(l))).toBe(false);
      const again = await copyImage(source(`${host}/mount/from:v1`), destination(`${host}/mount/to:v1`), { tags: ['v1'] });
      expect(again.blobs).toEqual({ copied: 0, mounted: 0, skipped: 3 });
    } finally {
      logging.close();
    }
    expect((await inspect(`docker://${host}/mount/to:v1`)).Digest).toBe(image.manifest.digest);
  });

  it('reads Docker v2 schema 2 images that skopeo pushed', async () => {
    const seed = join(work, 'v2s2-seed');
    await writeRandomImage(seed, 'v1', { layerCount: 2 });
    await skopeo('copy', '--dest-tls-verify=false', '--format', 'v2s2', `oci:${seed}:v1`, `docker://${host}/v2s2/img:v1`);
    const remote = await inspect(`docker://${host}/v2s2/img:v1`);
    const raw = await source(`${host}/v2s2/img:v1`).getManifest();
    expect(raw.mediaType).toBe(MediaType.dockerManifest);
    expect(raw.digest).toBe(remote.Digest);
    const manifest = JSON.parse(raw.bytes.toString()) as ImageManifest;
    expect(manifest.layers.every((l) => l.mediaType === MediaType.dockerLayerGzip)).toBe(true);

    // copied unchanged into another repository, and into a docker-archive skopeo accepts
    const copied = await copyImage(source(`${host}/v2s2/img:v1`), destination(`${host}/v2s2/copy:v1`), { tags: ['v1'] });
    expect(copied.digest).toBe(remote.Digest);
    expect((await inspect(`docker://${host}/v2s2/copy:v1`)).Digest).toBe(remote.Digest);
    const archive = join(work, 'v2s2.tar');
    const archiveDestination = await dockerArchiveDestination(archive);
    await copyImage(source(`${host}/v2s2/img:v1`), archiveDestination, { tags: ['v2s2/img:v1'] });
    await archiveDestination.close();
    expect((await inspect(`docker-archive:${archive}`)).Layers).toHaveLength(2);
  });

  it('reads a two-platform index, selecting a platform or copying it whole', async () => {
    const seed = join(work, 'index-seed');
    const { index, children } = await writeRandomIndex(seed, 'multi', [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
    ]);
    await skopeo('copy', '--all', '--dest-tls-verify=false', `oci:${seed}:multi`, `docker://${host}/multi/img:v1`);
    const raw = await source(`${host}/multi/img:v1`).getManifest();
    expect(raw.mediaType).toBe(MediaType.ociIndex);
    expect(raw.digest).toBe(index.digest);

    const armLayout = join(work, 'index-arm');
    const arm = await copyByName(`docker://${host}/multi/img:v1`, `oci:${armLayout}:arm`, { platform: { os: 'linux', architecture: 'arm64' } });
    expect(arm.digest).toBe(children[1].digest);
    expect((await inspect(`oci:${armLayout}:arm`)).Architecture).toBe('arm64');
    const amd = await copyImage(source(`${host}/multi/img:v1`), await ociLayoutDestination(join(work, 'index-amd')), {
      platform: { os: 'linux', architecture: 'amd64' },
    });
    expect(amd.digest).toBe(children[0].digest);
    await expect(copyImage(source(`${host}/multi/img:v1`), destination(`${host}/multi/none:v1`), { platform: { os: 'linux', architecture: 's390x' } })).rejects.toThrow(
      /no image for platform linux\/s390x.*available: linux\/amd64, linux\/arm64\/v8/,
    );

    const whole = await copyByName(`docker://${host}/multi/img:v1`, `docker://${host}/multi/copy:v1`, { platform: 'all' });
    expect(whole).toMatchObject({ digest: index.digest, blobs: { mounted: 4 } });
    expect((await inspect('--raw', `docker://${host}/multi/copy:v1`)).manifests.map((m: { digest: string }) => m.digest)).toEqual(children.map((c) => c.digest));
    const layoutCopy = join(work, 'index-all');
    await copyByName(`docker://${host}/multi/copy:v1`, `oci:${layoutCopy}:all`);
    expect((await (await ociLayoutSource(layoutCopy, 'all')).getManifest()).digest).toBe(index.digest);
  });

  it('streams blobs between two registries', async () => {
    const other: RunningRegistry = await startRegistry();
    const both = new RegistryClient({ insecureRegistries: [host, other.host] });
    try {
      const seed = join(work, 'two-seed');
      const image = await writeRandomImage(seed, 'v1', { layerCount: 3, layerSize: 300_000 });
      await skopeo('copy', '--dest-tls-verify=false', `oci:${seed}:v1`, `docker://${host}/two/img:v1`);
      const result = await copyImage(
        registryImageSource(both, parseReference(`${host}/two/img:v1`)),
        registryImageDestination(both, parseReference(`${other.host}/two/img:v1`)),
        { tags: ['v1'], concurrency: 2 },
      );
      expect(result.blobs).toEqual({ copied: 4, mounted: 0, skipped: 0 });
      expect(result.bytes).toBe(image.config.size + image.layers.reduce((n, l) => n + l.size, 0));
      expect((await inspect(`docker://${other.host}/two/img:v1`)).Digest).toBe(image.manifest.digest);
      expect(other.log()).toMatch(/PUT \/v2\/two\/img\/manifests\/v1/);
    } finally {
      both.close();
      await other.stop();
    }
  });
});
