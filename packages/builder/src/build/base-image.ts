import {
  familyOf,
  hostPlatform,
  isIndexMediaType,
  ociLayoutSource,
  parseReference,
  selectManifest,
  TesseraError,
  type ImageConfig,
  type ImageIndex,
  type ImageManifest,
  type ImageSource,
  type MediaFamily,
  type Platform,
} from '@tessera/oci';
import type { ImageLayer } from './built-image';

/** A resolved FROM: manifest and config only. Layers stay where they are until something reads them. */
export interface BaseImage {
  /** The name as written after expansion (`busybox`, `scratch`, `reg/x:1`). */
  name: string;
  /** Digest of the platform's image manifest; undefined for scratch. */
  digest?: string;
  /** Fully qualified reference with digest, for the base annotations. */
  pinnedName?: string;
  family: MediaFamily;
  config: ImageConfig;
  layers: ImageLayer[];
  /** For a stage built on an earlier stage: that stage's final cache key. */
  cacheKey?: string;
}

export function scratchImage(platform: Platform): BaseImage {
  return {
    name: 'scratch',
    family: 'oci',
    config: {
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] },
      rootfs: { type: 'layers', diff_ids: [] },
      history: [],
    },
    layers: [],
  };
}

/**
 * Reads a base image's manifest (choosing the platform from an index) and config. No layer is fetched:
 * appending COPY layers needs only these, and a RUN fetches layers when it materialises a rootfs.
 */
export async function resolveBaseImage(name: string, openSource: (reference: string) => ImageSource | Promise<ImageSource>, platform?: Platform): Promise<BaseImage> {
  const layout = parseOciLayoutName(name);
  const source = layout ? await openOciLayoutBase(layout) : await openSource(name);
  let raw = await source.getManifest();
  if (isIndexMediaType(raw.mediaType)) {
    const index = JSON.parse(raw.bytes.toString('utf8')) as ImageIndex;
    const chosen = selectManifest(index, platform ?? hostPlatform());
    raw = await source.getManifestByDigest(chosen.digest);
  }
  const manifest = JSON.parse(raw.bytes.toString('utf8')) as ImageManifest;
  if (!manifest.config || !Array.isArray(manifest.layers)) {
    throw new TesseraError(`base image ${name} has an unsupported manifest (${raw.mediaType})`, 'UNSUPPORTED_MANIFEST');
  }
  const configStream = await source.openBlob(manifest.config);
  const chunks: Buffer[] = [];
  for await (const chunk of configStream) chunks.push(chunk as Buffer);
  const config = JSON.parse(Buffer.concat(chunks).toString('utf8')) as ImageConfig;
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== manifest.layers.length) {
    throw new TesseraError(`base image ${name}: ${manifest.layers.length} layers but ${diffIds.length} diff_ids in its config`, 'INVALID_BASE_IMAGE');
  }
  const ref = layout ? undefined : safeParse(name);
  return {
    name,
    digest: raw.digest,
    pinnedName: ref ? `${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}@${raw.digest}` : undefined,
    family: familyOf(raw.mediaType ?? manifest.mediaType ?? 'application/vnd.oci.image.manifest.v1+json'),
    config,
    layers: manifest.layers.map((descriptor, i) => ({ descriptor, diffId: diffIds[i]!, source })),
  };
}

function safeParse(name: string) {
  try {
    return parseReference(name);
  } catch {
    return undefined;
  }
}

/** BuildKit's spelling of a base read from a local OCI layout: `oci-layout://DIR[:TAG][@DIGEST]`. */
export const OCI_LAYOUT_SCHEME = 'oci-layout://';

export interface OciLayoutName {
  directory: string;
  tag?: string;
  digest?: string;
}

/** Splits an `oci-layout://` base name; undefined for any other name. */
export function parseOciLayoutName(name: string): OciLayoutName | undefined {
  if (!name.startsWith(OCI_LAYOUT_SCHEME)) return undefined;
  let rest = name.slice(OCI_LAYOUT_SCHEME.length);
  let digest: string | undefined;
  const at = rest.lastIndexOf('@');
  if (at > rest.lastIndexOf('/')) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  if (!rest) throw new TesseraError(`${name}: no layout directory`, 'INVALID_REFERENCE');
  return { directory: rest, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

/** The `oci-layout://` name of a layout image, pinned to a digest when one is given. */
export function ociLayoutName(layout: OciLayoutName): string {
  return `${OCI_LAYOUT_SCHEME}${layout.directory}${layout.tag ? `:${layout.tag}` : ''}${layout.digest ? `@${layout.digest}` : ''}`;
}

/** A layout as an image source; with a digest, the manifest is that blob whatever the tags say now. */
async function openOciLayoutBase(layout: OciLayoutName): Promise<ImageSource> {
  const source = await ociLayoutSource(layout.directory, layout.tag);
  const digest = layout.digest;
  return digest ? { ...source, getManifest: () => source.getManifestByDigest(digest) } : source;
}
