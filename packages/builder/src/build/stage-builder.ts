import type { Stats } from 'node:fs';
import { chmod as setMode, mkdtemp, readFile, rm } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join, posix } from 'node:path';
import { Limiter, layerMediaType, TesseraError, type HistoryEntry, type MediaFamily, type Platform } from '@tessera/oci';
import {
  createIgnoreMatcher,
  detectArchive,
  fetchRemote,
  hashEntries,
  isRemoteSource,
  planCopy,
  planHeredocCopy,
  resolveCopySources,
  resolveUser,
  WalkKey,
  type FileHashMemo,
  type IgnoreMatcher,
  type ResolvedSource,
  type TreeListings,
  type ResolveCopySourcesOptions,
} from '../context/index';
import { expandInstruction, parseInstructionLine, type AddInstruction, type CopyInstruction, type Instruction, type Stage } from '../dockerfile/index';
import { chainCacheKey, copyCacheKey, runCacheKey, stageBaseKey, type LayerCache } from '../cache/index';
import { canonicalJson } from '@tessera/oci';
import { extractLayer, writeLayer, type LayerEntry } from '../layer/index';
import type { BaseImage } from './base-image';
import { BuiltImage, type ImageLayer } from './built-image';
import { StageConfig } from './image-config';
import type { BuildOptions } from './options';
import type { Rootfs } from './rootfs';
import { runStep, type RunStepResult } from './run-step';

/** What a finished stage leaves for later stages and for the outputs. */
export interface StageResult {
  stage: Stage;
  image: BuiltImage;
  base: BaseImage;
  /** Present when some instruction needed the filesystem; later stages may copy from it. */
  rootfs?: Rootfs;
  layers: ImageLayer[];
  /** Cache key of the stage's final state: stages built on this one chain from it. */
  cacheKey: string;
}

export interface StageServices {
  options: BuildOptions;
  contextRoot: string;
  ignore: IgnoreMatcher;
  workDir: string;
  platform: Platform;
  /** Values of the build's args (from --build-arg and the predefined platform args). */
  buildArgs: Map<string, string>;
  globalArgs: Map<string, string>;
  /** The stage a name or index refers to (building it if needed), for COPY --from and mounts. */
  stageByName(name: string): Promise<StageResult | undefined>;
  /** An image named by COPY --from or a bind mount's from=, unpacked. */
  imageRootfs(name: string): Promise<Rootfs>;
  /** Told of each finished layer of a stage the final image is built on, so its upload can start early. */
  onLayer?: (layer: ImageLayer) => void;
  /** A rootfs directory holding these layers (from the unpack cache where it has them). */
  materialise(name: string, layers: ImageLayer[]): Promise<Rootfs>;
  timings: (phase: string, ms: number) => void;
  /** The layer cache (`--cache`), directory and/or registry. */
  layerCache?: LayerCache;
  /** Content hashes of context files remembered between builds (with `--cache-dir`). */
  hashMemo?: FileHashMemo;
  /** Find listings of big context directories, some started before their COPY (`prefetchTreeListings`). */
  treeListings?: TreeListings;
}

const log = (services: StageServices, line: string) => services.options.log(line);

/** A `--chown` given as `uid` or `uid:gid`: resolved without the image's /etc/passwd. */
const NUMERIC_IDS = /^\d+(:\d+)?$/;

/** Builds one stage: runs its instructions on top of its base, producing layers and a config. */
export class StageBuilder {
  private readonly config: StageConfig;
  private readonly layers: ImageLayer[];
  private readonly family: MediaFamily;
  private readonly args = new Map<string, string>();
  private rootfs?: Rootfs;
  private readonly created: string;
  private readonly stepPrefix: string;
  private singleSnapshotBase?: unknown;
  /** Cache key of the filesystem so far: a RUN's key chains from it. */
  private chainKey: string;
  /** Layers being written (and cache entries being stored) while later instructions go on. */
  private readonly pending: Promise<unknown>[] = [];
  private readonly writes = new Limiter(Math.max(1, availableParallelism()));

