import { TesseraError } from './errors';
import type { ImageDestination, ImageSource, RegistryLocation } from './image';
import { isIndexMediaType, MediaType } from './media-types';
import { selectManifest } from './platform';
import { Limiter } from './registry/limiter';
import type { Descriptor, ImageIndex, ImageManifest, Platform, RawManifest } from './types';

export type BlobCopyAction = 'copied' | 'mounted' | 'skipped';

export type CopyProgressEvent =
  | { kind: 'blob'; action: BlobCopyAction; digest: string; size: number; mediaType: string }
  | { kind: 'manifest'; digest: string; mediaType: string; tag?: string };

export interface CopyOptions {
  /** For an index: one platform's image (which becomes the top level), or every child (the default). */
  platform?: Platform | 'all';
  /** Tags to put the top-level manifest under, after everything else; in the destination's own terms. */
  tags?: string[];
  /** Blob transfers in flight at once (default 4). */
  concurrency?: number;
  onProgress?: (event: CopyProgressEvent) => void;
}

export interface CopyResult {
  /** The top-level manifest written: the index, or the image (the selected platform's, for an index source). */
  digest: string;
  mediaType: string;
  blobs: Record<BlobCopyAction, number>;
  /** Bytes of blobs streamed (not mounted or skipped). */
  bytes: number;
}

/**
 * Copy an image or an index from any source to any destination, in push order: every blob of a manifest
 * before the manifest, children before their index, tags last. Each distinct blob moves once per copy:
 * skipped when the destination has it, mounted when both sides are repositories of one registry, else streamed.
 */
export async function copyImage(source: ImageSource, destination: ImageDestination, options: CopyOptions = {}): Promise<CopyResult> {
  const limiter = new Limiter(options.concurrency ?? 4);
  const result: CopyResult = { digest: '', mediaType: '', blobs: { copied: 0, mounted: 0, skipped: 0 }, bytes: 0 };
  const blobTransfers = new Map<string, Promise<void>>();
  const manifestWrites = new Map<string, Promise<void>>();

  const copyBlob = (descriptor: Descriptor): Promise<void> => {
    let transfer = blobTransfers.get(descriptor.digest);
    if (!transfer) {
      transfer = transferBlob(descriptor);
      blobTransfers.set(descriptor.digest, transfer);
    }
    return transfer;
  };

  const transferBlob = async (descriptor: Descriptor): Promise<void> => {
    const release = await limiter.acquire();
    try {
      const action = await moveBlob(source, destination, descriptor);
      result.blobs[action]++;
      if (action === 'copied') result.bytes += descriptor.size;
      options.onProgress?.({ kind: 'blob', action, digest: descriptor.digest, size: descriptor.size, mediaType: descriptor.mediaType });
    } finally {
      release();
    }
  };

  const putManifest = async (raw: RawManifest, tag?: string): Promise<void> => {
    await destination.putManifest(raw, tag);
    options.onProgress?.({ kind: 'manifest', digest: raw.digest, mediaType: raw.mediaType, ...(tag !== undefined ? { tag } : {}) });
  };

  /**
   * Write a manifest and everything below it; the same child in two places is written once. `tag` writes
   * the manifest under it directly (one request, not a PUT by digest and then one by tag).
   */
  const copyTree = (raw: RawManifest, tag?: string): Promise<void> => {
    let write = manifestWrites.get(raw.digest);
    if (!write) {
      write = (async () => {
        if (isIndexMediaType(raw.mediaType)) {
          const index = parseJson<ImageIndex>(raw, source);
          await settleAll(index.manifests.map(async (child) => copyTree(await source.getManifestByDigest(child.digest))));
        } else {
          const manifest = parseJson<ImageManifest>(raw, source);
          const blobs = [manifest.config, ...manifest.layers].filter((d) => !isForeignLayer(d));
          await settleAll(blobs.map(copyBlob));
        }
        await putManifest(raw, tag);
      })();
      manifestWrites.set(raw.digest, write);
    }
    return write;
  };

  let top = await source.getManifest();
  if (isIndexMediaType(top.mediaType) && options.platform !== undefined && options.platform !== 'all') {
    const chosen = selectManifest(parseJson<ImageIndex>(top, source), options.platform);
    top = await source.getManifestByDigest(chosen.digest);
    if (isIndexMediaType(top.mediaType)) throw new TesseraError(`${source.description}: the entry for the platform is itself an index`, 'UNSUPPORTED');
  }
  const [firstTag, ...otherTags] = options.tags ?? [];
  await copyTree(top, firstTag);
  for (const tag of otherTags) await putManifest(top, tag);
  result.digest = top.digest;
  result.mediaType = top.mediaType;
  return result;
}

/**
 * Moves one blob the cheapest way: skipped when the destination has it, mounted when both sides are
 * repositories of one registry, else streamed from the source.
 */
export async function moveBlob(
  source: Pick<ImageSource, 'openBlob' | 'blobLocation' | 'location'>,
  destination: ImageDestination,
  descriptor: Descriptor,
): Promise<BlobCopyAction> {
  if (await destination.hasBlob(descriptor)) return 'skipped';
  const from = source.blobLocation?.(descriptor) ?? source.location;
  if (destination.mountBlob && from && canMount(from, destination.location)) {
    if (await destination.mountBlob(descriptor, from)) return 'mounted';
  }
  await destination.putBlob(descriptor, () => source.openBlob(descriptor));
  return 'copied';
}

/** Like Promise.all, but fails only once every task has stopped, so nothing still writes after the copy reports failure. */
async function settleAll(tasks: Promise<unknown>[]): Promise<void> {
  const outcomes = await Promise.allSettled(tasks);
  const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
  if (failed) throw failed.reason;
}

function canMount(from: RegistryLocation, to: RegistryLocation | undefined): boolean {
  return to !== undefined && from.registry === to.registry && from.repository !== to.repository;
}

/** Foreign layers (Windows base layers) live at their URLs; registries neither hold nor want them. */
function isForeignLayer(descriptor: Descriptor): boolean {
  return descriptor.mediaType === MediaType.dockerForeignLayerGzip;
}

function parseJson<T>(raw: RawManifest, source: ImageSource): T {
  try {
    return JSON.parse(raw.bytes.toString('utf8')) as T;
  } catch (e) {
    throw new TesseraError(`${source.description}: manifest ${raw.digest} is not valid JSON`, 'MANIFEST_INVALID', undefined, { cause: e });
  }
}
