import type { Platform } from '@tessera/oci';

export type SnapshotMode = 'full' | 'redo' | 'time';
export type IsolationMode = 'auto' | 'userns' | 'chroot';

/** Everything `tessera build` (and the Nx executor) can ask of a build, after flags are parsed. */
export interface BuildOptions {
  /** Build context: a directory, `dir://DIR` or `tar://FILE`. */
  context: string;
  contextSubPath?: string;
  /** Dockerfile path: absolute, or relative to the context (then to the working directory). */
  dockerfile: string;
  destinations: string[];
  noPush: boolean;
  tarPath?: string;
  ociLayoutPath?: string;
  digestFile?: string;
  imageNameWithDigestFile?: string;
  imageNameTagWithDigestFile?: string;
  buildArgs: Record<string, string>;
  target?: string;
  labels: Record<string, string>;
  /** Platform to build for; defaults to the base image's, or the host's for scratch. */
  platform?: Platform;
  snapshotMode: SnapshotMode;
  singleSnapshot: boolean;
  ignorePaths: string[];
  ignoreVarRun: boolean;
  reproducible: boolean;
  skipUnusedStages: boolean;
  isolation: IsolationMode;
  network: 'host' | 'none';
  /** `--secret id=X,src=FILE` (or env=VAR). */
  secrets: Record<string, { src?: string; env?: string }>;
  runTimeoutMs?: number;
  compression: 'gzip' | 'zstd';
  compressionLevel?: number;
  cache: boolean;
  cacheRepo?: string;
  cacheDir?: string;
  cacheRunLayers: boolean;
  cacheCopyLayers: boolean;
  cacheTtlMs: number;
  noPushCache: boolean;
  /** Registry transport settings, passed to the registry client. */
  insecureRegistries: string[];
  insecure: boolean;
  insecurePull: boolean;
  skipTlsVerify: boolean;
  skipTlsVerifyPull: boolean;
  skipTlsVerifyRegistries: string[];
  registryCertificates: Record<string, string>;
  registryMirrors: string[];
  pushRetry: number;
  benchmarkFile?: string;
  /** Where build state lives (rootfs, layers); defaults to a temporary directory. */
  workDir?: string;
  log: (line: string) => void;
  verbose: boolean;
}

export const DEFAULT_CACHE_TTL_MS = 336 * 3600 * 1000;

export function defaultBuildOptions(overrides: Partial<BuildOptions> & Pick<BuildOptions, 'context'>): BuildOptions {
  return {
    dockerfile: 'Dockerfile',
    destinations: [],
    noPush: false,
    buildArgs: {},
    labels: {},
    snapshotMode: 'full',
    singleSnapshot: false,
    ignorePaths: [],
    ignoreVarRun: true,
    reproducible: false,
    skipUnusedStages: true,
    isolation: 'auto',
    network: 'host',
    secrets: {},
    compression: 'gzip',
    cache: false,
    cacheRunLayers: true,
    cacheCopyLayers: false,
    cacheTtlMs: DEFAULT_CACHE_TTL_MS,
    noPushCache: false,
    insecureRegistries: [],
    insecure: false,
    insecurePull: false,
    skipTlsVerify: false,
    skipTlsVerifyPull: false,
    skipTlsVerifyRegistries: [],
    registryCertificates: {},
    registryMirrors: [],
    pushRetry: 0,
    log: (line) => process.stderr.write(line + '\n'),
    verbose: false,
    ...overrides,
  };
}