  constructor(
    private readonly stage: Stage,
    private readonly base: BaseImage,
    private readonly services: StageServices,
  ) {
    this.config = new StageConfig(base.config);
    this.layers = [...base.layers];
    this.family = base.family;
    this.created = services.options.reproducible ? sourceDateEpoch().toISOString() : new Date().toISOString();
    this.stepPrefix = stage.name ? `[${stage.name}]` : `[stage ${stage.index}]`;
    this.chainKey = base.cacheKey ?? stageBaseKey(base.digest ?? base.name, { platform: `${base.config.os}/${base.config.architecture}` });
    const { platform } = services;
    if (services.options.platform || base.name === 'scratch') {
      this.config.config.architecture = platform.architecture;
      this.config.config.os = platform.os;
      if (platform.variant) this.config.config.variant = platform.variant;
    }
  }

  async build(): Promise<StageResult> {
    const onBuild = this.base.config.config?.OnBuild ?? [];
    if (this.services.options.singleSnapshot) await this.beginSingleSnapshot();
    for (const trigger of onBuild) {
      await this.execute(parseInstructionLine(trigger, { file: `ONBUILD trigger of ${this.base.name}` }), true);
    }
    for (const instruction of this.stage.instructions) await this.execute(instruction, false);
    if (this.services.options.singleSnapshot) await this.endSingleSnapshot();
    await this.flush();
    this.config.config.rootfs.diff_ids = this.layers.map((l) => l.diffId);
    // As BuildKit and Kaniko do: the image is dated by this build (the epoch when reproducible).
    this.config.config.created = this.created;
    return {
      stage: this.stage,
      base: this.base,
      rootfs: this.rootfs,
      layers: this.layers,
      cacheKey: this.chainKey,
      image: new BuiltImage(this.layers, this.config.config, this.family, { description: `stage ${this.stage.name ?? this.stage.index}` }),
    };
  }

  /** The stage's final config (labels from --label are added to the last stage by the engine). */
  get stageConfig(): StageConfig {
    return this.config;
  }

  private expansionEnv(): (name: string) => string | undefined {
    const env = this.config.env;
    return (name) => env.get(name) ?? this.args.get(name);
  }

