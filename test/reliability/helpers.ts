import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';
import { runCommand } from '../../tools/images/index';
import { repoRoot, type CliResult } from '../../packages/builder/test/cli-helpers';

export { ensureCliBuilt, repoRoot, tessera, writeContext, type CliResult } from '../../packages/builder/test/cli-helpers';

const cli = join(repoRoot, 'packages/builder/bin/tessera.js');

const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

/** A running `tessera` process that the test may kill; `result` settles when it exits. */
export interface TesseraProcess {
  child: ChildProcess;
  result: Promise<CliResult & { signal: NodeJS.Signals | null; ms: number }>;
}

export function startTessera(args: string[], env: Record<string, string> = {}): TesseraProcess {
  const started = Date.now();
  const child = spawn(process.execPath, [cli, ...args], { cwd: repoRoot, env: { ...process.env, TESSERA_PASSWORD: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const result = new Promise<CliResult & { signal: NodeJS.Signals | null; ms: number }>((done, fail) => {
    child.once('error', fail);
    child.once('close', (code, signal) => done({ code, signal, stdout, stderr, ms: Date.now() - started }));
  });
  return { child, result };
}

/** Writes `size` random (incompressible) bytes to `path` in 1 MiB pieces, never holding them all. */
export async function writeRandomFile(path: string, size: number): Promise<void> {
  const out = createWriteStream(path);
  for (let left = size; left > 0; left -= 1 << 20) {
    if (!out.write(randomBytes(Math.min(left, 1 << 20)))) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

interface ManifestJson {
  mediaType?: string;
  config?: { digest: string; size: number };
  layers?: Array<{ digest: string; size: number }>;
  manifests?: Array<{ digest: string }>;
}

/** Every tag of a repository, asked directly of the registry. */
export async function listTags(registryHost: string, repository: string): Promise<string[]> {
  const res = await fetch(`http://${registryHost}/v2/${repository}/tags/list`);
  if (res.status === 404) return [];
  const body = (await res.json()) as { tags?: string[] | null };
  return body.tags ?? [];
}

/**
 * Problems with the image `reference` (a tag or digest) names in `repository`: every blob of the manifest
 * (and of each manifest of an index) must exist in that repository with its declared size. Empty when complete.
 */
export async function missingBlobs(registryHost: string, repository: string, reference: string): Promise<string[]> {
  const res = await fetch(`http://${registryHost}/v2/${repository}/manifests/${reference}`, { headers: { accept: MANIFEST_ACCEPT } });
  if (res.status !== 200) return [`manifest ${reference}: HTTP ${res.status}`];
  const manifest = (await res.json()) as ManifestJson;
  if (manifest.manifests) {
    const problems: string[] = [];
    for (const child of manifest.manifests) problems.push(...(await missingBlobs(registryHost, repository, child.digest)));
    return problems;
  }
  const problems: string[] = [];
  for (const blob of [manifest.config!, ...(manifest.layers ?? [])]) {
    const head = await fetch(`http://${registryHost}/v2/${repository}/blobs/${blob.digest}`, { method: 'HEAD' });
    if (head.status !== 200) problems.push(`${reference}: blob ${blob.digest} HTTP ${head.status}`);
    else if (Number(head.headers.get('content-length')) !== blob.size) problems.push(`${reference}: blob ${blob.digest} size ${head.headers.get('content-length')} != ${blob.size}`);
  }
  return problems;
}

/** Checks every tag of a repository: none may point to an image with a missing blob. */
export async function incompleteTags(registryHost: string, repository: string): Promise<string[]> {
  const problems: string[] = [];
  for (const tag of await listTags(registryHost, repository)) problems.push(...(await missingBlobs(registryHost, repository, tag)));
  return problems;
}

/** Pulls every blob of `HOST/REPO:TAG` with skopeo (which checks each digest) into a throwaway layout. */
export async function pullWithSkopeo(reference: string, tmp: string): Promise<void> {
  const dir = await mkdtemp(join(tmp, 'pull-'));
  try {
    await runCommand('skopeo', ['--insecure-policy', 'copy', '--quiet', '--src-tls-verify=false', `docker://${reference}`, `oci:${join(dir, 'layout')}:image`]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The manifest digest skopeo sees for a reference (asked of the registry directly). */
export async function skopeoDigest(reference: string): Promise<string> {
  const { stdout } = await runCommand('skopeo', ['--insecure-policy', 'inspect', '--tls-verify=false', `docker://${reference}`]);
  return (JSON.parse(stdout) as { Digest: string }).Digest;
}

/** Whether skopeo can inspect the reference at all. */
export async function skopeoCanInspect(reference: string): Promise<boolean> {
  return runCommand('skopeo', ['--insecure-policy', 'inspect', '--tls-verify=false', `docker://${reference}`]).then(
    () => true,
    () => false,
  );
}

/** Sums of durations for reporting. */
export function summarize(label: string, durations: number[]): string {
  const total = durations.reduce((a, b) => a + b, 0);
  return `${label}: ${durations.length} runs, total ${(total / 1000).toFixed(1)} s, max ${(Math.max(...durations) / 1000).toFixed(1)} s`;
}
