import { parsePlatform, parseReference } from '@tessera/oci';
import { buildImage } from '../build/engine';
import { parseGoDuration } from '../dockerfile/index';
import { defaultBuildOptions, DEFAULT_CACHE_TTL_MS, type BuildOptions, type IsolationMode, type SnapshotMode } from '../build/options';
import type { Command } from './command';
import { UsageError, type FlagSpec, type ParsedFlags } from './flags';

/** How a Kaniko executor flag maps onto Tessera; also the source of docs/migrating-from-kaniko.md's table. */
export type KanikoCompatibility = 'same' | 'mapped' | 'accepted' | 'not-applicable';

export interface BuildFlagSpec extends FlagSpec {
  kaniko?: { status: KanikoCompatibility; note?: string };
}

const same = { status: 'same' } as const;

/** Kaniko's executor flags, in Kaniko's value forms, plus Tessera's own. */
export const BUILD_FLAGS: readonly BuildFlagSpec[] = [
  { name: 'context', short: 'c', type: 'string', valueName: 'DIR', default: '.', description: 'Build context: a directory, dir://DIR or tar://FILE (plain or gzip)', kaniko: { status: 'mapped', note: 'default is the working directory, not /workspace; gs://, s3://, az:// and git:// are refused' } },
  { name: 'context-sub-path', type: 'string', valueName: 'PATH', description: 'Sub-directory of the context to use as the context', kaniko: same },
  { name: 'dockerfile', short: 'f', type: 'string', valueName: 'PATH', default: 'Dockerfile', description: 'Dockerfile, relative to the context or absolute', kaniko: same },
  { name: 'destination', short: 'd', type: 'list', valueName: 'IMAGE', description: 'Image to push to (repeatable)', kaniko: same },
  { name: 'no-push', type: 'boolean', description: 'Build without pushing', kaniko: same },
  { name: 'tar-path', aliases: ['tarPath'], type: 'string', valueName: 'FILE', description: 'Also write the image as a docker-archive tar (docker load)', kaniko: same },
  { name: 'oci-layout-path', type: 'string', valueName: 'DIR', description: 'Also write the image to an OCI image layout', kaniko: same },
  { name: 'digest-file', type: 'string', valueName: 'FILE', description: 'Write the image digest to FILE', kaniko: same },
  { name: 'image-name-with-digest-file', type: 'string', valueName: 'FILE', description: 'Write NAME@DIGEST for each destination to FILE', kaniko: same },
  { name: 'image-name-tag-with-digest-file', type: 'string', valueName: 'FILE', description: 'Write a JSON list of {image, tag, digest} to FILE', kaniko: same },
  { name: 'build-arg', type: 'list', valueName: 'KEY[=VALUE]', description: 'Build argument; a bare KEY takes its value from the environment', kaniko: same },
  { name: 'target', type: 'string', valueName: 'STAGE', description: 'Stage to build (case-insensitive)', kaniko: same },
  { name: 'label', type: 'list', valueName: 'KEY=VALUE', description: 'Label to add to the image (repeatable)', kaniko: same },
  { name: 'custom-platform', aliases: ['customPlatform'], type: 'string', valueName: 'OS/ARCH[/VARIANT]', description: 'Platform to build for (default: the base image\'s)', kaniko: same },
  { name: 'snapshot-mode', aliases: ['snapshotMode'], type: 'string', valueName: 'full|redo|time', default: 'full', description: 'What a snapshot compares: content (full), metadata (redo), or mtime only (time)', kaniko: same },
  { name: 'single-snapshot', type: 'boolean', description: 'One layer per stage, taken at its end', kaniko: same },
  { name: 'ignore-path', type: 'list', valueName: 'PATH', description: 'Path never snapshotted (repeatable)', kaniko: same },
  { name: 'ignore-var-run', type: 'boolean', default: true, description: 'Leave /var/run out of snapshots', kaniko: same },
  { name: 'reproducible', type: 'boolean', description: 'Timestamps from SOURCE_DATE_EPOCH (or the epoch): same inputs, same digest', kaniko: same },
  { name: 'skip-unused-stages', type: 'boolean', default: true, description: 'Build only the stages the target needs', kaniko: { status: 'mapped', note: 'default true, as in BuildKit; --skip-unused-stages=false builds every stage up to the target' } },
  { name: 'cache', type: 'boolean', description: 'Use the layer cache', kaniko: { status: 'mapped', note: 'a miss does not stop later lookups; keys are framed and cover resolved instructions and file contents' } },
  { name: 'cache-repo', type: 'string', valueName: 'REPO', description: 'Registry repository for cached layers (default: <destination>/cache)', kaniko: same },
  { name: 'cache-dir', type: 'string', valueName: 'DIR', description: 'Local directory for cached layers, base image blobs and RUN cache mounts', kaniko: { status: 'mapped', note: "also keeps base blobs (no separate warmer), RUN --mount=type=cache directories, and what the context's files and COPY walks hashed to, so an unchanged COPY is not hashed again" } },
  { name: 'cache-ttl', type: 'string', valueName: 'DURATION', default: '336h', description: 'Age after which a cache entry is a miss', kaniko: same },
  { name: 'cache-run-layers', type: 'boolean', default: true, description: 'Cache RUN layers', kaniko: same },
  { name: 'cache-copy-layers', type: 'boolean', description: 'Cache COPY layers', kaniko: same },
  { name: 'no-push-cache', type: 'boolean', description: 'Do not push cache layers', kaniko: same },
  { name: 'compressed-caching', type: 'boolean', default: true, description: 'Accepted for Kaniko compatibility; layers are always streamed', kaniko: { status: 'accepted', note: 'no effect: Tessera never holds a layer in memory' } },
  { name: 'compression', type: 'string', valueName: 'gzip|zstd', default: 'gzip', description: 'Layer compression', kaniko: same },
  { name: 'compression-level', type: 'string', valueName: 'N', description: 'Compression level', kaniko: same },
  { name: 'insecure', type: 'boolean', description: 'Push to the destination registries over plain HTTP', kaniko: same },
  { name: 'insecure-pull', type: 'boolean', description: 'Pull base images over plain HTTP', kaniko: same },
  { name: 'insecure-registry', type: 'list', valueName: 'HOST', description: 'Registry reached over plain HTTP (repeatable)', kaniko: same },
  { name: 'skip-tls-verify', type: 'boolean', description: 'Do not check TLS certificates when pushing', kaniko: same },
  { name: 'skip-tls-verify-pull', type: 'boolean', description: 'Do not check TLS certificates when pulling', kaniko: same },
  { name: 'skip-tls-verify-registry', type: 'list', valueName: 'HOST', description: 'Registry whose TLS certificate is not checked (repeatable)', kaniko: same },
  { name: 'registry-certificate', type: 'map', valueName: 'HOST=CA.pem', description: 'CA certificate to trust for a registry', kaniko: same },
  { name: 'push-retry', type: 'string', valueName: 'N', default: '0', description: 'Extra attempts for each push request', kaniko: same },
  { name: 'image-download-retry', type: 'string', valueName: 'N', default: '0', description: 'Extra attempts for each pull request', kaniko: same },
  { name: 'image-fs-extract-retry', type: 'string', valueName: 'N', default: '0', description: 'Accepted for Kaniko compatibility', kaniko: { status: 'accepted', note: 'no effect: layer reads are retried by the registry client' } },
  { name: 'cleanup', type: 'boolean', description: 'Accepted for Kaniko compatibility: Tessera always removes its work directory', kaniko: { status: 'accepted', note: 'always on' } },
  { name: 'force', type: 'boolean', description: 'Accepted for Kaniko compatibility: Tessera runs anywhere', kaniko: { status: 'accepted', note: 'not needed: Tessera never touches the host root' } },
  { name: 'use-new-run', type: 'boolean', description: 'Accepted for Kaniko compatibility: the snapshot method is chosen automatically', kaniko: { status: 'accepted' } },
  { name: 'force-build-metadata', type: 'boolean', description: 'Accepted for Kaniko compatibility', kaniko: { status: 'accepted' } },
  { name: 'skip-push-permission-check', type: 'boolean', description: 'Accepted for Kaniko compatibility: no permission probe is made', kaniko: { status: 'accepted' } },
  { name: 'push-ignore-immutable-tag-errors', type: 'boolean', description: 'Accepted for Kaniko compatibility', kaniko: { status: 'accepted' } },
  { name: 'preserve-context', type: 'boolean', description: 'Accepted for Kaniko compatibility: the context is never changed', kaniko: { status: 'accepted' } },
  { name: 'materialize', type: 'boolean', description: 'Accepted for Kaniko compatibility', kaniko: { status: 'accepted' } },
  { name: 'verbosity', short: 'v', type: 'string', valueName: 'LEVEL', default: 'info', description: 'Log level: panic, fatal, error, warn, info, debug or trace (debug and trace show requests)', kaniko: same },
  { name: 'log-format', type: 'string', valueName: 'text|color|json', default: 'text', description: 'Accepted for Kaniko compatibility; logs are plain text', kaniko: { status: 'accepted' } },
  { name: 'log-timestamp', type: 'boolean', description: 'Prefix log lines with a timestamp', kaniko: same },
  // Tessera's own.
  { name: 'secret', type: 'list', valueName: 'id=ID,src=FILE|env=VAR', description: 'Secret for RUN --mount=type=secret; never stored in a layer or the config' },
  { name: 'isolation', type: 'string', valueName: 'auto|userns|chroot', default: 'auto', description: 'RUN sandbox: user namespace, or chroot in private namespaces (as root)' },
  { name: 'network', type: 'string', valueName: 'host|none', default: 'host', description: 'Network for RUN' },
  { name: 'run-timeout', type: 'string', valueName: 'DURATION', description: 'Kill a RUN that takes longer (e.g. 10m)' },
  { name: 'benchmark-file', type: 'string', valueName: 'FILE', env: 'BENCHMARK_FILE', description: 'Write per-phase timings as JSON' },
  { name: 'verbose', type: 'boolean', description: 'Show every registry request' },
];

