import {
  familyOf,
  hostPlatform,
  isIndexMediaType,
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
  const source = await openSource(name);
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
  const ref = safeParse(name);
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
