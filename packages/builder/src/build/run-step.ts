import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { TesseraError } from '@tessera/oci';
import type { ResolvedUser } from '../context/index';
import type { Instruction, RunInstruction } from '../dockerfile/index';
import type { LayerEntry } from '../layer/index';
import { detectIsolation, runInSandbox, type SandboxMount, type SandboxOptions, type SandboxResult } from '../sandbox/index';
import { chooseSnapshotter, diffTree, scanTree, withOverlay, type SnapshotterChoice, type TreeState } from '../snapshot/index';
import type { SnapshotMode } from './options';
import type { Rootfs } from './rootfs';
import type { StageServices } from './stage-builder';

export interface RunStepRequest {
  services: StageServices;
  rootfs: Rootfs;
  instruction: RunInstruction;
  original: Instruction;
  argv: string[];
  env: string[];
  cwd: string;
  user: ResolvedUser;
  ignore: string[];
  prefix: string;
  stageRoot: (name: string) => Promise<string>;
  /** False in single-snapshot mode: the stage takes one snapshot at its end. */
  snapshot: boolean;
}

export interface RunStepResult {
  entries: LayerEntry[];
}

/** Snapshot state kept per rootfs directory, so consecutive RUNs scan once each. */
const lastState = new WeakMap<Rootfs, { layers: number; state: TreeState }>();

/** The snapshot method, chosen once per build and logged with the reason. */
const snapshotters = new WeakMap<object, Promise<SnapshotterChoice>>();

function snapshotterFor(services: StageServices): Promise<SnapshotterChoice> {
  let choice = snapshotters.get(services.options);
  if (!choice) {
    const { options } = services;
    choice = (async () => {
      const isolation = await detectIsolation();
      // A forced isolation may differ from what auto picks; overlay needs mounts in that sandbox.
      const chosen = await chooseSnapshotter({ mode: options.snapshotMode, overlayAllowed: isolation.overlayAllowed && !options.singleSnapshot });
      options.log(`sandbox: ${isolation.reason}`);
      options.log(`snapshots: ${chosen.reason}`);
      return chosen;
    })();
    snapshotters.set(services.options, choice);
  }
  return choice;
}

/** RUN: the command in a sandbox over the stage's rootfs, then the changed paths as layer entries. */
export const runStep = {
  scan(root: string, ignore: string[], mode: SnapshotMode): Promise<TreeState> {
    return scanTree(root, { ignore, mode });
  },

  async diff(root: string, before: unknown, ignore: string[], mode: SnapshotMode): Promise<LayerEntry[]> {
    const after = await scanTree(root, { ignore, mode });
    return diffTree(before as TreeState, after);
  },

  async run(request: RunStepRequest): Promise<RunStepResult> {
    const { services, rootfs, instruction, original } = request;
    const { options, workDir } = services;
    const mode = options.snapshotMode;
    const mounts: SandboxMount[] = [];
    const temps: string[] = [];
    try {
      for (const mount of instruction.mounts) mounts.push(await prepareMount(mount, request, temps));
      const ignore = [...request.ignore, ...mounts.map((m) => m.target)];
      await mkdir(join(rootfs.dir, request.cwd), { recursive: true });

      const sandbox: SandboxOptions = {
        rootfs: rootfs.dir,
        argv: request.argv,
        env: request.env,
        cwd: request.cwd,
        uid: request.user.uid,
        gid: request.user.gid,
        supplementaryGids: request.user.supplementary ?? [],
        network: instruction.network === 'none' ? 'none' : options.network,
        isolation: options.isolation,
        mounts,
        timeoutMs: options.runTimeoutMs,
        onStdout: (line) => options.log(`${request.prefix} | ${line}`),
        onStderr: (line) => options.log(`${request.prefix} | ${line}`),
      };
      const check = (result: SandboxResult) => {
        if (result.exitCode === 0 && !result.timedOut) return;
        const how = result.timedOut
          ? `did not finish within --run-timeout`
          : result.signal
            ? `was killed by ${result.signal}`
            : `returned a non-zero code: ${result.exitCode}`;
        throw new TesseraError(`${original.file}:${original.line}: RUN ${JSON.stringify(request.argv.join(' '))} ${how}`, 'RUN_FAILED');
      };

      if (!request.snapshot) {
        check(await timed(services, 'run', () => runInSandbox(sandbox)));
        return { entries: [] };
      }
      const snapshotter = await snapshotterFor(services);
      if (snapshotter.kind === 'overlay') {
        // The RUN writes to an overlay upper dir; its contents are the change set, then merged into the rootfs.
        const { result, entries } = await timed(services, 'run', () =>
          withOverlay(rootfs.dir, (overlay) => runInSandbox({ ...sandbox, overlay }), { ignore, parentDir: workDir }),
        );
        check(result);
        lastState.delete(rootfs);
        return { entries };
      }
      const cached = lastState.get(rootfs);
      const before = cached && cached.layers === rootfs.layerCount ? cached.state : await timed(services, 'snapshot', () => scanTree(rootfs.dir, { ignore, mode }));
      check(await timed(services, 'run', () => runInSandbox(sandbox)));
      const after = await timed(services, 'snapshot', () => scanTree(rootfs.dir, { ignore, mode }));
      const entries = diffTree(before, after);
      lastState.set(rootfs, { layers: rootfs.layerCount + (entries.length ? 1 : 0), state: after });
      return { entries };
    } finally {
      await Promise.all(temps.map((t) => rm(t, { recursive: true, force: true })));
    }
  },
};

