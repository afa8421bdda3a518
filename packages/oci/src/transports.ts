import { InvalidReferenceError } from './errors';
import type { ImageDestination, ImageSource } from './image';
import { parseReference, type ImageReference } from './reference';
import { dockerArchiveDestination, dockerArchiveSource } from './store/docker-archive';
import { ociLayoutDestination, ociLayoutSource } from './store/oci-layout';

/** An image location in skopeo's transport syntax. */
export type TransportReference =
  | { transport: 'docker'; reference: ImageReference }
  | { transport: 'oci'; directory: string; tag?: string }
  | { transport: 'docker-archive'; file: string; reference?: string };

const TRANSPORTS = ['docker', 'oci', 'docker-archive'] as const;

/**
 * Parse `docker://REF`, `oci:DIR[:TAG]` or `docker-archive:FILE[:REF|:@N]`.
 * As skopeo does, a path ends at its first colon. With `allowBareReference`, text without a transport is a registry reference.
 */
export function parseTransportReference(input: string, options: { allowBareReference?: boolean } = {}): TransportReference {
  const colon = input.indexOf(':');
  const name = colon === -1 ? '' : input.slice(0, colon);
  const rest = input.slice(colon + 1);
  if (name === 'docker') {
    if (!rest.startsWith('//')) throw new InvalidReferenceError(input, 'the docker transport is written docker://REGISTRY/REPOSITORY[:TAG|@DIGEST]');
    return { transport: 'docker', reference: parseReference(rest.slice(2)) };
  }
  if (name === 'oci' || name === 'docker-archive') {
    const split = rest.indexOf(':');
    const path = split === -1 ? rest : rest.slice(0, split);
    const suffix = split === -1 ? undefined : rest.slice(split + 1);
    if (!path) throw new InvalidReferenceError(input, `the ${name} transport needs a path`);
    if (name === 'oci') {
      if (suffix === '') throw new InvalidReferenceError(input, 'empty tag');
      if (suffix !== undefined && !/^[A-Za-z0-9_][A-Za-z0-9._:@/+-]*$/.test(suffix)) throw new InvalidReferenceError(input, `invalid tag ${JSON.stringify(suffix)}`);
      return suffix === undefined ? { transport: 'oci', directory: path } : { transport: 'oci', directory: path, tag: suffix };
    }
    if (suffix === '') throw new InvalidReferenceError(input, 'empty reference');
    if (suffix !== undefined && !suffix.startsWith('@')) parseReference(suffix); // validates, with Docker Hub defaults
    return suffix === undefined ? { transport: 'docker-archive', file: path } : { transport: 'docker-archive', file: path, reference: suffix };
  }
  const choices = TRANSPORTS.map((t) => (t === 'docker' ? 'docker://' : `${t}:`)).join(', ');
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//.exec(input);
  if (scheme) throw new InvalidReferenceError(input, `unknown transport ${JSON.stringify(scheme[1])}; use one of ${choices}`);
  if (options.allowBareReference) return { transport: 'docker', reference: parseReference(input) };
  throw new InvalidReferenceError(input, name ? `unknown transport ${JSON.stringify(name)}; use one of ${choices}` : `no transport; use one of ${choices}`);
}

export function formatTransportReference(ref: TransportReference): string {
  switch (ref.transport) {
    case 'docker':
      return `docker://${ref.reference.toString()}`;
    case 'oci':
      return `oci:${ref.directory}${ref.tag !== undefined ? `:${ref.tag}` : ''}`;
    case 'docker-archive':
      return `docker-archive:${ref.file}${ref.reference !== undefined ? `:${ref.reference}` : ''}`;
  }
}

/** How registry transports reach a registry; the caller builds it from its client. */
export interface RegistryTransportAccess {
  source(reference: ImageReference): ImageSource | Promise<ImageSource>;
  destination(reference: ImageReference): ImageDestination | Promise<ImageDestination>;
}

export async function openImageSource(ref: TransportReference, registry?: RegistryTransportAccess): Promise<ImageSource> {
  switch (ref.transport) {
    case 'docker':
      if (!registry) throw new InvalidReferenceError(formatTransportReference(ref), 'no registry client was given for the docker transport');
      return registry.source(ref.reference);
    case 'oci':
      return ociLayoutSource(ref.directory, ref.tag);
    case 'docker-archive':
      return dockerArchiveSource(ref.file, ref.reference);
  }
}

/** A destination and the tags that put its top-level manifest where the reference says. */
export interface OpenedDestination {
  destination: ImageDestination;
  tags: string[];
}

export async function openImageDestination(ref: TransportReference, registry?: RegistryTransportAccess): Promise<OpenedDestination> {
  switch (ref.transport) {
    case 'docker': {
      if (!registry) throw new InvalidReferenceError(formatTransportReference(ref), 'no registry client was given for the docker transport');
      const { reference } = ref;
      // parseReference defaults the tag to latest; a digest-only destination is written by digest alone
      return { destination: await registry.destination(reference), tags: reference.tag !== undefined ? [reference.tag] : [] };
    }
    case 'oci':
      return { destination: await ociLayoutDestination(ref.directory), tags: ref.tag !== undefined ? [ref.tag] : [] };
    case 'docker-archive':
      if (ref.reference?.startsWith('@')) throw new InvalidReferenceError(formatTransportReference(ref), 'an archive index (@N) names an image to read, not one to write');
      return { destination: await dockerArchiveDestination(ref.file), tags: ref.reference !== undefined ? [ref.reference] : [] };
  }
}
