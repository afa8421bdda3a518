import { spawn } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The same minimal docker-registry as tools/registry/registry.ts (plain HTTP on 127.0.0.1), for plain Node. */
export async function startRegistry() {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-bench-registry-'));
  const dataDir = join(dir, 'data');
  const configPath = join(dir, 'config.yml');
  await writeFile(
    configPath,
    ['version: 0.1', 'log: { level: info }', 'storage:', `  filesystem: { rootdirectory: ${dataDir} }`, '  delete: { enabled: true }', 'http:', '  addr: 127.0.0.1:0', '  secret: tessera-bench'].join('\n'),
  );
  const child = spawn('docker-registry', ['serve', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`docker-registry did not start within 10 s:\n${output}`)), 10_000);
    const onData = (chunk) => {
      output += chunk;
      const match = /listening on 127\.0\.0\.1:(\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('error', (error) => reject(new Error(`cannot start docker-registry: ${error.message}`)));
    child.once('exit', (code) => reject(new Error(`docker-registry exited with ${code}:\n${output}`)));
  });
  let mark = 0;
  return {
    host: `127.0.0.1:${port}`,
    dataDir,
    /** Access-log lines since the last call. */
    takeAccessLog() {
      const lines = output.slice(mark).split('\n').filter((line) => /^\S+ - - \[/.test(line));
      mark = output.length;
      return lines;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        await new Promise((resolve) => {
          const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
          child.once('exit', () => (clearTimeout(kill), resolve()));
          child.kill('SIGTERM');
        });
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Requests and uploaded bytes from access-log lines. The log has no request sizes, so a finished
 * upload (`PUT …/blobs/uploads/…?…digest=sha256:HEX`) counts the size of the blob it stored.
 */
export async function summariseAccessLog(lines, dataDir) {
  const summary = { requests: lines.length, byMethod: {}, blobUploads: 0, uploadedBytes: 0, mounts: 0, manifestPuts: 0, uploaded: [] };
  for (const line of lines) {
    const match = /"(\w+) (\S+) HTTP\/[\d.]+" (\d+)/.exec(line);
    if (!match) continue;
    const [, method, uri] = match;
    summary.byMethod[method] = (summary.byMethod[method] ?? 0) + 1;
    if (method === 'POST' && /\/blobs\/uploads\/\?.*mount=/.test(uri)) summary.mounts++;
    if (method === 'PUT' && /\/manifests\//.test(uri)) summary.manifestPuts++;
    const upload = method === 'PUT' && /\/blobs\/uploads\/.*[?&]digest=sha256(?::|%3A)([0-9a-f]{64})/i.exec(uri);
    if (upload) {
      const hex = upload[1];
      summary.blobUploads++;
      const bytes = (await stat(join(dataDir, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data'))).size;
      summary.uploadedBytes += bytes;
      summary.uploaded.push({ digest: `sha256:${hex}`, bytes });
    }
  }
  return summary;
}