  private async execute(raw: Instruction, fromOnBuild: boolean): Promise<void> {
    const { instruction } = expandInstruction(raw, this.expansionEnv());
    const started = Date.now();
    log(this.services, `${this.stepPrefix} ${fromOnBuild ? 'ONBUILD ' : ''}${raw.original}`);
    const history = (empty: boolean, createdBy = raw.original): HistoryEntry => ({
      created: this.created,
      created_by: createdBy,
      comment: 'tessera',
      ...(empty ? { empty_layer: true } : {}),
    });
    const c = this.config;
    switch (instruction.kind) {
      case 'ENV':
        c.setEnv(instruction.pairs.map((p) => [p.key, p.value]));
        c.addHistory(history(true));
        break;
      case 'ARG':
        for (const arg of instruction.args) {
          const value = this.services.buildArgs.get(arg.name) ?? arg.defaultValue ?? this.services.globalArgs.get(arg.name);
          if (value !== undefined) this.args.set(arg.name, value);
          else this.args.delete(arg.name);
        }
        c.addHistory(history(true));
        break;
      case 'LABEL':
        c.addLabels(instruction.pairs.map((p) => [p.key, p.value]));
        c.addHistory(history(true));
        break;
      case 'MAINTAINER':
        c.setAuthor(instruction.maintainer);
        c.addHistory(history(true));
        break;
      case 'EXPOSE':
        c.addExposedPorts(instruction.ports);
        c.addHistory(history(true));
        break;
      case 'VOLUME':
        c.addVolumes(instruction.paths);
        c.addHistory(history(true));
        break;
      case 'USER':
        c.setUser(instruction.user);
        c.addHistory(history(true));
        break;
      case 'STOPSIGNAL':
        c.setStopSignal(instruction.signal);
        c.addHistory(history(true));
        break;
      case 'SHELL':
        c.setShell(instruction.shell);
        c.addHistory(history(true));
        break;
      case 'CMD':
        c.setCmd(this.commandArgv(instruction.command));
        c.addHistory(history(true));
        break;
      case 'ENTRYPOINT':
        c.setEntrypoint(this.commandArgv(instruction.command));
        c.addHistory(history(true));
        break;
      case 'HEALTHCHECK':
        if (instruction.none) c.setHealthcheck({ Test: ['NONE'] });
        else {
          const cmd = instruction.command!;
          c.setHealthcheck({
            Test: cmd.form === 'exec' ? ['CMD', ...cmd.args] : ['CMD-SHELL', cmd.script],
            ...(instruction.intervalNs ? { Interval: instruction.intervalNs } : {}),
            ...(instruction.timeoutNs ? { Timeout: instruction.timeoutNs } : {}),
            ...(instruction.startPeriodNs ? { StartPeriod: instruction.startPeriodNs } : {}),
            ...(instruction.startIntervalNs ? { StartInterval: instruction.startIntervalNs } : {}),
            ...(instruction.retries ? { Retries: instruction.retries } : {}),
          });
        }
        c.addHistory(history(true));
        break;
      case 'ONBUILD':
        c.addOnBuild(instruction.expression);
        c.addHistory(history(true));
        break;
      case 'WORKDIR': {
        const dir = c.setWorkdir(instruction.path);
        const entries = await this.ensureWorkdir(dir);
        if (entries.length && this.services.layerCache) this.chainKey = chainCacheKey(this.chainKey, this.copyKeyFor(instruction, await hashEntries(entries, { memo: this.services.hashMemo })));
        await this.commit(entries, history(entries.length === 0));
        break;
      }
      case 'COPY':
      case 'ADD': {
        const fromStage = instruction.kind === 'COPY' && instruction.from ? await this.services.stageByName(instruction.from) : undefined;
        let entries: LayerEntry[] | undefined;
        let key: string | undefined;
        let cached: ImageLayer | undefined;
        if (this.services.layerCache) {
          // From a stage, the stage's key stands for its files, so a cached stage need not be unpacked to be hashed.
          if (fromStage) key = this.copyKeyFor(instruction, `stage:${fromStage.cacheKey}`);
          else {
            const hashed = await this.copyEntriesHash(instruction);
            entries = hashed.entries;
            key = this.copyKeyFor(instruction, hashed.hash);
          }
        }
        const lookUp = key !== undefined && this.services.options.cacheCopyLayers;
        if (lookUp && this.canDeferLayer(instruction)) {
          // The lookup (and on a miss the write) go on while later instructions are read and looked up.
          const workdir = this.config.workdir;
          this.deferLayer(history(false), async () => {
            const hit = await this.cacheLookup(key!, raw);
            if (hit) return hit;
            const missed = entries ?? (await this.copyEntries(instruction, workdir));
            if (missed.length === 0) return undefined;
            const written = await this.writes.run(() => this.writeEntries(missed));
            this.pending.push(this.cacheStore(key!, written));
            return written;
          });
        } else if (lookUp && (cached = await this.cacheLookup(key!, raw))) await this.appendLayer(cached, history(false));
        else {
          const layer = await this.commit(entries ?? (await this.copyEntries(instruction)), history(false));
          if (key && layer && this.services.options.cacheCopyLayers) this.pending.push(layer.ready.then((l) => this.cacheStore(key, l)));
        }
        if (key) this.chainKey = chainCacheKey(this.chainKey, key);
        break;
      }
      case 'RUN': {
        const key = this.services.layerCache && this.services.options.cacheRunLayers ? await this.runKey(instruction) : undefined;
        const cached = key ? await this.cacheLookup(key, raw) : undefined;
        if (cached) await this.appendLayer(cached, history(false, runHistory(raw, instruction)));
        else {
          const result = await this.run(raw, instruction);
          const layer = await this.commit(result.entries, history(false, runHistory(raw, instruction)), true);
          if (key && layer) await this.cacheStore(key, await layer.ready);
        }
        if (key) this.chainKey = key;
        else if (this.services.layerCache) this.chainKey = chainCacheKey(this.chainKey, stageBaseKey(`uncacheable ${this.layers.at(-1)?.diffId ?? ''}`));
        break;
      }
      case 'FROM':
        throw new TesseraError(`${raw.file}:${raw.line}: FROM inside a stage`, 'DOCKERFILE_INVALID');
    }
    this.services.timings(`${this.stepPrefix} ${instruction.kind} (line ${raw.line})`, Date.now() - started);
  }

  private commandArgv(command: { form: 'exec'; args: string[] } | { form: 'shell'; script: string }): string[] {
    return command.form === 'exec' ? command.args : [...this.config.shell, command.script];
  }

