#!/usr/bin/env bash
# Makes busybox-rootfs.tar: a busybox rootfs from Debian's busybox-static, built offline.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
busybox=/bin/busybox
[ -x "$busybox" ] || { echo "busybox-static is needed: apt-get install -y busybox-static" >&2; exit 1; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
chmod 0755 "$root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root}
chmod 1777 "$root/tmp"
cp "$busybox" "$root/bin/busybox"
# Applet links are made inside the rootfs only, never on the host.
"$busybox" --list-full | while read -r applet; do
  [ "$applet" = bin/busybox ] || ln -sf /bin/busybox "$root/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$root" -cf "$here/busybox-rootfs.tar" .
echo "wrote $here/busybox-rootfs.tar"
