import { InvalidReferenceError } from './errors';

/** Docker Hub's name in references, its host on the wire, and its key in docker's config.json. */
export const DOCKER_HUB = 'docker.io';
export const DOCKER_HUB_WIRE_HOST = 'registry-1.docker.io';
export const DOCKER_HUB_CONFIG_KEY = 'https://index.docker.io/v1/';

const DOCKER_HUB_ALIASES = new Set([DOCKER_HUB, 'index.docker.io', DOCKER_HUB_WIRE_HOST]);

// The grammar of distribution's reference package.
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_LABEL = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const IPV6_HOST = /^\[[a-fA-F0-9:]+\]$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;
const SHA256_DIGEST = /^sha256:[a-f0-9]{64}$/;
const MAX_NAME_LENGTH = 255;

/** The host to connect to for a registry name: Docker Hub's references say `docker.io`, its API lives elsewhere. */
export function registryWireHost(registry: string): string {
  return DOCKER_HUB_ALIASES.has(registry) ? DOCKER_HUB_WIRE_HOST : registry;
}

/** The name a registry has in references: every Docker Hub alias becomes `docker.io`. */
export function normalizeRegistry(registry: string): string {
  return DOCKER_HUB_ALIASES.has(registry) ? DOCKER_HUB : registry;
}

/** A fully qualified image reference: registry, repository, and a tag, a digest or both. */
export class ImageReference {
  readonly registry: string;
  readonly repository: string;
  readonly tag?: string;
  readonly digest?: string;

  constructor(parts: { registry: string; repository: string; tag?: string; digest?: string }) {
    const registry = normalizeRegistry(parts.registry);
    const input = `${parts.registry}/${parts.repository}${parts.tag ? `:${parts.tag}` : ''}${parts.digest ? `@${parts.digest}` : ''}`;
    validateRegistry(input, registry);
    validateRepository(input, parts.repository);
    if (parts.tag !== undefined && !TAG.test(parts.tag)) throw new InvalidReferenceError(input, `invalid tag ${JSON.stringify(parts.tag)}`);
    if (parts.digest !== undefined) validateDigest(input, parts.digest);
    this.registry = registry;
    this.repository = parts.repository;
    if (parts.tag !== undefined) this.tag = parts.tag;
    if (parts.digest !== undefined) this.digest = parts.digest;
  }

  /** What goes after `/manifests/` on the wire: the digest when there is one, else the tag. */
  get reference(): string {
    const value = this.digest ?? this.tag;
    if (value === undefined) throw new InvalidReferenceError(this.toString(), 'has neither a tag nor a digest');
    return value;
  }

  /** The host to connect to (`registry-1.docker.io` for Docker Hub). */
  get host(): string {
    return registryWireHost(this.registry);
  }

  /** `registry/repository`, without tag or digest. */
  get name(): string {
    return `${this.registry}/${this.repository}`;
  }

  toString(): string {
    return `${this.name}${this.tag !== undefined ? `:${this.tag}` : ''}${this.digest !== undefined ? `@${this.digest}` : ''}`;
  }

  /**
   * A sibling reference. Giving a tag drops the digest and giving a digest drops the tag,
   * unless both are given; a new repository keeps the registry.
   */
  with(change: { registry?: string; repository?: string; tag?: string; digest?: string }): ImageReference {
    const tagOrDigest = change.tag !== undefined || change.digest !== undefined;
    return new ImageReference({
      registry: change.registry ?? this.registry,
      repository: change.repository ?? this.repository,
      tag: tagOrDigest ? change.tag : this.tag,
      digest: tagOrDigest ? change.digest : this.digest,
    });
  }

  withTag(tag: string): ImageReference {
    return this.with({ tag });
  }

  withDigest(digest: string): ImageReference {
    return this.with({ digest });
  }
}

/**
 * Parses `[registry[:port]/]repository[:tag][@digest]` the way docker does:
 * the first path part is a registry when it has a `.` or `:` or is `localhost`;
 * otherwise the registry is `docker.io`, and a one-part name gets `library/`.
 * With neither tag nor digest the tag is `latest`.
 */
export function parseReference(input: string): ImageReference {
  if (typeof input !== 'string' || input.length === 0) throw new InvalidReferenceError(String(input), 'empty reference');
  if (/\s/.test(input)) throw new InvalidReferenceError(input, 'contains white space');
  if (input.includes('://')) throw new InvalidReferenceError(input, 'must not contain a scheme such as https://');

  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    validateDigest(input, digest);
  }

  // A tag follows the last ':' when no '/' comes after it (otherwise that ':' is a port).
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw new InvalidReferenceError(input, `invalid tag ${JSON.stringify(tag)}`);
  }

  let registry = DOCKER_HUB;
  let repository = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase()) {
      registry = first;
      repository = rest.slice(slash + 1);
    }
  }
  registry = normalizeRegistry(registry);
  if (registry === DOCKER_HUB && repository.length > 0 && !repository.includes('/')) repository = `library/${repository}`;
  if (tag === undefined && digest === undefined) tag = 'latest';
  return new ImageReference({ registry, repository, tag, digest });
}

/** Like parseReference, but returns undefined instead of throwing. */
export function tryParseReference(input: string): ImageReference | undefined {
  try {
    return parseReference(input);
  } catch {
    return undefined;
  }
}

function validateRegistry(input: string, registry: string): void {
  if (registry.length === 0) throw new InvalidReferenceError(input, 'empty registry');
  let host = registry;
  const port = /:(\d*)$/.exec(registry);
  if (port && !IPV6_HOST.test(registry)) {
    if (!/^\d{1,5}$/.test(port[1]!) || Number(port[1]) > 65535) throw new InvalidReferenceError(input, `invalid port in registry ${JSON.stringify(registry)}`);
    host = registry.slice(0, port.index);
  }
  if (IPV6_HOST.test(host)) return;
  if (!host.split('.').every((label) => DOMAIN_LABEL.test(label))) {
    throw new InvalidReferenceError(input, `invalid registry host ${JSON.stringify(registry)}`);
  }
}

function validateRepository(input: string, repository: string): void {
  if (repository.length === 0) throw new InvalidReferenceError(input, 'empty repository name');
  if (repository !== repository.toLowerCase()) throw new InvalidReferenceError(input, 'repository name must be lowercase');
  for (const component of repository.split('/')) {
    if (!PATH_COMPONENT.test(component)) {
      throw new InvalidReferenceError(input, `invalid repository name component ${JSON.stringify(component)} (allowed: a-z, 0-9, and . _ __ - between them)`);
    }
  }
  if (repository.length > MAX_NAME_LENGTH) throw new InvalidReferenceError(input, `repository name longer than ${MAX_NAME_LENGTH} characters`);
}

function validateDigest(input: string, digest: string): void {
  if (!DIGEST.test(digest)) throw new InvalidReferenceError(input, `invalid digest ${JSON.stringify(digest)}`);
  if (digest.startsWith('sha256:') && !SHA256_DIGEST.test(digest)) {
    throw new InvalidReferenceError(input, 'a sha256 digest has 64 lowercase hex characters');
  }
}