/** Kaniko flags that make no sense outside Kaniko's own container, with what to use instead. */
export const KANIKO_NOT_APPLICABLE: Record<string, string> = {
  bucket: 'download the context and pass --context tar://FILE',
  'kaniko-dir': 'Tessera keeps its work in a temporary directory; set TMPDIR to move it',
  git: 'clone the repository first and pass --context DIR',
  'registry-mirror': 'registry mirrors are not supported; pull the base through a pull-through cache name instead',
  'skip-default-registry-fallback': 'registry mirrors are not supported',
  'registry-map': 'rewrite the FROM reference or pass it as a --build-arg',
  'registry-client-cert': 'mutual TLS is not supported yet',
};

const NOT_APPLICABLE_FLAGS: BuildFlagSpec[] = Object.keys(KANIKO_NOT_APPLICABLE).map((name) => ({
  name,
  type: name === 'git' || name === 'bucket' || name === 'kaniko-dir' || name === 'registry-map' ? 'string' : name === 'skip-default-registry-fallback' ? 'boolean' : 'list',
  description: `Kaniko only: ${KANIKO_NOT_APPLICABLE[name]}`,
  hidden: true,
  kaniko: { status: 'not-applicable', note: KANIKO_NOT_APPLICABLE[name] },
}));

export const buildCommand: Command = {
  name: 'build',
  summary: 'Build a Dockerfile without a daemon (Kaniko executor flags)',
  arguments: '',
  description: [
    'Build the Dockerfile in --context, running RUN in a sandbox over an unpacked rootfs and snapshotting',
    'the changes into layers, then push to each --destination and/or write --tar-path / --oci-layout-path.',
    'Takes Kaniko\'s executor flags, so a Kaniko job migrates by replacing /kaniko/executor with `npx tessera build`.',
  ].join('\n'),
  flags: [...BUILD_FLAGS, ...NOT_APPLICABLE_FLAGS],
  positionals: { min: 0, max: 0 },
  footer: 'Example:\n  tessera build --context . --dockerfile Dockerfile --no-push --oci-layout-path ./out',
  async run({ flags, io }) {
    for (const name of Object.keys(KANIKO_NOT_APPLICABLE)) {
      if (flags.given.has(name)) throw new UsageError(`--${name} is a Kaniko flag that does not apply to Tessera: ${KANIKO_NOT_APPLICABLE[name]}`);
    }
    const options = buildOptionsFromFlags(flags, io.env, (line) => io.stderr(line + '\n'));
    const result = await buildImage(options);
    io.stdout(`${result.digest}\n`);
    return 0;
  },
};

