import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCommand, type CommandResult } from './command';

/** Raw manifest, or config, of an image in a plain-HTTP registry, as skopeo sees it. */
export async function skopeoInspect(reference: string, what: 'raw' | 'config'): Promise<Record<string, any>> {
  const { stdout } = await runCommand('skopeo', [
    '--insecure-policy',
    'inspect',
    `--${what}`,
    '--tls-verify=false',
    `docker://${reference}`,
  ]);
  return JSON.parse(stdout) as Record<string, any>;
}

/** The runtime settings umoci derives from the image config (OCI runtime spec `process`). */
export interface UnpackedProcess {
  args?: string[];
  env?: string[];
  cwd?: string;
}

export interface UnpackedImage {
  /** umoci bundle directory (rootfs/ and config.json). */
  bundle: string;
  rootfs: string;
  process: UnpackedProcess;
  remove(): Promise<void>;
}

/** Copies `HOST/REPO:TAG` (or `@digest`) from a plain-HTTP registry and unpacks it with umoci into a temp bundle. */
export async function pullAndUnpack(reference: string): Promise<UnpackedImage> {
  const work = await mkdtemp(join(tmpdir(), 'tessera-unpack-'));
  const remove = () => rm(work, { recursive: true, force: true });
  try {
    const layout = join(work, 'layout');
    const bundle = join(work, 'bundle');
    await runCommand('skopeo', [
      '--insecure-policy',
      'copy',
      '--quiet',
      '--src-tls-verify=false',
      `docker://${reference}`,
      `oci:${layout}:image`,
    ]);
    const rootless = process.getuid?.() === 0 ? [] : ['--rootless'];
    await runCommand('umoci', [...rootless, 'unpack', '--image', `${layout}:image`, bundle]);
    const spec = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8')) as { process?: UnpackedProcess };
    return { bundle, rootfs: join(bundle, 'rootfs'), process: spec.process ?? {}, remove };
  } catch (error) {
    await remove();
    throw error;
  }
}

/**
 * Runs `argv` chrooted into `rootfs` (needs root) with only the given environment, since chroot applies
 * nothing from the image config. `cwd` is entered inside the rootfs.
 */
export function runInRootfs(
  rootfs: string,
  argv: readonly string[],
  options: { env?: readonly string[]; cwd?: string } = {},
): Promise<CommandResult> {
  const env = Object.fromEntries(
    (options.env ?? []).map((pair) => {
      const at = pair.indexOf('=');
      return [pair.slice(0, at), pair.slice(at + 1)];
    }),
  );
  const command = options.cwd ? ['/bin/sh', '-c', 'cd "$0" && exec "$@"', options.cwd, ...argv] : argv;
  return runCommand('/usr/sbin/chroot', [rootfs, ...command], { env });
}
