import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from './measure.mjs';

/** Pushes the monorepo's in-repo runtime base (a busybox rootfs) to the registry with umoci and skopeo. */
export async function pushRuntimeBase(repoRoot, host, reference = 'bench/runtime:1') {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-bench-base-'));
  try {
    const layout = join(dir, 'layout');
    await run('umoci', ['init', '--layout', layout], { check: true });
    await run('umoci', ['new', '--image', `${layout}:base`], { check: true });
    await run('umoci', ['insert', '--image', `${layout}:base`, join(repoRoot, 'base/runtime/rootfs'), '/'], { check: true });
    await run('umoci', ['config', '--image', `${layout}:base`, '--config.env', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', '--config.cmd', '/bin/sh'], { check: true });
    await run('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:base`, `docker://${host}/${reference}`], { check: true });
    return `${host}/${reference}`;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
