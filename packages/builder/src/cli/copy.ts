import {
  copyImage,
  formatPlatform,
  hostPlatform,
  openImageDestination,
  openImageSource,
  parseTransportReference,
  type ImageDestination,
  type ImageSource,
} from '@tessera/oci';
import type { Command } from './command';
import { UsageError } from './flags';
import { REGISTRY_FLAGS, registryFromFlags } from './registry-flags';

export const copyCommand: Command = {
  name: 'copy',
  summary: 'Copy an image between registries, OCI layouts and docker-archive tars',
  arguments: 'SRC DST',
  description: [
    'Copy an image from SRC to DST, both in skopeo\'s transport syntax:',
    '  docker://REGISTRY/REPOSITORY[:TAG|@DIGEST]   an image on a registry',
    '  oci:DIR[:TAG]                                 an OCI image layout directory',
    '  docker-archive:FILE[:NAME:TAG]                a tar for docker load (to read: :NAME:TAG or :@N)',
    'Blobs the destination has are skipped, blobs on the same registry are mounted, the rest are streamed.',
    'From a multi-platform image, the image for --platform (default: this host) is copied, or every image with --all.',
  ].join('\n'),
  flags: [
    ...REGISTRY_FLAGS,
    { name: 'all', short: 'a', type: 'boolean', description: 'Copy every platform of a multi-platform image, and the index' },
    { name: 'concurrency', type: 'string', valueName: 'N', default: '4', description: 'Blob transfers at once' },
  ],
  positionals: { min: 2, max: 2 },
  footer: 'Example:\n  tessera copy --insecure-registry localhost:5000 docker://localhost:5000/app:1 oci:./app-layout:1',
  async run({ flags, io }) {
    const [srcText, dstText] = flags.positionals;
    const src = parseTransportReference(srcText);
    const dst = parseTransportReference(dstText);
    const concurrency = Number(flags.string('concurrency'));
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new UsageError('--concurrency takes a whole number of at least 1');
    const registry = registryFromFlags(flags, [src, dst], (line) => io.stderr(`${line}\n`));
    if (flags.boolean('all') && registry.platform) throw new UsageError('--all and --platform exclude each other');
    let source: ImageSource | undefined;
    let destination: ImageDestination | undefined;
    let finished = false;
    try {
      source = await openImageSource(src, registry.access);
      const opened = await openImageDestination(dst, registry.access);
      destination = opened.destination;
      const platform = flags.boolean('all') ? 'all' : (registry.platform ?? hostPlatform());
      const result = await copyImage(source, destination, { platform, tags: opened.tags, concurrency });
      await destination.close?.();
      finished = true;
      const where = registry.platform ? ` (${formatPlatform(registry.platform)})` : '';
      io.stdout(
        `Copied ${source.description} to ${destination.description}${where}: ${result.digest}; blobs copied ${result.blobs.copied}, mounted ${result.blobs.mounted}, skipped ${result.blobs.skipped}; ${result.bytes} bytes\n`,
      );
      return 0;
    } finally {
      if (!finished && destination && 'abort' in destination && typeof destination.abort === 'function') await destination.abort();
      await source?.close?.();
      registry.client.close();
    }
  },
};
