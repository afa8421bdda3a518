#!/usr/bin/env bash
# Fills the directory $1 with a busybox rootfs from Debian's busybox-static, offline: the static binary,
# one link per applet (made inside the rootfs only, never on the host), /etc/passwd and /etc/group.
# Shared by the examples' setup scripts.
set -euo pipefail
root=$1
busybox=/bin/busybox
[ -x "$busybox" ] || { echo "busybox-static is needed: apt-get install -y busybox-static" >&2; exit 1; }
chmod 0755 "$root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root}
chmod 1777 "$root/tmp"
cp "$busybox" "$root/bin/busybox"
"$busybox" --list-full | while read -r applet; do
  [ "$applet" = bin/busybox ] || ln -sf /bin/busybox "$root/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
