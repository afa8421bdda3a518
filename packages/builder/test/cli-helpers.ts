import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

export const run = promisify(execFile);
export const repoRoot = resolve(__dirname, '../../..');
const cli = join(repoRoot, 'packages/builder/bin/tessera.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The CLI runs from dist, as installed: build it once before spawning. */
export async function ensureCliBuilt(): Promise<void> {
  await run(join(repoRoot, 'node_modules/.bin/tsc'), ['-b', 'packages/oci', 'packages/builder'], { cwd: repoRoot }).catch(() => undefined);
  if (!existsSync(join(repoRoot, 'packages/builder/dist/cli/main.js'))) throw new Error('tsc -b did not produce packages/builder/dist/cli/main.js');
}

/** Runs `tessera ARGS` with Node 22 (the test's own node) and collects its output. */
export function tessera(args: string[], env: Record<string, string> = {}, cwd = repoRoot): Promise<CliResult> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [cli, ...args], { cwd, env: { ...process.env, TESSERA_PASSWORD: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

/** Writes a build context of small text files into a new directory under `parent`. */
export async function writeContext(parent: string, files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(parent, 'ctx-'));
  for (const [name, content] of Object.entries(files)) {
    await mkdir(join(dir, name, '..'), { recursive: true });
    await writeFile(join(dir, name), content);
  }
  return dir;
}
