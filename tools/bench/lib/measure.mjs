import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Runs a command under GNU time for its peak RSS (the largest of the process and the children it
 * waited for) and measures the wall time here, with sub-millisecond resolution.
 */
export async function runMeasured(command, args, options = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-bench-time-'));
  const timeFile = join(dir, 'time');
  try {
    const started = performance.now();
    const { code, stdout, stderr } = await run('/usr/bin/time', ['-f', '%M', '-o', timeFile, command, ...args], options);
    const ms = performance.now() - started;
    const maxRssKiB = Number((await readFile(timeFile, 'utf8')).trim().split('\n').pop());
    return { ms, maxRssKiB, code, stdout, stderr };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs a command and collects its output; `check` turns a non-zero exit into an error with the tail of stderr. */
export function run(command, args, { cwd, env, input, check = false } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: env ? { ...process.env, ...env } : process.env, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    if (input !== undefined) child.stdin.end(input);
    child.once('error', reject);
    child.once('close', (code) => {
      if (check && code !== 0) reject(new Error(`${command} ${args.join(' ')} exited with ${code}:\n${(stderr || stdout).slice(-3000)}`));
      else resolve({ code, stdout, stderr });
    });
  });
}

/** Runs a bench worker (a node script printing one JSON line) under GNU time. */
export async function runWorker(script, args, options = {}) {
  const result = await runMeasured(process.execPath, ['--expose-gc', script, ...args], options);
  if (result.code !== 0) throw new Error(`worker ${script} failed (${result.code}):\n${result.stderr.slice(-3000)}`);
  const lines = result.stdout.trim().split('\n');
  return { ...result, output: JSON.parse(lines[lines.length - 1]) };
}
