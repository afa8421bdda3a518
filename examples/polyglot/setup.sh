#!/usr/bin/env bash
# Makes the two runtime rootfs tarballs the example's base images ADD, offline:
#   images/busybox-base/busybox-rootfs.tar  busybox from Debian's busybox-static, applet links, passwd/group
#   images/node-base/node-runtime.tar       the running node binary and the shared libraries ldd lists
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
node_binary=$(node -p process.execPath)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Same bytes for the same files: sorted names, owner 0:0, mtime 0. A tarball is replaced only when it
# changed, so a rerun leaves it alone.
pack() {
  local root=$1 target=$2
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$root" -cf "$work/next.tar" .
  if cmp -s "$work/next.tar" "$target"; then rm "$work/next.tar"; else mv "$work/next.tar" "$target"; echo "wrote $target"; fi
}

root="$work/busybox"
mkdir -p "$root"
bash "$here/../busybox-rootfs.sh" "$root"
pack "$root" "$here/images/busybox-base/busybox-rootfs.tar"

root="$work/node"
mkdir -p "$root/usr/local/bin"
chmod 0755 "$root" "$root/usr" "$root/usr/local" "$root/usr/local/bin"
cp "$node_binary" "$root/usr/local/bin/node"
chmod 0755 "$root/usr/local/bin/node"
# Each library's content goes to the path the loader looks for (cp -L follows host symlinks).
ldd "$node_binary" | grep -o '/[^ ]* (0x' | sed 's/ (0x$//' | sort -u | while read -r library; do
  mkdir -p "$root$(dirname "$library")"
  cp -L "$library" "$root$library"
  chmod 0755 "$root$library"
done
find "$root" -type d -exec chmod 0755 {} +
pack "$root" "$here/images/node-base/node-runtime.tar"
