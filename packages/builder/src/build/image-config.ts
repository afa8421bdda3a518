import type { ContainerConfig, HealthConfig, HistoryEntry, ImageConfig } from '@tessera/oci';

/**
 * The image config a stage builds up, instruction by instruction, with Docker's rules for
 * ENTRYPOINT/CMD resets, ENV and LABEL merging, and relative WORKDIR.
 */
export class StageConfig {
  readonly config: ImageConfig;
  /** Whether this stage set CMD itself; ENTRYPOINT resets an inherited CMD only (Docker's rule). */
  private cmdSetInStage = false;

  constructor(base: ImageConfig) {
    this.config = structuredClone(base);
    this.config.config ??= {};
    this.config.history ??= [];
    this.config.rootfs ??= { type: 'layers', diff_ids: [] };
    // Triggers of the base run once, in the first stage built on it, and are not inherited.
    delete this.container.OnBuild;
  }

  get container(): ContainerConfig {
    return this.config.config!;
  }

  get env(): Map<string, string> {
    return parseEnvList(this.container.Env ?? []);
  }

  get workdir(): string {
    return this.container.WorkingDir || '/';
  }

  get user(): string {
    return this.container.User ?? '';
  }

  get shell(): string[] {
    return this.container.Shell?.length ? this.container.Shell : ['/bin/sh', '-c'];
  }

  setEnv(pairs: Array<[string, string]>): void {
    const env = this.env;
    for (const [k, v] of pairs) env.set(k, v);
    this.container.Env = [...env].map(([k, v]) => `${k}=${v}`);
  }

  addLabels(pairs: Array<[string, string]>): void {
    const labels = (this.container.Labels ??= {});
    for (const [k, v] of pairs) labels[k] = v;
  }

  setWorkdir(path: string): string {
    const next = path.startsWith('/') ? path : joinImagePath(this.workdir, path);
    this.container.WorkingDir = normaliseImagePath(next);
    return this.container.WorkingDir;
  }

  setUser(user: string): void {
    this.container.User = user;
  }

  setEntrypoint(argv: string[]): void {
    this.container.Entrypoint = argv;
    if (!this.cmdSetInStage) this.container.Cmd = null;
  }

  setCmd(argv: string[]): void {
    this.container.Cmd = argv;
    this.cmdSetInStage = true;
  }

  setShell(argv: string[]): void {
    this.container.Shell = argv;
  }

  addExposedPorts(ports: string[]): void {
    const exposed = (this.container.ExposedPorts ??= {});
    for (const p of ports) exposed[p.includes('/') ? p.toLowerCase() : `${p}/tcp`] = {};
  }

  addVolumes(paths: string[]): void {
    const volumes = (this.container.Volumes ??= {});
    for (const p of paths) volumes[p] = {};
  }

  setStopSignal(signal: string): void {
    this.container.StopSignal = signal;
  }

  setHealthcheck(health: HealthConfig): void {
    this.container.Healthcheck = health;
  }

  addOnBuild(trigger: string): void {
    (this.container.OnBuild ??= []).push(trigger);
  }

  setAuthor(author: string): void {
    this.config.author = author;
  }

  addHistory(entry: HistoryEntry): void {
    this.config.history!.push(entry);
  }

  addDiffId(diffId: string): void {
    this.config.rootfs.diff_ids.push(diffId);
  }
}

export function parseEnvList(list: string[]): Map<string, string> {
  const env = new Map<string, string>();
  for (const item of list) {
    const eq = item.indexOf('=');
    if (eq > 0) env.set(item.slice(0, eq), item.slice(eq + 1));
    else if (item) env.set(item, '');
  }
  return env;
}

export function joinImagePath(base: string, path: string): string {
  return normaliseImagePath(`${base.replace(/\/+$/, '')}/${path}`);
}

/** Cleans an absolute image path the way Go's path.Clean does: no `.`, `..` above `/`, or repeated slashes. */
export function normaliseImagePath(path: string): string {
  const parts: string[] = [];
  for (const part of path.split('/')) {
    if (!part || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return '/' + parts.join('/');
}