  /**
   * Writes the entries as a new layer (unless single-snapshot mode defers them) and records history.
   * Without a rootfs to keep in step, the layer is written in the background, so independent layers
   * compress in parallel; `ready` settles when it is written.
   */
  private async commit(entries: LayerEntry[], history: HistoryEntry, alreadyInRootfs = false): Promise<{ ready: Promise<ImageLayer> } | undefined> {
    if (this.services.options.singleSnapshot) {
      if (!alreadyInRootfs && entries.length) await this.applyToRootfs(entries);
      this.config.addHistory({ ...history, empty_layer: true });
      return undefined;
    }
    if (entries.length === 0) {
      this.config.addHistory({ ...history, empty_layer: true });
      return undefined;
    }
    if (this.rootfs) {
      const layer = await this.writeEntries(entries);
      await this.appendLayer(layer, history, alreadyInRootfs);
      return { ready: Promise.resolve(layer) };
    }
    const written = this.deferLayer(history, () => this.writes.run(() => this.writeEntries(entries)));
    return { ready: written as Promise<ImageLayer> };
  }

  private async appendLayer(layer: ImageLayer, history: HistoryEntry, alreadyInRootfs = false): Promise<void> {
    this.layers.push(layer);
    this.config.addHistory(history);
    this.services.onLayer?.(layer);
    if (this.rootfs) {
      if (alreadyInRootfs) this.rootfs.markApplied(this.layers.length);
      else await this.rootfs.catchUp(this.layers);
    }
  }

  /**
   * Whether a COPY's layer can be settled in the background: only before the rootfs exists (nothing to
   * keep in step) and when its entries do not depend on the image's files (a `--chown` by name reads
   * /etc/passwd from the rootfs).
   */
  private canDeferLayer(instruction: CopyInstruction | AddInstruction): boolean {
    const chown = instruction.chown;
    return !this.rootfs && !this.services.options.singleSnapshot && (chown === undefined || chown === 'root' || NUMERIC_IDS.test(chown));
  }

  /**
   * Keeps a layer's place in the image while `settle` finds or writes it; `undefined` from `settle`
   * means the instruction made no change, so its history entry becomes an empty layer.
   */
  private deferLayer(history: HistoryEntry, settle: () => Promise<ImageLayer | undefined>): Promise<ImageLayer | undefined> {
    const slot = {} as ImageLayer;
    this.layers.push(slot);
    this.config.addHistory(history);
    const settled = settle().then((layer) => {
      if (!layer) {
        this.layers.splice(this.layers.indexOf(slot), 1);
        history.empty_layer = true;
        return undefined;
      }
      Object.assign(slot, layer);
      this.services.onLayer?.(slot);
      return slot;
    });
    // Marked handled here; flush() still sees the failure.
    settled.catch(() => undefined);
    this.pending.push(settled);
    return settled;
  }

  /** Waits for background layer writes; anything that reads the layers or the rootfs comes after this. */
  private async flush(): Promise<void> {
    while (this.pending.length) await Promise.all(this.pending.splice(0));
  }

  /** The layer bytes also depend on how they are compressed. */
  private get layerFormat(): string {
    const { options } = this.services;
    return `${options.compression}:${options.compressionLevel ?? 'default'}:${options.reproducible ? 'reproducible' : 'dated'}`;
  }

  /** A COPY/ADD/WORKDIR key covers the expanded instruction and its content (entries hash, or a source stage's key). */
  private copyKeyFor(instruction: Instruction, contentHash: string): string {
    const chown = 'chown' in instruction ? instruction.chown : undefined;
    // Names resolve through the image's /etc/passwd, which the chain decides.
    const chownByName = chown !== undefined && !NUMERIC_IDS.test(chown);
    return copyCacheKey({
      instruction: instructionKeyText(instruction),
      workdir: this.config.workdir,
      entriesHash: chownByName ? `${contentHash}@${this.chainKey}` : contentHash,
      layerFormat: this.layerFormat,
    });
  }

