import {
  formatPlatform,
  hostPlatform,
  isIndexMediaType,
  openImageSource,
  parseTransportReference,
  selectManifest,
  type Descriptor,
  type ImageIndex,
  type ImageManifest,
  type ImageSource,
  type RawManifest,
} from '@tessera/oci';
import type { Command } from './command';
import { UsageError } from './flags';
import { REGISTRY_FLAGS, registryFromFlags } from './registry-flags';

export const inspectCommand: Command = {
  name: 'inspect',
  summary: 'Show an image\'s manifest and config, or the platforms of a multi-platform image',
  arguments: 'REF',
  description: [
    'Print an image as JSON: its digest, media type, manifest and config.',
    'For a multi-platform image without --platform, print the index and the platforms it offers.',
    'REF is docker://…, oci:DIR[:TAG] or docker-archive:FILE[:REF]; a bare REGISTRY/REPOSITORY[:TAG] means docker://.',
  ].join('\n'),
  flags: [
    ...REGISTRY_FLAGS,
    { name: 'raw', type: 'boolean', description: 'Print the top-level manifest exactly as stored' },
    { name: 'config', type: 'boolean', description: 'Print only the image config (for an index: of --platform, default this host)' },
  ],
  positionals: { min: 1, max: 1 },
  async run({ flags, io }) {
    if (flags.boolean('raw') && flags.boolean('config')) throw new UsageError('--raw and --config exclude each other');
    const ref = parseTransportReference(flags.positionals[0], { allowBareReference: true });
    const registry = registryFromFlags(flags, [ref], (line) => io.stderr(`${line}\n`));
    let source: ImageSource | undefined;
    try {
      source = await openImageSource(ref, registry.access);
      const top = await source.getManifest();
      if (flags.boolean('raw')) {
        io.stdout(top.bytes.toString('utf8'));
        return 0;
      }
      const isIndex = isIndexMediaType(top.mediaType);
      if (isIndex && !registry.platform && !flags.boolean('config')) {
        const index = parse<ImageIndex>(top);
        io.stdout(
          json({
            reference: source.description,
            digest: top.digest,
            mediaType: top.mediaType,
            platforms: index.manifests.map((d: Descriptor) => ({
              platform: d.platform ? formatPlatform(d.platform) : 'unknown',
              digest: d.digest,
              mediaType: d.mediaType,
              size: d.size,
            })),
            manifest: index,
          }),
        );
        return 0;
      }
      const image = isIndex ? await source.getManifestByDigest(selectManifest(parse<ImageIndex>(top), registry.platform ?? hostPlatform()).digest) : top;
      const manifest = parse<ImageManifest>(image);
      const configStream = await source.openBlob(manifest.config);
      const chunks: Buffer[] = [];
      for await (const chunk of configStream) chunks.push(chunk as Buffer);
      const config = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
      if (flags.boolean('config')) {
        io.stdout(json(config));
        return 0;
      }
      io.stdout(
        json({
          reference: source.description,
          digest: image.digest,
          mediaType: image.mediaType,
          ...(isIndex ? { index: { digest: top.digest, mediaType: top.mediaType } } : {}),
          manifest,
          config,
        }),
      );
      return 0;
    } finally {
      await source?.close?.();
      registry.client.close();
    }
  },
};

function parse<T>(raw: RawManifest): T {
  return JSON.parse(raw.bytes.toString('utf8')) as T;
}

function json(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n';
}
