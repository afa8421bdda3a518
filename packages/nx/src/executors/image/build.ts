import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { ProjectGraph } from '@nx/devkit';
import {
  assembleLayeredImage,
  buildImage,
  BuiltIndex,
  configPlatform,
  defaultBuildOptions,
  layerEntriesFromFiles,
  ociLayoutName,
  sourceDateEpoch,
  writeReproducibleLayer,
  type BuiltImage,
  type LayeredConfig,
  type LayeredLayer,
  type PlatformImage,
} from '@tessera/builder';
import {
  copyImage,
  formatPlatform,
  normalizePlatform,
  ociLayoutDestination,
  parsePlatform,
  parseReference,
  platformMatches,
  registryImageSource,
  type ImageConfig,
  type ImageReference,
  type Platform,
} from '@tessera/oci';
import type { LayerPlan } from '../../planning/layers';
import type { ProjectImageConfig } from '../../plugins/options';
import { parseFromImages, repositoryOf } from '../../plugins/dockerfile-from';
import { imageCacheTag, LocalCache, layoutHasTags, writeJsonAtomically } from './caches';
import { untrackedSourcesHash } from './dockerfile-sources';
import { imageInputHash, hashParts, type ImageInputs } from './input-hash';
import { concreteLayers, type ProjectFiles } from './layer-sources';
import type { ImageExecutorOptions } from './schema';
import type { BuildSession, UploadStats } from './session';

/** What the executor asks the build engine for. */
export interface ProjectImageRequest {
  projectName: string;
  workspaceRoot: string;
  /** Full repository, e.g. `reg.local/team/api`. */
  repository: string;
  /** Rendered tags. */
  tags: string[];
  /** Nx's hash of the task inputs, when the task runner computed one. */
  inputsHash?: string;
  /** Dockerfile mode: workspace-relative Dockerfile, the workspace root as context. */
  dockerfile?: string;
  /** Layered mode: the layer plan. */
  plan?: LayerPlan;
  /** The project's `"tessera"` block (config changes in layered mode). */
  config?: ProjectImageConfig;
  /** Workspace projects of the module closure (Dockerfile mode hashes their files when Nx gave no task hash). */
  closure?: string[];
  /**
   * Bases (as written) that are workspace images kept as OCI layouts, not pushed: reference → layout
   * directory. They are read from there, pinned to the digest just built.
   */
  layoutBases?: Record<string, string>;
}

/** What the build shares with other builds of the run, and what it reads from Nx. */
export interface BuildServices {
  session: BuildSession;
  graph: ProjectGraph;
  /** Nx's file map of the workspace projects (file and content hash); sources layers use it when present. */
  projectFiles?: ProjectFiles;
  log: (line: string) => void;
}

export type ImageStatus = 'built' | 'unchanged' | 'failed';

export interface ImageLayerReport {
  description: string;
  digest: string;
  size: number;
  /** Written in this run (not taken from the layer cache). */
  rebuilt: boolean;
}

/** One platform's image of a multi-platform (index) build. */
export interface ImagePlatformReport {
  /** `os/arch[/variant]`, as the index entry says. */
  platform: string;
  /** That platform's image manifest. */
  digest: string;
  /** The base image manifest it was built on. */
  baseDigest?: string;
}

/** One image's outcome: printed as the summary line and written to `dist/images/<project>/image.json`. */
export interface ImageBuildReport {
  project: string;
  status: ImageStatus;
  repository: string;
  tags: string[];
  /** The manifest digest; for several platforms, the image index's. */
  digest?: string;
  /** Several platforms: each platform's image in the index (absent for a single-platform image). */
  platforms?: ImagePlatformReport[];
  inputHash?: string;
  mode: 'layered' | 'dockerfile';
  pushed: boolean;
  /** Layered mode: the layers this build appends to the base. */
  layers: ImageLayerReport[];
  layersRebuilt: number;
  layersTotal: number;
  bytesUploaded: number;
  blobsUploaded: number;
  blobsMounted: number;
  durationMs: number;
  error?: string;
}

