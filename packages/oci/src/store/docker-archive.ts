import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type * as tar from 'tar-stream';
import { canonicalJsonBytes } from '../canonical-json';
import { DigestStream, digestHex, sha256Digest } from '../digest';
import { TesseraError } from '../errors';
import type { ImageDestination, ImageSource } from '../image';
import { configMediaType, isIndexMediaType, layerMediaType, manifestMediaType, MediaType, type Compression, type MediaFamily } from '../media-types';
import type { Descriptor, ImageManifest, RawManifest } from '../types';
import { BlobStore } from './cas';
import { indexTar, readTarMember, type TarMember } from './tar-index';

/** One image in a docker-archive's `manifest.json`. */
export interface DockerArchiveManifestEntry {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
}

/**
 * Which image of a docker-archive to read: a repository tag from `RepoTags` (`name:tag`),
 * or `@N` for the N-th entry of manifest.json, as in skopeo's `docker-archive:FILE[:REF|:@N]`.
 */
export type DockerArchiveSelector = string | undefined;

/**
 * `docker-archive:FILE` as an image source. The archive has no manifest of its own, so one is synthesised:
 * a Docker v2 schema 2 manifest whose layers are the tar members, each digested by streaming it once
 * (an OCI manifest when a layer is zstd, which Docker's schema cannot name).
 */
export async function dockerArchiveSource(file: string, selector?: DockerArchiveSelector): Promise<ImageSource> {
  const description = `docker-archive:${file}${selector !== undefined ? `:${selector}` : ''}`;
  const members = await indexTar(file).catch((e: unknown) => {
    throw new TesseraError(`${description}: cannot read the archive: ${(e as Error).message}`, 'ARCHIVE_INVALID', undefined, { cause: e });
  });
  const member = (name: string): TarMember => {
    const found = members.get(normalizeMemberName(name));
    if (!found) throw new TesseraError(`${description}: the archive has no member ${JSON.stringify(name)}`, 'ARCHIVE_INVALID');
    return found;
  };
  const entries = JSON.parse((await readTarMember(file, member('manifest.json'))).toString('utf8')) as DockerArchiveManifestEntry[];
  const entry = selectEntry(entries, selector, description);

  const blobs = new Map<string, TarMember>();
  const configMember = member(entry.Config);
  const configBytes = await readTarMember(file, configMember);
  const config: Descriptor = { mediaType: MediaType.dockerConfig, digest: sha256Digest(configBytes), size: configBytes.length };
  blobs.set(config.digest, configMember);
  const layers: Array<Descriptor & { compression: Compression }> = [];
  for (const name of entry.Layers) {
    const layerMember = member(name);
    const { digest, compression } = await digestMember(file, layerMember);
    blobs.set(digest, layerMember);
    layers.push({ mediaType: '', digest, size: layerMember.size, compression });
  }
  // Docker's schema has no zstd layer type, so an archive with zstd layers reads as an OCI image
  const family: MediaFamily = layers.some((l) => l.compression === 'zstd') ? 'oci' : 'docker';
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: manifestMediaType(family),
    config: { ...config, mediaType: configMediaType(family) },
    layers: layers.map(({ compression, ...layer }) => ({ ...layer, mediaType: archiveLayerMediaType(family, compression) })),
  };
  const bytes = canonicalJsonBytes(manifest);
  const raw: RawManifest = { bytes, mediaType: manifest.mediaType!, digest: sha256Digest(bytes) };

  return {
    description,
    getManifest: async () => raw,
    getManifestByDigest: async (digest) => {
      if (digest !== raw.digest) throw new TesseraError(`${description}: no manifest ${digest}`, 'MANIFEST_UNKNOWN');
      return raw;
    },
    openBlob: async (descriptor): Promise<Readable> => {
      const found = blobs.get(descriptor.digest);
      if (!found) throw new TesseraError(`${description}: no blob ${descriptor.digest}`, 'BLOB_UNKNOWN');
      const verifier = new DigestStream({ digest: descriptor.digest, size: found.size, what: `blob ${descriptor.digest}` });
      const stream = memberStream(file, found);
      stream.on('error', (e) => verifier.destroy(e));
      return stream.pipe(verifier);
    },
  };
}

