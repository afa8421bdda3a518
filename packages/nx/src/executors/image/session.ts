import type { Readable } from 'node:stream';
import { ociLayoutName, resolveBaseImage, type BaseImage } from '@tessera/builder';
import {
  formatPlatform,
  hostPlatform,
  ociLayoutSource,
  parseReference,
  RegistryClient,
  registryImageDestination,
  registryImageSource,
  type Descriptor,
  ImageReference,
  type ImageDestination,
  type Platform,
  type RegistryLocation,
} from '@tessera/oci';

export interface BuildSessionOptions {
  insecureRegistries?: string[];
  platform?: Platform;
}

/** Upload counters of one image's pushes. */
export interface UploadStats {
  uploaded: number;
  bytes: number;
  mounted: number;
}

/**
 * What the images of one run share: one registry client (connections, tokens), base lookups,
 * the digests of images built so far (a later image can build FROM them), blob uploads, so a
 * blob new to the registry is uploaded once and mounted into every other repository, and the hashes
 * of file trees several images take a layer from.
 */
export class BuildSession {
  readonly client: RegistryClient;
  readonly platform: Platform;
  /**
   * Layer tree hashes of this run by what they cover (label, host and image paths): three images with
   * the same site-packages walk it once. A run is one snapshot of the workspace, as Nx hashes it once.
   */
  readonly treeHashes = new Map<string, Promise<string>>();
  private readonly baseDigests = new Map<string, Promise<string>>();
  private readonly bases = new Map<string, Promise<BaseImage>>();
  /** Repository (`registry/repo`) → digest, for images built in this run. */
  private readonly built = new Map<string, string>();
  /** Blob digest → where its one upload went (or is going). */
  private readonly uploads = new Map<string, Promise<RegistryLocation>>();

  constructor(options: BuildSessionOptions = {}) {
    this.client = new RegistryClient({ insecureRegistries: options.insecureRegistries ?? [] });
    this.platform = options.platform ?? hostPlatform();
  }

  close(): void {
    this.client.close();
  }

  recordBuilt(repository: string, digest: string): void {
    this.built.set(canonicalRepository(repository), digest);
  }

  /** The digest this run built for the reference's repository, if it did. */
  builtDigest(reference: string): string | undefined {
    return this.built.get(canonicalRepository(reference));
  }

  /**
   * The manifest digest a reference names now (one HEAD, shared by every image of the run). An image
   * built in this run wins, so dependants build on exactly what was just pushed.
   */
  baseDigest(reference: string): Promise<string> {
    const built = this.builtDigest(reference);
    if (built) return Promise.resolve(built);
    const ref = parseReference(reference);
    if (ref.digest) return Promise.resolve(ref.digest);
    let digest = this.baseDigests.get(ref.toString());
    if (!digest) {
      digest = this.client.headManifest(ref).then((found) => {
        if (!found) throw new Error(`base image ${reference} not found`);
        return found.digest;
      });
      this.baseDigests.set(ref.toString(), digest);
    }
    return digest;
  }

  /**
   * The digest of a base that is a workspace image kept as an OCI layout (push off): the one built in
   * this run, else the one the layout's tag names now.
   */
  async layoutBaseDigest(reference: string, directory: string): Promise<string> {
    const built = this.builtDigest(reference);
    if (built) return built;
    const ref = parseReference(reference);
    if (ref.digest) return ref.digest;
    const tag = ref.tag ?? 'latest';
    try {
      return (await (await ociLayoutSource(directory, tag)).getManifest()).digest;
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new Error(`base image ${reference} is a workspace image with no ${tag} in ${directory}; build it first (${reason})`);
    }
  }

  /**
   * The base image's manifest and config (no layers), pinned to `digest`: from the registry, or from the
   * OCI layout `layoutDirectory` when the base is a workspace image that was not pushed. When `digest`
   * names an index, the image for `platform` (default the session's) is chosen from it.
   */
  resolveBase(reference: string, digest: string, layoutDirectory?: string, platform: Platform = this.platform): Promise<BaseImage> {
    const forPlatform = ` ${formatPlatform(platform)}`;
    if (layoutDirectory) {
      const name = ociLayoutName({ directory: layoutDirectory, digest });
      let base = this.bases.get(name + forPlatform);
      if (!base) {
        // Named as the reference names it, so the base annotations (and the digest) match a pushed base's.
        const ref = parseReference(reference);
        base = resolveBaseImage(name, () => Promise.reject(new Error(`${name} is not a registry reference`)), platform).then((image) => ({
          ...image,
          pinnedName: `${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}@${image.digest}`,
        }));
        this.bases.set(name + forPlatform, base);
      }
      return base;
    }
    const ref = parseReference(reference);
    const key = `${ref.registry}/${ref.repository}@${digest}${forPlatform}`;
    let base = this.bases.get(key);
    if (!base) {
      const pinned = new ImageReference({
        registry: ref.registry,
        repository: ref.repository,
        ...(ref.tag ? { tag: ref.tag } : {}),
        digest,
      });
      base = resolveBaseImage(pinned.toString(), () => registryImageSource(this.client, pinned), platform);
      this.bases.set(key, base);
    }
    return base;
  }

  /**
   * A registry destination whose uploads are shared across the run: a blob another image already
   * uploaded (or is uploading) to the same registry is mounted from there instead.
   */
  destination(ref: RegistryLocation, stats: UploadStats): ImageDestination {
    const inner = registryImageDestination(this.client, ref);
    const here = inner.location!;
    return {
      description: inner.description,
      location: here,
      hasBlob: (descriptor) => inner.hasBlob(descriptor),
      mountBlob: async (descriptor, from) => {
        const mounted = await inner.mountBlob!(descriptor, from);
        if (mounted) stats.mounted++;
        return mounted;
      },
      putBlob: async (descriptor: Descriptor, open: () => Promise<Readable>) => {
        const key = `${here.registry} ${descriptor.digest}`;
        const earlier = this.uploads.get(key);
        if (earlier) {
          const from = await earlier.catch(() => undefined);
          if (from && from.repository !== here.repository && (await inner.mountBlob!(descriptor, from))) {
            stats.mounted++;
            return;
          }
          if (from && from.repository === here.repository) return;
        }
        const upload = inner.putBlob(descriptor, open).then(() => here);
        this.uploads.set(key, upload);
        await upload;
        stats.uploaded++;
        stats.bytes += descriptor.size;
      },
      putManifest: (manifest, tag) => inner.putManifest(manifest, tag),
    };
  }
}

/** `registry/repository` of a reference, registry names normalised. */
export function canonicalRepository(reference: string): string {
  const ref = parseReference(reference);
  return `${ref.registry}/${ref.repository}`;
}
