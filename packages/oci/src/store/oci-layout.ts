import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ImageDestination, ImageSource } from '../image';
import { TesseraError } from '../errors';
import { MediaType } from '../media-types';
import type { Descriptor, ImageIndex, RawManifest } from '../types';
import { BlobStore, isNotFound } from './cas';

export const OCI_IMAGE_LAYOUT_VERSION = '1.0.0';
/** The index.json annotation that names a tagged entry (what `oci:DIR:TAG` refers to). */
export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';

const LOCK_STALE_MS = 30_000;
const LOCK_WAIT_MS = 60_000;

/** An OCI image layout directory: `oci-layout`, `index.json` and a content-addressed `blobs/` tree. */
export class OciLayout {
  readonly blobs: BlobStore;

  private constructor(readonly directory: string) {
    this.blobs = new BlobStore(directory);
  }

  /** Open an existing layout; fails when the directory is not one. */
  static async open(directory: string): Promise<OciLayout> {
    let marker: { imageLayoutVersion?: unknown };
    try {
      marker = JSON.parse(await readFile(join(directory, 'oci-layout'), 'utf8'));
    } catch (e) {
      if (isNotFound(e)) throw new TesseraError(`${directory} is not an OCI image layout (no oci-layout file)`, 'LAYOUT_NOT_FOUND');
      throw new TesseraError(`${directory}/oci-layout is not valid JSON`, 'LAYOUT_INVALID', undefined, { cause: e });
    }
    if (typeof marker.imageLayoutVersion !== 'string' || !marker.imageLayoutVersion.startsWith('1.')) {
      throw new TesseraError(`${directory}: unsupported imageLayoutVersion ${JSON.stringify(marker.imageLayoutVersion)}`, 'LAYOUT_INVALID');
    }
    return new OciLayout(directory);
  }

  /** Open the layout, creating an empty one first when the directory has none. */
  static async openOrCreate(directory: string): Promise<OciLayout> {
    await mkdir(join(directory, 'blobs', 'sha256'), { recursive: true });
    await writeFile(join(directory, 'oci-layout'), JSON.stringify({ imageLayoutVersion: OCI_IMAGE_LAYOUT_VERSION }), { flag: 'wx' }).catch(
      (e: NodeJS.ErrnoException) => {
        if (e.code !== 'EEXIST') throw e;
      },
    );
    const layout = await OciLayout.open(directory);
    if (!(await exists(layout.indexPath))) await layout.updateIndex(() => undefined);
    return layout;
  }

  get indexPath(): string {
    return join(this.directory, 'index.json');
  }

  async readIndex(): Promise<ImageIndex> {
    try {
      const index = JSON.parse(await readFile(this.indexPath, 'utf8')) as ImageIndex;
      if (!Array.isArray(index.manifests)) throw new Error('no manifests array');
      return index;
    } catch (e) {
      if (isNotFound(e)) return emptyIndex();
      throw new TesseraError(`${this.indexPath} is not a valid image index: ${(e as Error).message}`, 'LAYOUT_INVALID', undefined, { cause: e });
    }
  }

  /** Tags named by index.json entries. */
  async tags(): Promise<string[]> {
    return (await this.readIndex()).manifests.flatMap((d) => (d.annotations?.[REF_NAME_ANNOTATION] ? [d.annotations[REF_NAME_ANNOTATION]] : []));
  }

  /** The index.json entry for `tag`; without a tag, the only entry (an error when there are several). */
  async resolve(tag?: string): Promise<Descriptor> {
    const { manifests } = await this.readIndex();
    if (tag !== undefined) {
      const found = manifests.find((d) => d.annotations?.[REF_NAME_ANNOTATION] === tag);
      if (!found) throw new TesseraError(`oci:${this.directory}: no image tagged ${JSON.stringify(tag)}`, 'MANIFEST_UNKNOWN');
      return found;
    }
    if (manifests.length === 1) return manifests[0];
    if (manifests.length === 0) throw new TesseraError(`oci:${this.directory}: the layout holds no image`, 'MANIFEST_UNKNOWN');
    throw new TesseraError(`oci:${this.directory}: the layout holds ${manifests.length} images; name one as oci:DIR:TAG`, 'AMBIGUOUS_REFERENCE');
  }

  /** Point `tag` at `descriptor`, replacing any entry with the same tag. */
  async tag(descriptor: Descriptor, tag: string): Promise<void> {
    await this.updateIndex((index) => {
      index.manifests = index.manifests.filter((d) => d.annotations?.[REF_NAME_ANNOTATION] !== tag);
      index.manifests.push(withRefName(descriptor, tag));
    });
  }