function selectEntry(entries: DockerArchiveManifestEntry[], selector: DockerArchiveSelector, description: string): DockerArchiveManifestEntry {
  if (!Array.isArray(entries) || entries.length === 0) throw new TesseraError(`${description}: manifest.json lists no image`, 'ARCHIVE_INVALID');
  if (selector === undefined) {
    if (entries.length === 1) return entries[0];
    throw new TesseraError(`${description}: the archive holds ${entries.length} images; name one as docker-archive:FILE:NAME:TAG or :@N`, 'AMBIGUOUS_REFERENCE');
  }
  if (selector.startsWith('@')) {
    const index = Number(selector.slice(1));
    if (!Number.isInteger(index) || index < 0 || index >= entries.length) {
      throw new TesseraError(`${description}: no image at index ${selector.slice(1)} (the archive holds ${entries.length})`, 'MANIFEST_UNKNOWN');
    }
    return entries[index];
  }
  const wanted = normalizeRepoTag(selector);
  const found = entries.find((e) => (e.RepoTags ?? []).some((t) => normalizeRepoTag(t) === wanted));
  if (!found) throw new TesseraError(`${description}: no image tagged ${JSON.stringify(selector)}`, 'MANIFEST_UNKNOWN');
  return found;
}

/** `busybox` and `docker.io/library/busybox:latest` name the same repository tag. */
export function normalizeRepoTag(reference: string): string {
  if (reference.includes('@')) throw new TesseraError(`docker-archive tags cannot name a digest: ${JSON.stringify(reference)}`, 'INVALID_REFERENCE');
  const lastSlash = reference.lastIndexOf('/');
  let withTag = reference.indexOf(':', lastSlash + 1) === -1 ? `${reference}:latest` : reference;
  const firstSlash = withTag.indexOf('/');
  const first = firstSlash === -1 ? '' : withTag.slice(0, firstSlash);
  const hasRegistry = first.includes('.') || first.includes(':') || first === 'localhost';
  if (!hasRegistry) withTag = `docker.io/${firstSlash === -1 ? 'library/' : ''}${withTag}`;
  return withTag;
}

/** Docker writes `RepoTags` in its short form (`busybox:latest`, `example.com/a/b:t`). */
function shortRepoTag(reference: string): string {
  return normalizeRepoTag(reference).replace(/^docker\.io\/library\//, '').replace(/^docker\.io\//, '');
}

function normalizeMemberName(name: string): string {
  return name.replace(/^(\.\/)+/, '').replace(/^\/+/, '');
}

function memberStream(file: string, member: TarMember): Readable {
  // createReadStream's end is inclusive, so an empty member cannot be expressed as a range
  if (member.size === 0) return Readable.from([]);
  return createReadStream(file, { start: member.offset, end: member.offset + member.size - 1 });
}

async function digestMember(file: string, member: TarMember): Promise<{ digest: string; compression: Compression }> {
  const hasher = new DigestStream();
  let head: Buffer | undefined;
  await pipeline(memberStream(file, member), hasher, async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) head ??= chunk.subarray(0, 4);
  });
  return { digest: hasher.digest, compression: sniffCompression(head ?? Buffer.alloc(0)) };
}

/**
 * Docker v2 schema 2 names uncompressed layers `…rootfs.diff.tar` (skopeo and containerd accept it, and refuse
 * OCI layer types in a Docker manifest); media-types' layerMediaType falls back to the OCI name instead.
 */
export const DOCKER_UNCOMPRESSED_LAYER = 'application/vnd.docker.image.rootfs.diff.tar';

function archiveLayerMediaType(family: MediaFamily, compression: Compression): string {
  return family === 'docker' && compression === 'none' ? DOCKER_UNCOMPRESSED_LAYER : layerMediaType(family, compression);
}

function sniffCompression(head: Buffer): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.readUInt32LE(0) === 0xfd2fb528 && head.length >= 4) return 'zstd';
  return 'none';
}

export interface DockerArchiveDestination extends ImageDestination {
  /** Drop the staged blobs without writing the archive. */
  abort(): Promise<void>;
}

/**
 * `docker-archive:FILE` as an image destination, in the layout `docker save` writes since Docker 25:
 * `manifest.json` naming `blobs/sha256/<hex>` members for the config and the layers (stored as they are).
 * Blobs are staged on disk next to FILE as they arrive in any order; `close` streams them into the tar
 * and renames it into place. Tags are repository references (`name:tag`); an archive holds single images, not indexes.
 */