export function buildOptionsFromFlags(flags: ParsedFlags, env: Record<string, string | undefined>, write: (line: string) => void): BuildOptions {
  const verbosity = flags.string('verbosity') ?? 'info';
  const quiet = ['panic', 'fatal', 'error'].includes(verbosity);
  const timestamp = flags.boolean('log-timestamp');
  const log = (line: string) => {
    if (quiet && !line.startsWith('warning:')) return;
    write(timestamp ? `${new Date().toISOString()} ${line}` : line);
  };
  const snapshotMode = flags.string('snapshot-mode') ?? 'full';
  if (!['full', 'redo', 'time'].includes(snapshotMode)) throw new UsageError(`--snapshot-mode must be full, redo or time, not ${JSON.stringify(snapshotMode)}`);
  const isolation = flags.string('isolation') ?? 'auto';
  if (!['auto', 'userns', 'chroot'].includes(isolation)) throw new UsageError(`--isolation must be auto, userns or chroot, not ${JSON.stringify(isolation)}`);
  const network = flags.string('network') ?? 'host';
  if (network !== 'host' && network !== 'none') throw new UsageError(`--network must be host or none, not ${JSON.stringify(network)}`);
  const compression = flags.string('compression') ?? 'gzip';
  if (compression !== 'gzip' && compression !== 'zstd') throw new UsageError(`--compression must be gzip or zstd, not ${JSON.stringify(compression)}`);
  const destinations = flags.list('destination');
  for (const d of destinations) parseReference(d);
  const noPush = flags.boolean('no-push');
  if (!noPush && destinations.length === 0) {
    throw new UsageError('give at least one --destination, or --no-push (with --tar-path or --oci-layout-path to keep the image)');
  }
  const platformText = flags.string('custom-platform');
  return defaultBuildOptions({
    context: flags.string('context') ?? '.',
    contextSubPath: flags.string('context-sub-path'),
    dockerfile: flags.string('dockerfile') ?? 'Dockerfile',
    destinations,
    noPush,
    tarPath: flags.string('tar-path'),
    ociLayoutPath: flags.string('oci-layout-path'),
    digestFile: flags.string('digest-file'),
    imageNameWithDigestFile: flags.string('image-name-with-digest-file'),
    imageNameTagWithDigestFile: flags.string('image-name-tag-with-digest-file'),
    buildArgs: parseBuildArgs(flags.list('build-arg'), env),
    target: flags.string('target'),
    labels: parseKeyValues(flags.list('label'), '--label'),
    ...(platformText ? { platform: parsePlatform(platformText) } : {}),
    snapshotMode: snapshotMode as SnapshotMode,
    singleSnapshot: flags.boolean('single-snapshot'),
    ignorePaths: flags.list('ignore-path'),
    ignoreVarRun: flags.boolean('ignore-var-run'),
    reproducible: flags.boolean('reproducible'),
    skipUnusedStages: flags.boolean('skip-unused-stages'),
    isolation: isolation as IsolationMode,
    network,
    secrets: parseSecrets(flags.list('secret')),
    runTimeoutMs: flags.string('run-timeout') ? parseDuration(flags.string('run-timeout')!, '--run-timeout') : undefined,
    compression,
    compressionLevel: optionalInt(flags.string('compression-level'), '--compression-level'),
    cache: flags.boolean('cache'),
    cacheRepo: flags.string('cache-repo'),
    cacheDir: flags.string('cache-dir'),
    cacheRunLayers: flags.boolean('cache-run-layers'),
    cacheCopyLayers: flags.boolean('cache-copy-layers'),
    cacheTtlMs: flags.string('cache-ttl') ? parseDuration(flags.string('cache-ttl')!, '--cache-ttl') : DEFAULT_CACHE_TTL_MS,
    noPushCache: flags.boolean('no-push-cache'),
    insecureRegistries: flags.list('insecure-registry'),
    insecure: flags.boolean('insecure'),
    insecurePull: flags.boolean('insecure-pull'),
    skipTlsVerify: flags.boolean('skip-tls-verify'),
    skipTlsVerifyPull: flags.boolean('skip-tls-verify-pull'),
    skipTlsVerifyRegistries: flags.list('skip-tls-verify-registry'),
    registryCertificates: flags.map('registry-certificate'),
    pushRetry: Math.max(optionalInt(flags.string('push-retry'), '--push-retry') ?? 0, optionalInt(flags.string('image-download-retry'), '--image-download-retry') ?? 0),
    benchmarkFile: flags.string('benchmark-file'),
    verbose: flags.boolean('verbose') || verbosity === 'debug' || verbosity === 'trace',
    log,
  });
}

