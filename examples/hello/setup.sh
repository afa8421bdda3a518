#!/usr/bin/env bash
# Makes busybox-rootfs.tar: a busybox rootfs from Debian's busybox-static, built offline.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
bash "$here/../busybox-rootfs.sh" "$root"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$root" -cf "$here/busybox-rootfs.tar" .
echo "wrote $here/busybox-rootfs.tar"