const LAYER_WRITE_CONCURRENCY = 2;

/** A report with nothing done yet: status `failed` until the build says otherwise. */
export function emptyReport(project: string, fields: Partial<ImageBuildReport> = {}): ImageBuildReport {
  return {
    project,
    status: 'failed',
    repository: '',
    tags: [],
    mode: 'layered',
    pushed: false,
    layers: [],
    layersRebuilt: 0,
    layersTotal: 0,
    bytesUploaded: 0,
    blobsUploaded: 0,
    blobsMounted: 0,
    durationMs: 0,
    ...fields,
  };
}

/**
 * Builds one project's image (or finds it unchanged), pushes it or writes an OCI layout, and records the
 * outcome in `dist/images/<project>/image.json`. Never throws: a failure is a report with status `failed`.
 */
export async function buildProjectImage(request: ProjectImageRequest, options: ImageExecutorOptions, services: BuildServices): Promise<ImageBuildReport> {
  const started = Date.now();
  const push = shouldPush(request.repository, options);
  const outputDir = imageOutputDir(request.workspaceRoot, request.projectName);
  const cache = new LocalCache(resolve(request.workspaceRoot, options.cacheDir ?? join('.tessera', 'cache')));
  const stats: UploadStats = { uploaded: 0, bytes: 0, mounted: 0 };
  const report = emptyReport(request.projectName, {
    repository: request.repository,
    tags: request.tags,
    mode: request.plan ? 'layered' : 'dockerfile',
    pushed: push,
  });
  const finish = async (status: ImageStatus): Promise<ImageBuildReport> => {
    Object.assign(report, { status, bytesUploaded: stats.bytes, blobsUploaded: stats.uploaded, blobsMounted: stats.mounted, durationMs: Date.now() - started });
    await writeJsonAtomically(join(outputDir, 'image.json'), imageRecord(report));
    return report;
  };
  try {
    return await buildOrSkip(request, options, services, { push, outputDir, cache, stats, report, finish });
  } catch (error) {
    report.error = error instanceof Error ? error.message : String(error);
    return finish('failed');
  }
}

interface BuildState {
  push: boolean;
  outputDir: string;
  cache: LocalCache;
  stats: UploadStats;
  report: ImageBuildReport;
  finish: (status: ImageStatus) => Promise<ImageBuildReport>;
}

