import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, inject, it } from 'vitest';
import {
  MediaType,
  RegistryClient,
  canonicalJsonBytes,
  parseReference,
  registryImageDestination,
  registryImageSource,
  selectManifest,
  sha256Digest,
  type ImageIndex,
  type ImageManifest,
} from '@tessera/oci';
import { startRegistry } from '../../../tools/registry/registry';
import { openBuffer, randomBlob, readAll } from './registry-helpers';

const run = promisify(execFile);

describe('registry ImageSource and ImageDestination', () => {
  it('copies a multi-platform image between repositories by mounting, then skopeo reads it', async () => {
    const registry = await startRegistry();
    const client = new RegistryClient({ insecureRegistries: [registry.host] });
    try {
      // Build a two-platform image in the base repository.
      const base = parseReference(`${registry.host}/base/multi:1.0`);
      const baseDestination = registryImageDestination(client, base);
      const children = [];
      for (const architecture of ['amd64', 'arm64']) {
        const layer = randomBlob(2048);
        const configBytes = canonicalJsonBytes({ architecture, os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.descriptor.digest] }, config: {} });
        const config = { mediaType: MediaType.ociConfig, digest: sha256Digest(configBytes), size: configBytes.length };
        await baseDestination.putBlob(layer.descriptor, openBuffer(layer.bytes));
        await baseDestination.putBlob(config, openBuffer(configBytes));
        const manifest: ImageManifest = { schemaVersion: 2, mediaType: MediaType.ociManifest, config, layers: [layer.descriptor] };
        const bytes = canonicalJsonBytes(manifest);
        await baseDestination.putManifest({ bytes, mediaType: MediaType.ociManifest, digest: sha256Digest(bytes) });
        children.push({ mediaType: MediaType.ociManifest, digest: sha256Digest(bytes), size: bytes.length, platform: { os: 'linux', architecture } });
      }
      const indexBytes = canonicalJsonBytes({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: children } satisfies ImageIndex);
      await baseDestination.putManifest({ bytes: indexBytes, mediaType: MediaType.ociIndex, digest: sha256Digest(indexBytes) }, '1.0');

      // Copy it with only the ImageSource and ImageDestination interfaces.
      const source = registryImageSource(client, base);
      expect(source.description).toBe(`docker://${registry.host}/base/multi:1.0`);
      const target = registryImageDestination(client, { registry: registry.host, repository: 'app/multi' });
      const before = registry.log().length;
      const top = await source.getManifest();
      expect(top.bytes.equals(indexBytes)).toBe(true);
      const index = JSON.parse(top.bytes.toString()) as ImageIndex;
      for (const child of index.manifests) {
        const raw = await source.getManifestByDigest(child.digest);
        const manifest = JSON.parse(raw.bytes.toString()) as ImageManifest;
        for (const blob of [manifest.config, ...manifest.layers]) {
          if (await target.hasBlob(blob)) continue;
          if (await target.mountBlob!(blob, source.location!)) continue;
          await target.putBlob(blob, () => source.openBlob(blob));
        }
        await target.putManifest(raw);
      }
      await target.putManifest(top, 'copied');
      const log = registry.log().slice(before);
      expect(log.match(/"POST \/v2\/app\/multi\/blobs\/uploads\/\?mount=/g)).toHaveLength(4);
      expect(log).not.toMatch(/"PUT \/v2\/app\/multi\/blobs\/uploads/);

      // Resolve a platform through the copied index and read its layer back.
      const copied = registryImageSource(client, parseReference(`${registry.host}/app/multi:copied`));
      const arm = selectManifest(JSON.parse((await copied.getManifest()).bytes.toString()) as ImageIndex, { os: 'linux', architecture: 'arm64', variant: 'v8' });
      const armManifest = JSON.parse((await copied.getManifestByDigest(arm.digest)).bytes.toString()) as ImageManifest;
      expect((await readAll(await copied.openBlob(armManifest.layers[0]!))).length).toBe(2048);

      const { stdout } = await run('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${registry.host}/app/multi:copied`]);
      expect(Buffer.from(stdout).equals(indexBytes)).toBe(true);
      const { stdout: config } = await run('skopeo', ['inspect', '--tls-verify=false', '--config', '--override-arch', 'arm64', `docker://${registry.host}/app/multi:copied`]);
      expect(JSON.parse(config).architecture).toBe('arm64');
    } finally {
      client.close();
      await registry.stop();
    }
  });

  it('reads an image skopeo pushed with Docker media types', async () => {
    const host = inject('registryHost');
    const client = new RegistryClient({ insecureRegistries: [host] });
    const ref = parseReference(`${host}/skopeo/docker-types:v1`);
    // Push a tiny image with our client, then let skopeo convert it to Docker types in another repository.
    const layer = randomBlob(512, MediaType.ociLayerGzip);
    const configBytes = canonicalJsonBytes({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.descriptor.digest] } });
    const config = { mediaType: MediaType.ociConfig, digest: sha256Digest(configBytes), size: configBytes.length };
    const destination = registryImageDestination(client, ref);
    await destination.putBlob(layer.descriptor, openBuffer(layer.bytes));
    await destination.putBlob(config, openBuffer(configBytes));
    const bytes = canonicalJsonBytes({ schemaVersion: 2, mediaType: MediaType.ociManifest, config, layers: [layer.descriptor] });
    await destination.putManifest({ bytes, mediaType: MediaType.ociManifest, digest: sha256Digest(bytes) }, 'oci');
    await run('skopeo', ['copy', '--src-tls-verify=false', '--dest-tls-verify=false', '--format', 'v2s2', `docker://${host}/skopeo/docker-types:oci`, `docker://${host}/skopeo/docker-types:v1`]);
    const raw = await registryImageSource(client, ref).getManifest();
    expect(raw.mediaType).toBe(MediaType.dockerManifest);
    const manifest = JSON.parse(raw.bytes.toString()) as ImageManifest;
    expect(manifest.config.mediaType).toBe(MediaType.dockerConfig);
    client.close();
  });
});
