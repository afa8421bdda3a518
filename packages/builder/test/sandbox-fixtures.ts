import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

/** A busybox rootfs from Debian's busybox-static: the applet links are made inside the rootfs only. */
export function makeBusyboxRootfs(parent = mkdtempSync(path.join(tmpdir(), 'tessera-sandbox-test-'))): string {
  const root = path.join(parent, 'rootfs');
  mkdirSync(path.join(root, 'bin'), { recursive: true });
  copyFileSync('/bin/busybox', path.join(root, 'bin/busybox'));
  const applets = execFileSync('/bin/busybox', ['--list-full'], { encoding: 'utf8' }).split('\n').filter(Boolean);
  for (const applet of applets) {
    const link = path.join(root, applet);
    mkdirSync(path.dirname(link), { recursive: true });
    if (!existsSync(link)) symlinkSync('/bin/busybox', link);
  }
  for (const dir of ['etc', 'tmp', 'root', 'home/user', 'var']) mkdirSync(path.join(root, dir), { recursive: true });
  chmodSync(path.join(root, 'tmp'), 0o1777);
  writeFileSync(path.join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n');
  writeFileSync(path.join(root, 'etc/group'), 'root:x:0:\nuser:x:1000:\n');
  return root;
}

export const BASE_ENV = ['PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/root'];