async function timed<T>(services: StageServices, phase: string, work: () => Promise<T>): Promise<T> {
  const started = Date.now();
  try {
    return await work();
  } finally {
    services.timings(phase, Date.now() - started);
  }
}

async function prepareMount(mount: RunInstruction['mounts'][number], request: RunStepRequest, temps: string[]): Promise<SandboxMount> {
  const { options, workDir } = request.services;
  const where = `${request.original.file}:${request.original.line}`;
  switch (mount.type) {
    case 'secret': {
      const id = mount.id ?? (mount.target ? posix.basename(mount.target) : undefined);
      if (!id) throw new TesseraError(`${where}: RUN --mount=type=secret needs an id or a target`, 'DOCKERFILE_INVALID');
      const secret = options.secrets[id];
      if (!secret) {
        if (mount.required) throw new TesseraError(`${where}: secret ${id} is required but was not given (use --secret id=${id},src=FILE)`, 'SECRET_MISSING');
        return { type: 'tmpfs', target: mount.target ?? `/run/secrets/${id}` };
      }
      // The secret is copied to a private directory outside the rootfs and bind-mounted read-only.
      const dir = await mkdtemp(join(workDir, 'secret-'));
      temps.push(dir);
      await chmod(dir, 0o700);
      const file = join(dir, 'secret');
      const { readFile } = await import('node:fs/promises');
      const value = secret.src ? await readFile(secret.src) : Buffer.from(process.env[secret.env ?? id] ?? '', 'utf8');
      await writeFile(file, value, { mode: mount.mode ?? 0o400 });
      return { type: 'bind', source: file, target: mount.target ?? `/run/secrets/${id}`, readonly: true };
    }
    case 'cache': {
      const target = mount.target;
      if (!target) throw new TesseraError(`${where}: RUN --mount=type=cache needs a target`, 'DOCKERFILE_INVALID');
      const base = options.cacheDir ? join(options.cacheDir, 'run-cache') : join(workDir, 'run-cache');
      const id = (mount.id ?? target).replace(/[^A-Za-z0-9._-]/g, '_');
      const dir = join(base, id);
      await mkdir(dir, { recursive: true, mode: mount.mode ?? 0o755 });
      return { type: 'bind', source: dir, target, readonly: mount.readonly };
    }
    case 'bind': {
      const target = mount.target;
      if (!target) throw new TesseraError(`${where}: RUN --mount=type=bind needs a target`, 'DOCKERFILE_INVALID');
      const root = mount.from ? await request.stageRoot(mount.from) : request.services.contextRoot;
      const source = join(root, posix.normalize('/' + (mount.source ?? '/')));
      return { type: 'bind', source, target, readonly: mount.readonly };
    }
    case 'tmpfs':
      if (!mount.target) throw new TesseraError(`${where}: RUN --mount=type=tmpfs needs a target`, 'DOCKERFILE_INVALID');
      return { type: 'tmpfs', target: mount.target };
    case 'ssh':
      throw new TesseraError(`${where}: RUN --mount=type=ssh is not supported`, 'UNSUPPORTED');
  }
}