export function parseBuildArgs(items: string[], env: Record<string, string | undefined>): Record<string, string> {
  const args: Record<string, string> = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq === 0) throw new UsageError(`--build-arg ${JSON.stringify(item)} has no name`);
    if (eq < 0) {
      const value = env[item];
      if (value !== undefined) args[item] = value;
    } else {
      args[item.slice(0, eq)] = item.slice(eq + 1);
    }
  }
  return args;
}

function parseKeyValues(items: string[], flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new UsageError(`${flag} takes KEY=VALUE, not ${JSON.stringify(item)}`);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

export function parseSecrets(items: string[]): BuildOptions['secrets'] {
  const secrets: BuildOptions['secrets'] = {};
  for (const item of items) {
    const fields = Object.fromEntries(item.split(',').map((kv) => {
      const eq = kv.indexOf('=');
      return eq < 0 ? [kv, ''] : [kv.slice(0, eq), kv.slice(eq + 1)];
    }));
    const id = fields.id;
    if (!id) throw new UsageError('--secret needs id=ID (and src=FILE or env=VAR)');
    const src = fields.src ?? fields.source;
    if (src) secrets[id] = { src };
    else secrets[id] = { env: fields.env ?? id };
  }
  return secrets;
}

function optionalInt(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text)) throw new UsageError(`${flag} takes a whole number, not ${JSON.stringify(text)}`);
  return Number(text);
}

/** Go durations as Kaniko takes them (`336h`, `10m`, `30s`), in milliseconds. */
export function parseDuration(text: string, flag: string): number {
  try {
    return parseGoDuration(text) / 1e6;
  } catch {
    throw new UsageError(`${flag} takes a duration such as 30s, 10m or 336h, not ${JSON.stringify(text)}`);
  }
}