  /** A RUN key chains from everything before it and covers only what the command can see. */
  private async runKey(instruction: Extract<Instruction, { kind: 'RUN' }>): Promise<string | undefined> {
    // A bind mount of the context could change without the key noticing: never cache such a RUN.
    if (instruction.mounts.some((m) => m.type === 'bind' && !m.from)) return undefined;
    const env = new Map<string, string>(this.args);
    for (const [k, v] of this.config.env) env.set(k, v);
    const mounts: string[] = [];
    for (const m of instruction.mounts) {
      const from = m.from ? ((await this.services.stageByName(m.from))?.cacheKey ?? `image:${m.from}`) : '';
      // Secrets are named by id and target only: a new secret value must not invalidate the layer.
      mounts.push([m.type, m.target ?? '', m.id ?? '', m.source ?? '', from].join('|'));
    }
    return runCacheKey({
      parentKey: this.chainKey,
      instruction: instructionKeyText(instruction),
      env: [...env].map(([k, v]) => `${k}=${v}`),
      user: this.config.user,
      workdir: this.config.workdir,
      shell: this.config.shell,
      mounts,
      network: instruction.network ?? this.services.options.network,
      layerFormat: this.layerFormat,
    });
  }

  private async cacheLookup(key: string, raw: Instruction): Promise<ImageLayer | undefined> {
    const started = Date.now();
    const hit = await this.services.layerCache!.get(key, this.family);
    this.services.timings('cache lookup', Date.now() - started);
    log(this.services, `${this.stepPrefix} cache ${hit ? 'hit' : 'miss'} for line ${raw.line} (${key.slice(0, 12)})`);
    return hit;
  }

  private async cacheStore(key: string, layer: ImageLayer): Promise<void> {
    if (!layer.path) return;
    const started = Date.now();
    try {
      await this.services.layerCache!.put(key, { descriptor: layer.descriptor, diffId: layer.diffId, path: layer.path }, this.family);
    } catch (error) {
      // A cache that cannot be written slows later builds down; it must not fail this one.
      log(this.services, `warning: could not store a cache entry: ${error instanceof Error ? error.message : String(error)}`);
    } finally {
      this.services.timings('cache store', Date.now() - started);
    }
  }

  private async writeEntries(entries: LayerEntry[]): Promise<ImageLayer> {
    const { options } = this.services;
    const started = Date.now();
    const written = await writeLayer(entries, {
      compression: options.compression,
      level: options.compressionLevel,
      outputDir: join(this.services.workDir, 'layers'),
      ...(options.reproducible ? { clampMtime: sourceDateEpoch() } : {}),
    });
    this.services.timings('write layer', Date.now() - started);
    return {
      descriptor: { mediaType: layerMediaType(this.family, written.compression), digest: written.digest, size: written.size },
      diffId: written.diffId,
      path: written.path,
    };
  }