async function buildOrSkip(request: ProjectImageRequest, options: ImageExecutorOptions, services: BuildServices, state: BuildState): Promise<ImageBuildReport> {
  const { push, outputDir, cache, stats, report, finish } = state;
  const repository = parseReference(request.repository);
  const cacheRepository = parseReference(cacheRepositoryOf(request.repository, options));
  const skip = options.skipUnchanged !== false;

  const platforms = targetPlatforms(options, services.session.platform);
  const prepared = request.plan
    ? await prepareLayered(request, request.plan, options, platforms, services, cache)
    : await prepareDockerfile(request, options, platforms, services);
  report.inputHash = prepared.inputHash;
  report.layersTotal = prepared.layerCount;

  if (skip) {
    const existing = push
      ? await findInCacheRepo(services, cacheRepository, prepared.inputHash)
      : await findInLocalCache(cache, outputDir, prepared.inputHash, request.tags);
    if (existing) {
      report.digest = existing;
      const previous = await previousRecord(join(outputDir, 'image.json'), existing);
      report.layers = previous.layers;
      if (previous.platforms) report.platforms = previous.platforms;
      if (push) await applyMissingTags(services, cacheRepository, existing, repository, request.tags, stats);
      services.session.recordBuilt(request.repository, existing);
      return finish('unchanged');
    }
  }

  const workDir = await mkdtemp(join(tmpdir(), 'tessera-nx-'));
  try {
    const image = await prepared.build(cache, workDir, report);
    report.digest = image.digest;
    // Rebuilt means new to this image: another image of the run may have written the layer first.
    const previous = await previousLayerDigests(join(outputDir, 'image.json'));
    if (previous) {
      for (const layer of report.layers) layer.rebuilt = !previous.has(layer.digest);
      report.layersRebuilt = report.layers.filter((layer) => layer.rebuilt).length;
    }
    if (push) {
      const destination = services.session.destination(repository, stats);
      await copyImage(image, destination, { tags: request.tags });
      const cacheTag = imageCacheTag(prepared.inputHash);
      await copyImage(image, services.session.destination(cacheRepository, stats), { tags: [cacheTag] });
    } else {
      const layout = await ociLayoutDestination(outputDir);
      await copyImage(image, layout, { tags: request.tags });
      await layout.close?.();
      await cache.writeImage(prepared.inputHash, image.digest);
    }
    services.session.recordBuilt(request.repository, image.digest);
    return await finish('built');
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

/** Where a project's `image.json` goes, and its OCI layout when the image is not pushed. */
export function imageOutputDir(workspaceRoot: string, projectName: string): string {
  return join(workspaceRoot, 'dist', 'images', projectName);
}

/** Kaniko's convention: the shared image cache lives in `<repository>/cache` unless `cacheRepo` names one. */
export function cacheRepositoryOf(repository: string, options: Pick<ImageExecutorOptions, 'cacheRepo'>): string {
  return options.cacheRepo ?? `${repositoryOf(repository)}/cache`;
}

/**
 * The platforms a target builds, in its order: `platforms` parsed, else the session's one platform.
 * Several give one image per platform and an index over them.
 */
export function targetPlatforms(options: Pick<ImageExecutorOptions, 'platforms'>, fallback: Platform): Platform[] {
  if (!options.platforms?.length) return [fallback];
  const seen = new Set<string>();
  return options.platforms.map((text) => {
    const platform = parsePlatform(text);
    const key = formatPlatform(normalizePlatform(platform));
    if (seen.has(key)) throw new Error(`platform ${text} is listed twice in platforms`);
    seen.add(key);
    return platform;
  });
}

/** `reproducible` defaults to true in both modes: fixed timestamps, so equal inputs give equal digests. */
export function isReproducible(options: Pick<ImageExecutorOptions, 'reproducible'>): boolean {
  return options.reproducible !== false;
}

/** A base's digest: from its OCI layout when it is an unpushed workspace image, else from its registry. */
function resolveBaseDigest(request: ProjectImageRequest, session: BuildSession, reference: string): Promise<string> {
  const layoutDirectory = request.layoutBases?.[reference];
  return layoutDirectory ? session.layoutBaseDigest(reference, layoutDirectory) : session.baseDigest(reference);
}

/** Push unless told otherwise when the repository names a registry; `api` alone is written as a layout. */
export function shouldPush(repository: string, options: Pick<ImageExecutorOptions, 'push' | 'registry'>): boolean {
  if (options.push !== undefined) return options.push;
  if (options.registry) return true;
  const first = repository.split('/')[0];
  return repository.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
}

interface PreparedBuild {
  inputHash: string;
  layerCount: number;
  /** One image, or (several platforms) an index over one image per platform. */
  build(cache: LocalCache, workDir: string, report: ImageBuildReport): Promise<BuiltImage | BuiltIndex>;
}

async function prepareLayered(
  request: ProjectImageRequest,
  plan: LayerPlan,
  options: ImageExecutorOptions,
  platforms: Platform[],
  services: BuildServices,
  cache: LocalCache,
): Promise<PreparedBuild> {
  const { session } = services;
  const baseDigest = await resolveBaseDigest(request, session, plan.base);
  const memo = await cache.contentHashes(request.projectName);
  const layers = await concreteLayers(plan, services.graph, request.workspaceRoot, services.projectFiles, { memo, shared: session.treeHashes });
  await memo.save();
  const config = layeredConfig(plan, request.config);
  const mtime = sourceDateEpoch();
  const reproducible = isReproducible(options);
  const inputs: ImageInputs = {
    mode: 'layered',
    baseDigests: { [plan.base]: baseDigest },
    platform: platforms.map(formatPlatform).join(','),
    layerHashes: layers.map((layer) => layer.hash),
    config,
    sourceDateEpoch: String(mtime.getTime()),
    ...(reproducible ? {} : { reproducible }),
  };
  return {
    inputHash: imageInputHash(inputs),
    layerCount: layers.length,
    async build(cache, _workDir, report) {
      const written: LayeredLayer[] = new Array(layers.length);
      let next = 0;
      const worker = async () => {
        while (next < layers.length) {
          const index = next++;
          const layer = layers[index];
          let record = await cache.readLayer(layer.hash);
          const rebuilt = !record;
          if (!record) {
            const entries = [...(await layerEntriesFromFiles(layer.files)), ...layer.extraEntries];
            record = await writeReproducibleLayer(entries, { outputDir: cache.blobDir, mtime });
            await cache.writeLayer(layer.hash, record);
          }
          written[index] = { description: layer.description, written: record };
          report.layers[index] = { description: layer.description, digest: record.digest, size: record.size, rebuilt };
        }
      };
      await Promise.all(Array.from({ length: LAYER_WRITE_CONCURRENCY }, worker));
      report.layersRebuilt = report.layers.filter((layer) => layer.rebuilt).length;
      // Layer bytes keep the fixed mtime either way (a module layer stays one blob across images and runs).
      const created = reproducible ? mtime : new Date();
      // Each platform appends the same written layers to that platform's base: no emulation, nothing runs.
      const images = await Promise.all(
        platforms.map(async (platform): Promise<PlatformImage & { baseDigest?: string }> => {
          const base = await session.resolveBase(plan.base, baseDigest, request.layoutBases?.[plan.base], platform);
          if (options.platforms?.length) checkBasePlatform(plan.base, base.config, platform);
          const image = assembleLayeredImage(base, written, config, { created });
          return { platform: indexPlatform(image.config, platform), image, ...(base.digest ? { baseDigest: base.digest } : {}) };
        }),
      );
      if (images.length === 1) return images[0]!.image;
      report.platforms = images.map(({ platform, image, baseDigest: digest }) => ({ platform: formatPlatform(platform), digest: image.digest, ...(digest ? { baseDigest: digest } : {}) }));
      return BuiltIndex.of(images, { description: `${request.projectName} image index` });
    },
  };
}

/** A base that is one image (no index) must be for the platform asked: nothing would convert it. */
function checkBasePlatform(reference: string, config: ImageConfig, platform: Platform): void {
  const have = configPlatform(config);
  if (!platformMatches(platform, have)) {
    throw new Error(`base image ${reference} has no ${formatPlatform(platform)} image (its image is ${formatPlatform(have)}); use a multi-platform base or drop that platform`);
  }
}

/** The index entry's platform: the base config's, with the asked variant when the config names none. */
function indexPlatform(config: ImageConfig, asked: Platform): Platform {
  const platform = configPlatform(config);
  if (!platform.variant && asked.variant) platform.variant = asked.variant;
  return platform;
}

/** The config changes of a layered image, from the project's `"tessera"` block; keys in a fixed order (they are hashed). */
export function layeredConfig(plan: LayerPlan, config: ProjectImageConfig | undefined): LayeredConfig {
  const defaults: Record<string, string> = plan.runtime === 'node' ? { NODE_ENV: 'production' } : plan.runtime === 'python' ? { PYTHONUNBUFFERED: '1' } : {};
  const env = { ...defaults, ...config?.env };
  const sorted = (record: Record<string, string> | undefined) =>
    record && Object.keys(record).length ? Object.fromEntries(Object.keys(record).sort().map((key) => [key, record[key]])) : undefined;
  const result: LayeredConfig = { workdir: plan.workdir };
  const sortedEnv = sorted(env);
  if (sortedEnv) result.env = sortedEnv;
  if (config?.user !== undefined) result.user = config.user;
  if (config?.entrypoint) result.entrypoint = config.entrypoint;
  if (config?.cmd) result.cmd = config.cmd;
  if (config?.ports?.length) result.ports = [...config.ports].sort();
  const labels = sorted(config?.labels);
  if (labels) result.labels = labels;
  return result;
}

async function prepareDockerfile(
  request: ProjectImageRequest,
  options: ImageExecutorOptions,
  platforms: Platform[],
  services: BuildServices,
): Promise<PreparedBuild> {
  const { session } = services;
  if (platforms.length > 1) throw new Error(multiPlatformDockerfileMessage(platforms));
  const platform = platforms[0]!;
  const reproducible = isReproducible(options);
  const dockerfile = request.dockerfile!;
  const text = await readFile(join(request.workspaceRoot, dockerfile), 'utf8');
  const froms = parseFromImages(text);
  const baseDigests: Record<string, string> = {};
  for (const from of froms) baseDigests[from.image] = await resolveBaseDigest(request, session, from.image);
  const buildArgs: Record<string, string> = { ...options.buildArgs };
  const inputs: ImageInputs = {
    mode: 'dockerfile',
    baseDigests,
    platform: formatPlatform(platform),
    dockerfileText: text,
    buildArgs,
    ...(options.target ? { target: options.target } : {}),
    // Nx hashes no gitignored file (and gives no task hash in batch mode): COPY/ADD sources it leaves out are hashed here.
    sourcesHash: hashParts([request.inputsHash ?? closureFilesHash(request, services), await untrackedSourcesHash(text, request.workspaceRoot, services.projectFiles)]),
    sourceDateEpoch: String(sourceDateEpoch().getTime()),
    ...(reproducible ? {} : { reproducible }),
  };
  return {
    inputHash: imageInputHash(inputs),
    layerCount: 0,
    async build(_cache, workDir) {
      // FROM lines are pinned to the digests hashed above, so a workspace base just built is used exactly.
      const pinnedDockerfile = join(workDir, 'Dockerfile');
      await writeFile(pinnedDockerfile, pinFromLines(text, baseDigests, request.layoutBases));
      const result = await buildImage(
        defaultBuildOptions({
          context: request.workspaceRoot,
          dockerfile: pinnedDockerfile,
          noPush: true,
          workDir: join(workDir, 'build'),
          reproducible,
          buildArgs,
          ...(options.target ? { target: options.target } : {}),
          platform,
          insecureRegistries: options.insecureRegistries ?? [],
          log: services.log,
        }),
      );
      return result.image;
    },
  };
}

/** Why a Dockerfile target cannot list several platforms; one line. */
export function multiPlatformDockerfileMessage(platforms: readonly Platform[]): string {
  return (
    `platforms ${platforms.map(formatPlatform).join(', ')}: a Dockerfile image builds for one platform, because a RUN for another ` +
    `architecture would need emulation, which Tessera does not do; give one platform, or use layered mode (no Dockerfile) for a multi-platform image`
  );
}

/**
 * The Dockerfile with each FROM image that has a resolved digest rewritten to `repository@digest`, or to
 * `oci-layout://DIR@digest` when `layouts` names the image's OCI layout directory.
 * Only the image word on the FROM line changes; flags, `AS name` and other lines stay as written.
 */
export function pinFromLines(text: string, digests: Record<string, string>, layouts: Record<string, string> = {}): string {
  const lines = text.split('\n');
  for (const from of parseFromImages(text)) {
    const digest = digests[from.image];
    if (!digest) continue;
    for (let index = from.line - 1; index < lines.length; index++) {
      const pattern = new RegExp(`(^|\\s)${escapeRegExp(from.image)}(?=\\s|$)`);
      if (pattern.test(lines[index])) {
        const layout = layouts[from.image];
        const pinned = layout ? ociLayoutName({ directory: layout, digest }) : `${repositoryOf(from.image)}@${digest}`;
        if (/\s/.test(pinned)) throw new Error(`cannot pin FROM ${from.image} to ${pinned}: the path has whitespace`);
        lines[index] = lines[index].replace(pattern, (_match, lead: string) => `${lead}${pinned}`);
        break;
      }
    }
  }
  return lines.join('\n');
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Without an Nx task hash: the Nx file hashes of the module closure. */
function closureFilesHash(request: ProjectImageRequest, services: BuildServices): string {
  const projects = request.closure ?? [request.projectName];
  const parts = projects.flatMap((project) => (services.projectFiles?.[project] ?? []).flatMap((file) => [file.file, file.hash]));
  return hashParts(['closure-files', ...parts]);
}

async function findInCacheRepo(services: BuildServices, cacheRepository: ImageReference, inputHash: string): Promise<string | undefined> {
  const found = await services.session.client.headManifest({ registry: cacheRepository.registry, repository: cacheRepository.repository, tag: imageCacheTag(inputHash) });
  return found?.digest;
}

async function findInLocalCache(cache: LocalCache, outputDir: string, inputHash: string, tags: readonly string[]): Promise<string | undefined> {
  const digest = await cache.readImage(inputHash);
  return digest && (await layoutHasTags(outputDir, digest, tags)) ? digest : undefined;
}

/** Points every tag that does not already name `digest` at it; blobs come from the cache repo (mounted on one registry). */
async function applyMissingTags(
  services: BuildServices,
  cacheRepository: ImageReference,
  digest: string,
  repository: ImageReference,
  tags: readonly string[],
  stats: UploadStats,
): Promise<void> {
  const { client } = services.session;
  const missing: string[] = [];
  for (const tag of tags) {
    const current = await client.headManifest({ registry: repository.registry, repository: repository.repository, tag });
    if (current?.digest !== digest) missing.push(tag);
  }
  if (missing.length === 0) return;
  const source = registryImageSource(client, { registry: cacheRepository.registry, repository: cacheRepository.repository, digest });
  await copyImage(source, services.session.destination(repository, stats), { tags: missing });
}

/** Layer digests of the image this project had before, if it had one. */
async function previousLayerDigests(imageJson: string): Promise<Set<string> | undefined> {
  try {
    const previous = JSON.parse(await readFile(imageJson, 'utf8')) as { layers?: ImageLayerReport[] };
    return previous.layers ? new Set(previous.layers.map((layer) => layer.digest)) : undefined;
  } catch {
    return undefined;
  }
}

/** The layers (and platforms) an earlier `image.json` recorded for the same digest: an unchanged image keeps them. */
async function previousRecord(imageJson: string, digest: string): Promise<Pick<ImageBuildReport, 'layers' | 'platforms'>> {
  try {
    const previous = JSON.parse(await readFile(imageJson, 'utf8')) as { digest?: string; layers?: ImageLayerReport[]; platforms?: ImagePlatformReport[] };
    if (previous.digest !== digest) return { layers: [] };
    return {
      layers: (previous.layers ?? []).map((layer) => ({ ...layer, rebuilt: false })),
      ...(previous.platforms ? { platforms: previous.platforms } : {}),
    };
  } catch {
    return { layers: [] };
  }
}

/** The stable part of the report, written as `image.json`. */
function imageRecord(report: ImageBuildReport) {
  return {
    project: report.project,
    status: report.status,
    repository: report.repository,
    tags: report.tags,
    digest: report.digest,
    ...(report.platforms ? { platforms: report.platforms } : {}),
    inputHash: report.inputHash,
    mode: report.mode,
    pushed: report.pushed,
    layers: report.layers,
    bytesUploaded: report.bytesUploaded,
    ...(report.error ? { error: report.error } : {}),
  };
}
