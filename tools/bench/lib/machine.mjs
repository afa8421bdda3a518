import { readFileSync } from 'node:fs';
import * as os from 'node:os';
import { run } from './measure.mjs';

export function machineInfo() {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown CPU';
  let distro = 'unknown';
  try {
    distro = /^PRETTY_NAME="?([^"\n]+)/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? distro;
  } catch {}
  return { cores: os.availableParallelism(), cpu: model, memoryGiB: (os.totalmem() / 2 ** 30).toFixed(1), kernel: os.release(), distro };
}

async function firstLine(command, args) {
  try {
    const { code, stdout, stderr } = await run(command, args);
    const text = (stdout || stderr).trim().split('\n')[0];
    return code === 0 && text ? text : undefined;
  } catch {
    return undefined;
  }
}

/** Versions of every tool a scenario can use; missing tools are left out. */
export async function toolVersions(repoRoot) {
  const versions = {
    node: process.version,
    tessera: await firstLine('git', ['-C', repoRoot, 'describe', '--always', '--dirty']).then((v) => v && `commit ${v}`),
    'docker-registry': await firstLine('docker-registry', ['--version']),
    skopeo: await firstLine('skopeo', ['--version']),
    buildah: await firstLine('buildah', ['--version']),
    docker: await firstLine('/usr/bin/docker', ['--version']),
    nx: JSON.parse(readFileSync(`${repoRoot}/node_modules/nx/package.json`, 'utf8')).version,
  };
  // Trim the tools' own wording ("skopeo version 1.9.3", "docker-registry github.com/… 2.8.2+ds1") to the version.
  const trimmed = Object.entries(versions)
    .filter(([, value]) => value)
    .map(([name, value]) => [name, /(?:^|\s)v?(\d+\.\d+[\w.+~-]*)/.exec(value)?.[1] ?? value]);
  return Object.fromEntries(trimmed);
}