  /** Single-snapshot mode: entries go to the rootfs now and into one layer at the end. */
  private async applyToRootfs(entries: LayerEntry[]): Promise<void> {
    const rootfs = await this.ensureRootfs();
    const tmp = await mkdtemp(join(this.services.workDir, 'apply-'));
    try {
      const written = await writeLayer(entries, { compression: 'none', outputDir: tmp });
      const { createReadStream } = await import('node:fs');
      await extractLayer(createReadStream(written.path), rootfs.dir, { onWarning: (m) => log(this.services, `warning: ${m}`) });
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }

  private async beginSingleSnapshot(): Promise<void> {
    const rootfs = await this.ensureRootfs();
    this.singleSnapshotBase = await runStep.scan(rootfs.dir, this.snapshotIgnores(), this.services.options.snapshotMode);
  }

  private async endSingleSnapshot(): Promise<void> {
    const rootfs = this.rootfs!;
    const entries = await runStep.diff(rootfs.dir, this.singleSnapshotBase, this.snapshotIgnores(), this.services.options.snapshotMode);
    if (entries.length === 0) return;
    const layer = await this.writeEntries(entries);
    this.layers.push(layer);
    this.config.addHistory({ created: this.created, created_by: 'tessera single snapshot', comment: 'tessera' });
    rootfs.markApplied(this.layers.length);
  }

  async ensureRootfs(): Promise<Rootfs> {
    if (!this.rootfs) {
      await this.flush();
      const started = Date.now();
      this.rootfs = await this.services.materialise(`rootfs-${this.stage.index}`, this.layers);
      this.services.timings('unpack', Date.now() - started);
    }
    return this.rootfs;
  }

  private snapshotIgnores(): string[] {
    const { options } = this.services;
    return ['/proc', '/sys', '/dev', ...(options.ignoreVarRun ? ['/var/run', '/run'] : []), ...options.ignorePaths];
  }

  /** WORKDIR creates its directory. Without a rootfs, the entry goes in a layer of its own. */
  private async ensureWorkdir(dir: string): Promise<LayerEntry[]> {
    if (dir === '/') return [];
    // BuildKit creates the directory owned by the current USER, so a later RUN as that user can write there.
    const owner = (await this.chownIds(this.config.user || undefined)) ?? { uid: 0, gid: 0 };
    if (this.rootfs) {
      const { lstat } = await import('node:fs/promises');
      const exists = await lstat(join(this.rootfs.dir, dir)).then(
        (s) => s.isDirectory(),
        () => false,
      );
      if (exists) return [];
    }
    return [{ path: dir.slice(1), type: 'directory', mode: 0o755, ...owner }];
  }

  private async chownIds(spec: string | undefined): Promise<{ uid: number; gid: number } | undefined> {
    if (!spec) return undefined;
    if (spec === 'root') return { uid: 0, gid: 0 };
    if (NUMERIC_IDS.test(spec)) return resolveUser(spec, {}, { purpose: 'chown' });
    const rootfs = await this.ensureRootfs();
    const [passwd, group] = await Promise.all([readTextOr(join(rootfs.dir, 'etc/passwd')), readTextOr(join(rootfs.dir, 'etc/group'))]);
    return resolveUser(spec, { passwd, group }, { purpose: 'chown' });
  }

  /**
   * `hashEntries` of what a COPY/ADD places. A COPY from the context whose walk (paths and stats) matches
   * one remembered in the cache dir, under the same instruction, workdir and image below, has the hash it
   * had then: the usual no-change rebuild neither plans nor looks up per-file hashes. `entries` is set
   * when they were made.
   */
  private async copyEntriesHash(instruction: CopyInstruction | AddInstruction): Promise<{ hash: string; entries?: LayerEntry[] }> {
    const memo = this.services.hashMemo;
    if (!memo || instruction.kind !== 'COPY' || instruction.from || instruction.contents.length > 0) {
      const entries = await this.copyEntries(instruction);
      return { hash: await hashEntries(entries, { memo }), entries };
    }
    const key = (await this.walkKey(instruction, true)) ?? (await this.walkKey(instruction, false))!;
    const remembered = memo.recallWalk(key);
    if (remembered) return { hash: remembered };
    const entries = await this.copyEntries(instruction);
    const hash = await hashEntries(entries, { memo });
    memo.rememberWalk(key, hash);
    return { hash, entries };
  }

  /**
   * The walk key of a context COPY (see `WalkKey`), from a walk that keeps no file. With `listTrees`, big
   * directories come from find listings instead; `undefined` when one could not be had.
   */
  private async walkKey(instruction: CopyInstruction, listTrees: boolean): Promise<string | undefined> {
    const listings = listTrees ? this.services.treeListings : undefined;
    if (listTrees && !listings) return undefined;
    const walk = await WalkKey.start();
    const listed = listings && ((_: string, stats: Stats, contextPath: string) => listings.lists(stats, contextPath));
    const resolved = await this.resolveLocalSources(instruction, (file, index) => walk.file(file, index), listed);
    for (const [index, source] of resolved.entries()) {
      if (!source.contentsSkipped) continue;
      const digest = await listings!.digest(source.absolutePath, source.contentsSkipped.contextPath);
      if (digest === undefined) return undefined;
      walk.listedTree(index, digest);
    }
    // The chain key stands for the image below, which decides the parent directories COPY creates.
    return walk.finish(resolved, [this.chainKey, instructionKeyText(instruction), this.config.workdir]);
  }

  /**
   * A COPY/ADD's sources in the context or, with `--from`, in a stage or image; remote ADD sources are
   * left out. With `visit`, directory contents go there instead of into `contents`, except where
   * `skipContents` says they are taken another way.
   */
  private async resolveLocalSources(
    instruction: CopyInstruction | AddInstruction,
    visit?: ResolveCopySourcesOptions['visit'],
    skipContents?: ResolveCopySourcesOptions['skipContents'],
  ): Promise<ResolvedSource[]> {
    const localSources = instruction.sources.filter((s) => instruction.kind !== 'ADD' || !isRemoteSource(s));
    if (localSources.length === 0) return [];
    const from = instruction.kind === 'COPY' ? instruction.from : undefined;
    const root = from ? await this.fromRoot(from) : this.services.contextRoot;
    const ignore = from ? createIgnoreMatcher([]) : this.services.ignore;
    return resolveCopySources({ root }, localSources, { ignore, excludes: instruction.excludes, allowWildcards: true, visit, skipContents });
  }

  /** The entries a COPY/ADD places; `workdir` is the one in effect at the instruction (it may run later). */
  private async copyEntries(instruction: CopyInstruction | AddInstruction, workdir = this.config.workdir): Promise<LayerEntry[]> {
    const chown = await this.chownIds(instruction.chown);
    const chmod = instruction.chmod !== undefined ? parseChmod(instruction.chmod, instruction) : undefined;
    const plan = { dest: instruction.dest, workdir, chown, chmod, destIsDirectoryInImage: (p: string) => this.isDirectoryInImage(p) };
    const entries: LayerEntry[] = [];
    if (instruction.contents.length) {
      entries.push(...(await planHeredocCopy(instruction.contents.map((h) => ({ name: h.name, content: h.content })), plan)));
    }
    if (instruction.sources.length === 0) return entries;
    const resolved = await this.resolveLocalSources(instruction);
    const localCount = resolved.length;
    const temps: string[] = [];
    try {
      if (instruction.kind === 'ADD') {
        for (const src of instruction.sources.filter(isRemoteSource)) {
          const dir = await mkdtemp(join(this.services.workDir, 'add-'));
          temps.push(dir);
          const file = await fetchRemote(src, dir, { checksum: instruction.checksum });
          resolved.push(...(await resolveCopySources({ root: dir }, [posix.basename(file.path)], { ignore: createIgnoreMatcher([]) })));
        }
        // Local archives are unpacked; fetched ones (after `localCount`) are not, as in Docker.
        for (let i = 0; i < localCount; i++) {
          const source = resolved[i]!;
          if (source.type !== 'file' || instruction.unpack === false) continue;
          if (!(await detectArchive(source.absolutePath))) continue;
          const dir = await mkdtemp(join(this.services.workDir, 'unpack-'));
          temps.push(dir);
          // The archive's root stands for the destination directory, which ADD creates 0755.
          await setMode(dir, 0o755);
          const { createReadStream } = await import('node:fs');
          await extractLayer(createReadStream(source.absolutePath), dir, { applyWhiteouts: false, onWarning: (m) => log(this.services, `warning: ${m}`) });
          const [unpacked] = await resolveCopySources({ root: dir }, ['.'], { ignore: createIgnoreMatcher([]) });
          resolved[i] = unpacked!;
        }
      }
      const multiple = resolved.length > 1 || resolved.some((r) => r.wildcard);
      const dest = multiple && !instruction.dest.endsWith('/') && resolved.length === 1 ? instruction.dest : instruction.dest;
      entries.push(...(await planCopy(resolved, { ...plan, dest, parents: instruction.kind === 'COPY' && instruction.parents })));
      // Layer writing streams file contents from `source`, so temporary sources must outlive it.
      if (temps.length) return await this.materialiseEntries(entries);
      return entries;
    } finally {
      await Promise.all(temps.map((t) => rm(t, { recursive: true, force: true })));
    }
  }

  /** Entries whose sources live in temporary directories are copied to the stage work dir first. */
  private async materialiseEntries(entries: LayerEntry[]): Promise<LayerEntry[]> {
    const dir = await mkdtemp(join(this.services.workDir, 'sources-'));
    const { copyFile } = await import('node:fs/promises');
    let n = 0;
    for (const entry of entries) {
      if (entry.type === 'file' && entry.source) {
        const copy = join(dir, String(n++));
        await copyFile(entry.source, copy);
        entry.source = copy;
      }
    }
    return entries;
  }

  private async fromRoot(from: string): Promise<string> {
    const stage = await this.services.stageByName(from);
    if (stage) {
      if (!stage.rootfs) {
        stage.rootfs = await this.services.materialise(`rootfs-${stage.stage.index}`, stage.layers);
      }
      return stage.rootfs.dir;
    }
    return (await this.services.imageRootfs(from)).dir;
  }

  /** Whether a path is a directory in the image so far: known only when the rootfs is unpacked. */
  private async isDirectoryInImage(imagePath: string): Promise<boolean> {
    if (imagePath === '/') return true;
    if (!this.rootfs) return false;
    const { stat } = await import('node:fs/promises');
    // The rootfs is ours; a symlinked parent resolves inside it only if it is relative, so check with lstat chain.
    return stat(join(this.rootfs.dir, imagePath)).then(
      (s) => s.isDirectory(),
      () => false,
    );
  }

  private async run(raw: Instruction, instruction: Extract<Instruction, { kind: 'RUN' }>): Promise<RunStepResult> {
    const rootfs = await this.ensureRootfs();
    const c = this.config;
    const argv = runArgv(instruction, c.shell);
    const env = new Map<string, string>();
    for (const [k, v] of this.args) env.set(k, v);
    for (const [k, v] of c.env) env.set(k, v);
    if (!env.has('PATH')) env.set('PATH', '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
    const [passwd, group] = await Promise.all([readTextOr(join(rootfs.dir, 'etc/passwd')), readTextOr(join(rootfs.dir, 'etc/group'))]);
    const user = resolveUser(c.user || 'root', { passwd, group }, { purpose: 'run' });
    // Docker sets HOME from the user's passwd entry when the image does not set it.
    if (!env.has('HOME')) env.set('HOME', homeDirectory(passwd, user.uid));
    return runStep.run({
      services: this.services,
      rootfs,
      instruction,
      original: raw,
      argv,
      env: [...env].map(([k, v]) => `${k}=${v}`),
      cwd: c.workdir,
      user,
      ignore: this.snapshotIgnores(),
      prefix: this.stepPrefix,
      stageRoot: (name) => this.fromRoot(name),
      snapshot: !this.services.options.singleSnapshot,
    });
  }
}

const LONE_HEREDOC = /^\s*\d*<<-?\s*(["']?)[^\s"']+\1\s*$/;

/**
 * The argv of a RUN. Heredocs follow BuildKit: a RUN that is only `<<EOF` runs the body as the script;
 * otherwise the bodies are handed to the shell as here-documents after the command line.
 */
export function runArgv(instruction: Extract<Instruction, { kind: 'RUN' }>, shell: string[]): string[] {
  const { command, heredocs } = instruction;
  if (command.form === 'exec') return command.args;
  if (heredocs.length === 1 && LONE_HEREDOC.test(command.script)) {
    const body = heredocs[0]!.content;
    const shebang = /^#!\s*(\S+)(?:[ \t]+([^\n]*))?\n/.exec(body);
    // A shebang names the interpreter; the body goes to it as a `-c`-less script through the shell's stdin-free form.
    if (shebang) return [...shell, `${shebang[1]}${shebang[2] ? ` ${shebang[2]}` : ''} /dev/stdin <<'TESSERA_HEREDOC_EOF'\n${body}TESSERA_HEREDOC_EOF\n`];
    return [...shell, body];
  }
  if (heredocs.length === 0) return [...shell, command.script];
  return [...shell, [command.script, ...heredocs.map((h) => `${h.content}${h.name}`)].join('\n') + '\n'];
}

/** An expanded instruction as key material: every field but where it was written. */
function instructionKeyText(instruction: Instruction): string {
  const { original, line, endLine, file, ...fields } = instruction;
  void [original, line, endLine, file];
  return canonicalJson(fields);
}

function runHistory(raw: Instruction, instruction: Extract<Instruction, { kind: 'RUN' }>): string {
  return instruction.command.form === 'exec' ? `RUN ${JSON.stringify(instruction.command.args)}` : raw.original;
}

function parseChmod(text: string, instruction: Instruction): number {
  if (!/^[0-7]{1,4}$/.test(text)) {
    throw new TesseraError(`${instruction.file}:${instruction.line}: ${instruction.kind} --chmod=${text}: only octal modes are supported`, 'DOCKERFILE_INVALID');
  }
  return parseInt(text, 8);
}

function homeDirectory(passwd: string | undefined, uid: number): string {
  for (const line of (passwd ?? '').split('\n')) {
    const fields = line.split(':');
    if (fields.length >= 6 && Number(fields[2]) === uid && fields[5]) return fields[5];
  }
  return '/';
}

async function readTextOr(path: string): Promise<string | undefined> {
  return readFile(path, 'utf8').catch(() => undefined);
}

/** SOURCE_DATE_EPOCH (seconds) or the Unix epoch: the time reproducible builds write. */
export function sourceDateEpoch(): Date {
  const value = process.env.SOURCE_DATE_EPOCH;
  const seconds = value && /^\d+$/.test(value) ? Number(value) : 0;
  return new Date(seconds * 1000);
}

