import { PassThrough, Transform, type Readable } from 'node:stream';
import { isNotFound, type BlobStore, type Descriptor, type ImageSource } from '@tessera/oci';

/**
 * An ImageSource whose blobs are kept in a local BlobStore (like Kaniko's cache warmer): a blob already
 * in the store is read from there; otherwise it streams from `source` to the caller while a copy goes
 * into the store. The store's write is atomic and verified, so a failed or partial download stores
 * nothing. The caller's stream ends only once the copy is stored (or has failed), so reading a blob to
 * the end means the next read is local. Manifests and locations pass through (tags can move; a
 * destination on the same registry can still mount base blobs).
 */
export function cachingImageSource(source: ImageSource, store: BlobStore, options: { onWarning?: (message: string) => void } = {}): ImageSource {
  const downloads = new Map<string, Promise<void>>();

  const download = async (descriptor: Descriptor): Promise<Readable> => {
    const upstream = await source.openBlob(descriptor);
    const toStore = new PassThrough();
    let stored!: Promise<void>;
    const toCaller = new Transform({
      transform(chunk, _encoding, done) {
        done(null, chunk);
      },
      flush(done) {
        stored.then(() => done(), () => done());
      },
    });
    upstream.on('error', (e) => {
      toStore.destroy(e);
      // The caller hears of the failure once the partial copy is gone.
      void stored.finally(() => toCaller.destroy(e));
    });
    stored = store
      .put(toStore, { digest: descriptor.digest, size: descriptor.size })
      .then(() => undefined)
      .catch((e: unknown) => {
        toStore.destroy(); // unblocks the caller when the store failed before reading
        if (!upstream.errored) options.onWarning?.(`could not keep blob ${descriptor.digest} in ${store.root}: ${(e as Error).message}`);
      })
      .finally(() => {
        if (downloads.get(descriptor.digest) === stored) downloads.delete(descriptor.digest);
      });
    downloads.set(descriptor.digest, stored);
    upstream.pipe(toStore);
    upstream.pipe(toCaller);
    return toCaller;
  };

  return {
    description: source.description,
    ...(source.location ? { location: source.location } : {}),
    ...(source.blobLocation ? { blobLocation: (d: Descriptor) => source.blobLocation!(d) } : {}),
    getManifest: () => source.getManifest(),
    getManifestByDigest: (digest) => source.getManifestByDigest(digest),
    async openBlob(descriptor) {
      const expected = { digest: descriptor.digest, size: descriptor.size };
      if (await store.has(expected)) {
        try {
          return await store.open(expected);
        } catch (e) {
          if (!isNotFound(e)) throw e; // removed meanwhile (cache verify --repair): fetch it again
        }
      }
      // Another read of the same blob is filling the store: read this one straight from the source
      // rather than wait on a reader we do not control.
      if (downloads.has(descriptor.digest)) return source.openBlob(descriptor);
      return download(descriptor);
    },
    ...(source.close ? { close: () => source.close!() } : {}),
  };
}
