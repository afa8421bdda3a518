import { lstat, mkdir, mkdtemp, readFile, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import {
  copyImage,
  formatPlatform,
  hostPlatform,
  ociLayoutDestination,
  dockerArchiveDestination,
  parseReference,
  registryImageDestination,
  registryImageSource,
  Limiter,
  moveBlob,
  RegistryClient,
  BlobStore,
  TesseraError,
  type ImageDestination,
  type ImageReference,
  type Platform,
} from '@tessera/oci';
import { cachingImageSource, DirectoryLayerCache, RegistryLayerCache, TieredLayerCache, type LayerCache } from '../cache/index';
import { createIgnoreMatcher, FileHashMemo, isInside, loadIgnorePatterns, openBuildContext, sourcePathInContext, TreeListings } from '../context/index';
import { hasGlobMeta } from '../context/glob';
import { expandWord, parseDockerfile, type Dockerfile, type Stage } from '../dockerfile/index';
import { resolveBaseImage, scratchImage, type BaseImage } from './base-image';
import { BuiltImage, type ImageLayer } from './built-image';
import type { BuildOptions } from './options';
import { openLayer, Rootfs, RootfsCache } from './rootfs';
import { StageBuilder, type StageResult, type StageServices } from './stage-builder';
import { stagesToBuild } from './stages';

export interface BuildResult {
  /** Digest of the final image manifest. */
  digest: string;
  image: BuiltImage;
  /** Destinations pushed, as `name:tag`. */
  pushed: string[];
  /** Phase name → milliseconds, as written to `--benchmark-file`. */
  timings: Record<string, number>;
}

/** Builds a Dockerfile: resolve stages, build the ones the target needs, then write every output. */
export async function buildImage(options: BuildOptions): Promise<BuildResult> {
  const timings: Record<string, number> = {};
  const time = (phase: string, ms: number) => {
    timings[phase] = (timings[phase] ?? 0) + ms;
  };
  const started = Date.now();
  const workDir = options.workDir ?? (await mkdtemp(join(tmpdir(), 'tessera-build-')));
  await mkdir(join(workDir, 'layers'), { recursive: true });
  const context = await openBuildContext(options.context, { subPath: options.contextSubPath });
  const client = new RegistryClient(registryClientOptions(options));
  try {
    const dockerfilePath = await locateDockerfile(options.dockerfile, context.root);
    const dockerfile = parseDockerfile(await readFile(dockerfilePath, 'utf8'), { file: options.dockerfile });
    const ignore = createIgnoreMatcher(await loadIgnorePatterns(context.root, dockerfilePath));
    warnSecretLookingArgs(options);

    const buildPlatform = hostPlatform();
    const targetPlatform = options.platform ?? buildPlatform;
    const buildArgs = new Map<string, string>([...platformArgs('TARGET', targetPlatform), ...platformArgs('BUILD', buildPlatform), ...Object.entries(options.buildArgs)]);
    const globalArgs = resolveGlobalArgs(dockerfile, buildArgs);
    const target = findTarget(dockerfile, options.target);
    const needed = stagesToBuild(dockerfile, target, globalArgs, options.skipUnusedStages);

    const hashMemo = options.cache && options.cacheDir ? await FileHashMemo.load(join(options.cacheDir, 'content-hashes.json')) : undefined;
    // Walk keys only pay off with the memo that remembers them; big COPY sources start listing now.
    const treeListings = hashMemo ? new TreeListings(ignore) : undefined;
    if (treeListings) prefetchTreeListings(treeListings, [...needed, target], context.root);

    const results = new Map<number, Promise<StageResult>>();
    const baseCache = new Map<string, Promise<BaseImage>>();
    // --cache-dir keeps base blobs too (Kaniko's warmer), so a second build downloads no base layer.
    const baseBlobs = options.cacheDir ? new BlobStore(options.cacheDir) : undefined;
    const openSource = (name: string) => {
      const source = registryImageSource(client, parseReference(name));
      return baseBlobs ? cachingImageSource(source, baseBlobs, { onWarning: (m) => options.log(`warning: ${m}`) }) : source;
    };
    const resolveBase = (name: string, platform?: Platform) => {
      const key = `${name}|${platform ? formatPlatform(platform) : ''}`;
      let base = baseCache.get(key);
      if (!base) {
        const t = Date.now();
        base = resolveBaseImage(name, openSource, platform ?? targetPlatform).finally(() => time('resolve base', Date.now() - t));
        baseCache.set(key, base);
      }
      return base;
    };
    const imageRootfsCache = new Map<string, Promise<Rootfs>>();
    const rootfsCache = options.cacheDir ? new RootfsCache(join(options.cacheDir, 'rootfs')) : undefined;

    const services: StageServices = {
      options,
      contextRoot: context.root,
      ignore,
      workDir,
      platform: targetPlatform,
      buildArgs,
      globalArgs,
      timings: time,
      layerCache: layerCacheFor(options, client),
      hashMemo,
      treeListings,
      materialise: async (name, layers) => {
        const rootfs = await Rootfs.materialise(join(workDir, name), layers, { onWarning: (m) => options.log(`warning: ${m}`), cache: rootfsCache });
        if (rootfsCache) options.log(`rootfs: ${rootfs.restoredFromCache} of ${layers.length} layers copied from the unpack cache, the rest extracted`);
        return rootfs;
      },
      stageByName: async (name) => {
        const stage = lookupStage(dockerfile, name);
        return stage ? buildStage(stage) : undefined;
      },
      imageRootfs: (name) => {
        let rootfs = imageRootfsCache.get(name);
        if (!rootfs) {
          rootfs = resolveBase(name).then((base) => services.materialise(`image-${imageRootfsCache.size}`, base.layers));
          imageRootfsCache.set(name, rootfs);
        }
        return rootfs;
      },
    };

    const expandBase = (stage: Stage) => expandWord(stage.baseName, (n) => globalArgs.get(n), { escapeToken: dockerfile.directives.escape });
    // Stages whose layers end up in the final image: their uploads can start as soon as each layer is written.
    const finalChain = new Set<number>();
    for (let stage: Stage | undefined = target; stage; stage = lookupStage(dockerfile, expandBase(stage), stage.index)) finalChain.add(stage.index);
    const early = options.noPush ? undefined : new EarlyUpload(options.destinations.map((d) => registryImageDestination(client, parseReference(d))), options);

    const buildStage = (stage: Stage): Promise<StageResult> => {
      let result = results.get(stage.index);
      if (!result) {
        result = (async () => {
          const baseName = expandBase(stage);
          const platformText = stage.platform ? expandWord(stage.platform, (n) => buildArgs.get(n) ?? globalArgs.get(n)) : undefined;
          const platform = platformText ? parsePlatformArg(platformText) : undefined;
          const parent = lookupStage(dockerfile, baseName, stage.index);
          let base: BaseImage;
          if (parent) {
            const p = await buildStage(parent);
            base = { name: baseName, family: p.image.family, config: p.image.config, layers: p.layers, cacheKey: p.cacheKey };
          } else if (baseName.toLowerCase() === 'scratch') {
            base = scratchImage(platform ?? targetPlatform);
          } else {
            base = await resolveBase(baseName, platform);
          }
          options.log(`${stage.name ? `[${stage.name}]` : `[stage ${stage.index}]`} FROM ${baseName}${base.digest ? ` (${base.digest})` : ''}`);
          const onLayer = early && finalChain.has(stage.index) ? (layer: ImageLayer) => early.add(layer) : undefined;
          return new StageBuilder(stage, base, { ...services, onLayer }).build();
        })();
        results.set(stage.index, result);
      }
      return result;
    };

    for (const stage of needed) await buildStage(stage);
    const finalStage = await buildStage(target);
    const image = finalImage(finalStage, options);
    await early?.settle();
    await services.hashMemo?.save();
    const pushed = await writeOutputs(image, options, client, time);
    timings.total = Date.now() - started;
    if (options.benchmarkFile) await writeFile(options.benchmarkFile, JSON.stringify(timings, null, 2) + '\n');
    options.log(`built ${image.digest}`);
    return { digest: image.digest, image, pushed, timings };
  } finally {
    client.close();
    await context.close();
    if (!options.workDir) await rm(workDir, { recursive: true, force: true });
  }
}

/** The target stage's image plus `--label`s and the base annotations. */
function finalImage(result: StageResult, options: BuildOptions): BuiltImage {
  const { base } = result;
  const config = structuredClone(result.image.config);
  if (Object.keys(options.labels).length) {
    config.config ??= {};
    config.config.Labels = { ...(config.config.Labels ?? {}), ...options.labels };
  }
  const annotations: Record<string, string> = {};
  if (base.pinnedName && base.digest) {
    annotations['org.opencontainers.image.base.name'] = base.pinnedName.replace(/@sha256:[a-f0-9]+$/, '');
    annotations['org.opencontainers.image.base.digest'] = base.digest;
  }
  return new BuiltImage(result.layers, config, result.image.family, { description: 'built image', annotations });
}

async function writeOutputs(image: BuiltImage, options: BuildOptions, client: RegistryClient, time: (p: string, ms: number) => void): Promise<string[]> {
  const pushed: string[] = [];
  const started = Date.now();
  if (!options.noPush) {
    if (options.destinations.length === 0) {
      throw new TesseraError('no --destination given: add one, or use --no-push (with --tar-path or --oci-layout-path to keep the image)', 'NO_DESTINATION');
    }
    const refs = options.destinations.map((d) => parseReference(d));
    // Group tags by repository: one copy per repository, then each extra tag is a manifest PUT.
    for (const ref of refs) {
      await copyImage(image, registryImageDestination(client, ref), { tags: ref.tag ? [ref.tag] : [] });
      pushed.push(ref.toString());
      options.log(`pushed ${ref.toString()}@${image.digest}`);
    }
  }
  time('push', Date.now() - started);
  if (options.ociLayoutPath) {
    const tag = options.destinations[0] ? (parseReference(options.destinations[0]).tag ?? 'latest') : 'latest';
    const destination = await ociLayoutDestination(resolve(options.ociLayoutPath));
    await copyImage(image, destination, { tags: [tag] });
    await destination.close?.();
  }
  if (options.tarPath) {
    const destination = await dockerArchiveDestination(resolve(options.tarPath));
    const tags = options.destinations.length ? options.destinations.map((d) => parseReference(d).toString()) : [];
    await copyImage(image, destination, { tags: tags.length ? [tags[0]!] : [] });
    await destination.close?.();
  }
  await writeDigestFiles(image, options);
  return pushed;
}

async function writeDigestFiles(image: BuiltImage, options: BuildOptions): Promise<void> {
  const refs: ImageReference[] = options.destinations.map((d) => parseReference(d));
  if (options.digestFile) await writeFile(options.digestFile, image.digest);
  if (options.imageNameWithDigestFile) {
    await writeFile(options.imageNameWithDigestFile, refs.map((r) => `${r.registry}/${r.repository}@${image.digest}`).join('\n') + (refs.length ? '\n' : ''));
  }
  if (options.imageNameTagWithDigestFile) {
    const entries = refs.map((r) => ({ image: `${r.registry}/${r.repository}`, tag: r.tag ?? 'latest', digest: image.digest }));
    await writeFile(options.imageNameTagWithDigestFile, JSON.stringify(entries));
  }
}

/**
 * Uploads each layer of the final image as soon as it is written, overlapping the rest of the build.
 * Failures are left to the final push, which retries whatever is still missing.
 */
class EarlyUpload {
  private readonly tasks: Promise<unknown>[] = [];
  private readonly limiter = new Limiter(4);
  private readonly destinations: ImageDestination[];

  constructor(
    destinations: ImageDestination[],
    private readonly options: Pick<BuildOptions, 'log' | 'verbose'>,
  ) {
    // One upload per repository, whatever the number of tags.
    this.destinations = [...new Map(destinations.map((d) => [`${d.location?.registry}/${d.location?.repository}`, d])).values()];
  }

  add(layer: ImageLayer): void {
    const source = { openBlob: () => openLayer(layer), blobLocation: () => layer.source?.location };
    for (const destination of this.destinations) {
      const task = this.limiter.run(() => moveBlob(source, destination, layer.descriptor));
      this.tasks.push(task.catch((e: unknown) => this.options.verbose && this.options.log(`early upload of ${layer.descriptor.digest} failed, the push retries it: ${e instanceof Error ? e.message : String(e)}`)));
    }
  }

  async settle(): Promise<void> {
    await Promise.all(this.tasks);
  }
}

/** `--cache`: a directory cache (`--cache-dir`) in front of a registry cache (`--cache-repo`, default `<destination>/cache`). */
function layerCacheFor(options: BuildOptions, client: RegistryClient): LayerCache | undefined {
  if (!options.cache) return undefined;
  const onWarning = (m: string) => options.log(`warning: ${m}`);
  const caches: LayerCache[] = [];
  if (options.cacheDir) caches.push(new DirectoryLayerCache(options.cacheDir, { ttlMs: options.cacheTtlMs, onWarning }));
  const repo = options.cacheRepo ?? (options.destinations[0] ? `${parseReference(options.destinations[0]).registry}/${parseReference(options.destinations[0]).repository}/cache` : undefined);
  if (repo) {
    const ref = parseReference(repo);
    caches.push(new RegistryLayerCache(client, ref, { ttlMs: options.cacheTtlMs, onWarning, push: !options.noPushCache }));
  }
  if (caches.length === 0) {
    throw new TesseraError('--cache needs --cache-dir, --cache-repo or a --destination to derive the cache repository from', 'USAGE');
  }
  options.log(`cache: ${caches.map((c) => c.description).join(', then ')}`);
  return caches.length === 1 ? caches[0] : new TieredLayerCache(caches);
}

function registryClientOptions(options: BuildOptions) {
  const insecure = [...options.insecureRegistries];
  if (options.insecure || options.insecurePull) {
    for (const d of options.destinations) insecure.push(parseReference(d).registry);
  }
  return {
    insecureRegistries: insecure,
    skipTlsVerify: options.skipTlsVerify || options.skipTlsVerifyPull ? true : options.skipTlsVerifyRegistries,
    registryCertificates: options.registryCertificates,
    retry: { attempts: Math.max(1, options.pushRetry + 1) + 2, baseDelayMs: 250, maxDelayMs: 10_000 },
    log: options.verbose ? options.log : undefined,
  };
}

async function locateDockerfile(dockerfile: string, contextRoot: string): Promise<string> {
  const candidates = isAbsolute(dockerfile) ? [dockerfile] : [join(contextRoot, dockerfile), resolve(dockerfile)];
  for (const candidate of candidates) {
    if (await stat(candidate).then((s) => s.isFile(), () => false)) return candidate;
  }
  throw new TesseraError(`Dockerfile not found: ${dockerfile} (looked in the context and the working directory)`, 'DOCKERFILE_NOT_FOUND', 'pass --dockerfile relative to the context, or an absolute path');
}

function platformArgs(prefix: 'TARGET' | 'BUILD', platform: Platform): Array<[string, string]> {
  return [
    [`${prefix}PLATFORM`, formatPlatform(platform)],
    [`${prefix}OS`, platform.os],
    [`${prefix}ARCH`, platform.architecture],
    [`${prefix}VARIANT`, platform.variant ?? ''],
  ];
}

function resolveGlobalArgs(dockerfile: Dockerfile, buildArgs: Map<string, string>): Map<string, string> {
  const globals = new Map<string, string>();
  // Predefined platform args are visible to FROM lines without a declaration.
  for (const [k, v] of buildArgs) if (/^(TARGET|BUILD)(PLATFORM|OS|ARCH|VARIANT)$/.test(k)) globals.set(k, v);
  for (const instruction of dockerfile.globalArgs) {
    for (const arg of instruction.args) {
      const fallback = arg.defaultValue === undefined ? undefined : expandWord(arg.defaultValue, (n) => globals.get(n), { escapeToken: dockerfile.directives.escape });
      const value = buildArgs.get(arg.name) ?? fallback;
      if (value !== undefined) globals.set(arg.name, value);
    }
  }
  return globals;
}

function lookupStage(dockerfile: Dockerfile, name: string, before = Infinity): Stage | undefined {
  if (/^\d+$/.test(name)) {
    const stage = dockerfile.stages[Number(name)];
    return stage && stage.index < before ? stage : undefined;
  }
  const lower = name.toLowerCase();
  return dockerfile.stages.find((s) => s.name === lower && s.index < before);
}

function findTarget(dockerfile: Dockerfile, target: string | undefined): Stage {
  if (!target) return dockerfile.stages[dockerfile.stages.length - 1]!;
  const stage = lookupStage(dockerfile, target);
  if (!stage) {
    const names = dockerfile.stages.map((s) => s.name).filter(Boolean);
    throw new TesseraError(`target stage ${JSON.stringify(target)} could not be found${names.length ? ` (stages: ${names.join(', ')})` : ''}`, 'UNKNOWN_STAGE');
  }
  return stage;
}

function parsePlatformArg(text: string): Platform {
  const [os, architecture, variant] = text.split('/');
  if (!os || !architecture) throw new TesseraError(`invalid platform ${JSON.stringify(text)}: expected os/arch[/variant]`, 'INVALID_PLATFORM');
  return { os, architecture, ...(variant ? { variant } : {}) };
}

const SECRET_LOOKING = /(TOKEN|PASSWORD|PASSWD|SECRET|KEY)/i;

/** BuildKit's SecretsUsedInArgOrEnv: build args end up in the image history. */
function warnSecretLookingArgs(options: BuildOptions): void {
  for (const name of Object.keys(options.buildArgs)) {
    if (SECRET_LOOKING.test(name)) {
      options.log(`warning: build arg ${name} looks like a secret; build args can be read from the image. Use --secret id=${name.toLowerCase()},env=${name} and RUN --mount=type=secret instead`);
    }
  }
}

/**
 * Starts find listings of the big directories that context COPYs of these stages name literally (no
 * variables, no wildcards), so they run on the other core while the build resolves bases and reaches
 * the COPY. Anything unusual is left to the COPY itself.
 */
function prefetchTreeListings(listings: TreeListings, stages: readonly Stage[], contextRoot: string): void {
  const seen = new Set<string>();
  for (const stage of stages) {
    for (const instruction of stage.instructions) {
      if (instruction.kind !== 'COPY' || instruction.from) continue;
      for (const source of instruction.sources) {
        const relativePath = sourcePathInContext(source);
        if (relativePath === undefined || source.includes('$') || hasGlobMeta(relativePath) || seen.has(relativePath)) continue;
        seen.add(relativePath);
        const directory = join(contextRoot, relativePath);
        // Only a real directory inside the context: the COPY would refuse a path that leaves it.
        Promise.all([lstat(directory), realpath(directory)]).then(
          ([stats, real]) => real === directory && isInside(contextRoot, real) && listings.prefetch(directory, relativePath, stats),
          () => undefined,
        );
      }
    }
  }
}
