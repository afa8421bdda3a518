import { createHash } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const hostArchitecture = { x64: 'amd64', arm64: 'arm64' }[process.arch] ?? process.arch;

async function writeJsonBlob(layoutDir, value) {
  const bytes = Buffer.from(JSON.stringify(value));
  const hex = createHash('sha256').update(bytes).digest('hex');
  await writeFile(join(layoutDir, 'blobs/sha256', hex), bytes);
  return { digest: `sha256:${hex}`, size: bytes.length };
}

/** Writes an OCI image layout holding one image made of already written layers (WrittenLayer objects). */
export async function writeOciLayout(layoutDir, tag, layers) {
  const blobs = join(layoutDir, 'blobs/sha256');
  await mkdir(blobs, { recursive: true });
  for (const layer of layers) await rename(layer.path, join(blobs, layer.digest.slice('sha256:'.length)));
  const config = await writeJsonBlob(layoutDir, {
    architecture: hostArchitecture,
    os: 'linux',
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] },
    rootfs: { type: 'layers', diff_ids: layers.map((layer) => layer.diffId) },
    history: layers.map(() => ({ created_by: 'tessera bench generator' })),
  });
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: layers.map((layer) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer.digest, size: layer.size })),
  };
  const manifestBlob = await writeJsonBlob(layoutDir, manifest);
  await writeFile(join(layoutDir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    join(layoutDir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: manifest.mediaType, ...manifestBlob, annotations: { 'org.opencontainers.image.ref.name': tag } }],
    }),
  );
  return manifest;
}