export async function dockerArchiveDestination(file: string): Promise<DockerArchiveDestination> {
  const stagingDirectory = await mkdtemp(join(dirname(file), `.${basename(file)}.staging-`));
  const staging = new BlobStore(stagingDirectory);
  const images = new Map<string, { config: Descriptor; layers: Descriptor[]; repoTags: string[] }>();
  const description = `docker-archive:${file}`;

  const write = async (): Promise<void> => {
    const temporary = `${file}.tmp-${randomBytes(6).toString('hex')}`;
    // Loaded here, not at start-up: few commands write a docker-archive.
    const pack = (require('tar-stream') as typeof tar).pack();
    const output = pipeline(pack as unknown as Readable, createWriteStream(temporary));
    try {
      const written = new Set<string>();
      const addEntry = (header: Partial<tar.Header> & { name: string }, body?: Buffer | Readable): Promise<void> =>
        new Promise<void>((resolve, reject) => {
          const done = (error?: Error | null) => (error ? reject(error) : resolve());
          if (body === undefined || Buffer.isBuffer(body)) {
            pack.entry(header, body ?? Buffer.alloc(0), done);
            return;
          }
          const entry = pack.entry(header, done);
          body.once('error', (e) => {
            entry.destroy(e);
            reject(e);
          });
          body.pipe(entry as unknown as NodeJS.WritableStream);
        });
      const fixed = { mtime: new Date(0), uid: 0, gid: 0, mode: 0o644 };
      await addEntry({ ...fixed, name: 'blobs/', type: 'directory', mode: 0o755 });
      await addEntry({ ...fixed, name: 'blobs/sha256/', type: 'directory', mode: 0o755 });
      const manifestJson: DockerArchiveManifestEntry[] = [];
      for (const image of images.values()) {
        for (const blob of [image.config, ...image.layers]) {
          if (written.has(blob.digest)) continue;
          await addEntry({ ...fixed, name: memberName(blob.digest), size: blob.size }, await staging.open(blob));
          written.add(blob.digest);
        }
        manifestJson.push({
          Config: memberName(image.config.digest),
          RepoTags: image.repoTags.length ? image.repoTags : null,
          Layers: image.layers.map((l) => memberName(l.digest)),
        });
      }
      await addEntry({ ...fixed, name: 'manifest.json' }, Buffer.from(JSON.stringify(manifestJson)));
      pack.finalize();
      await output;
      await rename(temporary, file);
    } catch (e) {
      pack.destroy(e as Error);
      await output.catch(() => undefined);
      await rm(temporary, { force: true });
      throw e;
    }
  };

  return {
    description,
    hasBlob: (descriptor) => staging.has({ digest: descriptor.digest, size: descriptor.size }),
    putBlob: async (descriptor, openBlob) => {
      await staging.put(await openBlob(), { digest: descriptor.digest, size: descriptor.size });
    },
    putManifest: async (raw, tag) => {
      if (isIndexMediaType(raw.mediaType)) {
        throw new TesseraError(`${description}: an archive holds single-platform images, not an index; choose a platform`, 'UNSUPPORTED');
      }
      const manifest = JSON.parse(raw.bytes.toString('utf8')) as ImageManifest;
      for (const blob of [manifest.config, ...manifest.layers]) {
        if (!(await staging.has(blob.digest))) throw new TesseraError(`${description}: manifest names blob ${blob.digest}, which was not written`, 'BLOB_UNKNOWN');
      }
      const image = images.get(manifest.config.digest) ?? { config: manifest.config, layers: manifest.layers, repoTags: [] };
      images.set(manifest.config.digest, image);
      if (tag !== undefined) {
        const repoTag = shortRepoTag(tag);
        for (const other of images.values()) other.repoTags = other.repoTags.filter((t) => t !== repoTag);
        image.repoTags.push(repoTag);
      }
    },
    close: async () => {
      try {
        if (images.size > 0) await write();
      } finally {
        await rm(stagingDirectory, { recursive: true, force: true });
      }
    },
    abort: () => rm(stagingDirectory, { recursive: true, force: true }),
  };
}

function memberName(digest: string): string {
  return `blobs/sha256/${digestHex(digest)}`;
}