  /**
   * Read-modify-write index.json under a lock file, then replace it by rename,
   * so concurrent writers (in any process) neither lose entries nor leave a torn file.
   */
  async updateIndex(update: (index: ImageIndex) => ImageIndex | void): Promise<void> {
    const release = await this.lock();
    try {
      const current = await this.readIndex();
      const next = update(current) ?? current;
      const temporary = `${this.indexPath}.tmp-${randomBytes(6).toString('hex')}`;
      await writeFile(temporary, JSON.stringify(next));
      await rename(temporary, this.indexPath);
    } finally {
      await release();
    }
  }

  private async lock(): Promise<() => Promise<void>> {
    const lockPath = `${this.indexPath}.lock`;
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (let attempt = 0; ; attempt++) {
      try {
        const handle = await open(lockPath, 'wx');
        await handle.close();
        return () => rm(lockPath, { force: true });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const held = await stat(lockPath).catch(() => undefined);
      if (held && Date.now() - held.mtimeMs > LOCK_STALE_MS) {
        await rm(lockPath, { force: true }); // its writer died
        continue;
      }
      if (Date.now() > deadline) throw new TesseraError(`timed out waiting for the lock ${lockPath}`, 'LOCK_TIMEOUT');
      await sleep(Math.min(200, 5 * 2 ** Math.min(attempt, 6)));
    }
  }
}

function emptyIndex(): ImageIndex {
  return { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] };
}

function withRefName(descriptor: Descriptor, tag: string): Descriptor {
  return { ...descriptor, annotations: { ...descriptor.annotations, [REF_NAME_ANNOTATION]: tag } };
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** The media type a stored manifest declares, or what its shape says when it declares none. */
export function manifestMediaTypeOf(bytes: Buffer): string {
  const parsed = JSON.parse(bytes.toString('utf8')) as { mediaType?: string; manifests?: unknown };
  if (typeof parsed.mediaType === 'string') return parsed.mediaType;
  return Array.isArray(parsed.manifests) ? MediaType.ociIndex : MediaType.ociManifest;
}

/** `oci:DIR[:TAG]` as an image source. Without a tag the layout must hold exactly one entry. */
export async function ociLayoutSource(directory: string, tag?: string): Promise<ImageSource> {
  const layout = await OciLayout.open(directory);
  const description = `oci:${directory}${tag !== undefined ? `:${tag}` : ''}`;
  const readManifest = async (descriptor: { digest: string; size?: number; mediaType?: string }): Promise<RawManifest> => {
    const bytes = await layout.blobs.readBytes(descriptor, 'manifest');
    return { bytes, digest: descriptor.digest, mediaType: descriptor.mediaType ?? manifestMediaTypeOf(bytes) };
  };
  return {
    description,
    getManifest: async () => readManifest(await layout.resolve(tag)),
    getManifestByDigest: (digest) => readManifest({ digest }),
    openBlob: async (descriptor): Promise<Readable> => {
      if (!(await layout.blobs.has(descriptor.digest))) {
        throw new TesseraError(`${description}: blob ${descriptor.digest} is missing from the layout`, 'BLOB_UNKNOWN');
      }
      return layout.blobs.open(descriptor);
    },
  };
}

export interface OciLayoutDestination extends ImageDestination {
  readonly layout: OciLayout;
}

/**
 * `oci:DIR` as an image destination: blobs and manifests go into the store as they come;
 * index.json changes once, on close. A tagged manifest replaces the entry with that tag.
 * When nothing was tagged, the last manifest stored (the top level of a copy) becomes an untagged entry.
 */
export async function ociLayoutDestination(directory: string): Promise<OciLayoutDestination> {
  const layout = await OciLayout.openOrCreate(directory);
  const tagged = new Map<string, Descriptor>();
  let last: Descriptor | undefined;
  return {
    layout,
    description: `oci:${directory}`,
    hasBlob: (descriptor) => layout.blobs.has({ digest: descriptor.digest, size: descriptor.size }),
    putBlob: async (descriptor, openBlob) => {
      await layout.blobs.put(await openBlob(), { digest: descriptor.digest, size: descriptor.size });
    },
    putManifest: async (manifest, tag) => {
      await layout.blobs.putBytes(manifest.bytes, { digest: manifest.digest, size: manifest.bytes.length });
      last = { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.bytes.length };
      if (tag !== undefined) tagged.set(tag, last);
    },
    close: async () => {
      if (tagged.size === 0 && !last) return;
      const untagged = tagged.size === 0 ? last : undefined;
      await layout.updateIndex((index) => {
        for (const [tag, descriptor] of tagged) {
          index.manifests = index.manifests.filter((d) => d.annotations?.[REF_NAME_ANNOTATION] !== tag);
          index.manifests.push(withRefName(descriptor, tag));
        }
        if (untagged && !index.manifests.some((d) => d.digest === untagged.digest && !d.annotations?.[REF_NAME_ANNOTATION])) {
          index.manifests.push(untagged);
        }
      });
      tagged.clear();
      last = undefined;
    },
  };
}
