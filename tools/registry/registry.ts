import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A Debian `docker-registry` (CNCF distribution) on 127.0.0.1, with storage in a temporary directory. */
export interface RunningRegistry {
  /** `127.0.0.1:PORT`, as used in image references. */
  host: string;
  /** `http://127.0.0.1:PORT` (or https). */
  url: string;
  /** Storage and config directory; removed by stop(). */
  dir: string;
  /** Everything the registry printed so far, including one access-log line per request. */
  log(): string;
  stop(): Promise<void>;
}

export interface RegistryOptions {
  /** Extra YAML appended to the generated config (auth, tls sections). */
  extraConfig?: string;
  https?: boolean;
}

export async function startRegistry(options: RegistryOptions = {}): Promise<RunningRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-registry-'));
  const config = [
    'version: 0.1',
    'log: { level: info }',
    'storage:',
    `  filesystem: { rootdirectory: ${join(dir, 'data')} }`,
    '  delete: { enabled: true }',
    'http:',
    '  addr: 127.0.0.1:0',
    '  secret: tessera-test-secret',
    options.extraConfig ?? '',
  ].join('\n');
  const configPath = join(dir, 'config.yml');
  await writeFile(configPath, config);
  const child = spawn('docker-registry', ['serve', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const port = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`docker-registry did not start within 10 s:\n${output}`)), 10_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot start docker-registry (install Debian's docker-registry package): ${e.message}`));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`docker-registry exited with ${code}:\n${output}`));
    });
  });
  const host = `127.0.0.1:${port}`;
  return {
    host,
    url: `${options.https ? 'https' : 'http'}://${host}`,
    dir,
    log: () => output,
    stop: () => stopProcess(child).then(() => rm(dir, { recursive: true, force: true })),
  };
}

function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
