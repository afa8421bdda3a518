/**
 * Shell programs run inside the sandbox namespaces by the host's bash and sh. Every value reaches them as a
 * positional argument, never spliced into the program text, so no path or argument can inject code.
 */

/**
 * Pid 1 of the sandbox (run by bash, whose redirections take any fd number): first closes every fd the
 * host process might have leaked to us beyond 0-2, then builds the mount tree inside the private mount namespace, starts the command
 * chain (setpriv → env -i → sh) while host binaries are still reachable, then pivots into the rootfs
 * with `pivot_root . .` (the old root stays stacked above `/`, out of reach of path lookups) and only
 * then lets the chain exec the command. The two fifos order "chain loaded" before "pivot" before "exec".
 *
 * Arguments: ROOT OVERLAY_OPTIONS MERGED MOUNT_COUNT (KIND SOURCE TARGET READONLY)... CHAIN...
 */
export const SETUP_SCRIPT = `set -eu
for fd in /proc/self/fd/*; do
  fd=\${fd##*/}
  case $fd in 0|1|2) ;; *) eval "exec $fd>&-" 2>/dev/null || true ;; esac
done
root=$1; overlay_options=$2; merged=$3; shift 3
if [ -n "$overlay_options" ]; then
  mount -t overlay -o "$overlay_options" tessera-overlay "$merged"
  root=$merged
else
  mount --rbind -- "$root" "$root"
fi
mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
for entry in sys sysrq-trigger irq bus fs; do
  if [ -e "$root/proc/$entry" ]; then mount --bind -o ro -- "$root/proc/$entry" "$root/proc/$entry"; fi
done
mount -t tmpfs -o nosuid,noexec,mode=755,size=65536k tessera-dev "$root/dev"
for device in null zero full random urandom tty; do
  : > "$root/dev/$device"
  mount --bind -- "/dev/$device" "$root/dev/$device"
done
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"
mkdir "$root/dev/shm"
mount -t tmpfs -o nosuid,nodev,mode=1777 tessera-shm "$root/dev/shm"
mkdir "$root/dev/pts"
if mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$root/dev/pts" 2>/dev/null; then
  ln -s pts/ptmx "$root/dev/ptmx"
fi
count=$1; shift
while [ "$count" -gt 0 ]; do
  case $1 in
    bind)
      mount --rbind -- "$2" "$root$3"
      if [ "$4" = ro ]; then mount -o remount,bind,ro -- "$root$3"; fi ;;
    tmpfs) mount -t tmpfs -o nosuid,nodev,mode=1777 tessera-tmpfs "$root$3" ;;
  esac
  shift 4; count=$((count - 1))
done
if command -v ip >/dev/null 2>&1; then ip link set lo up 2>/dev/null || true; fi
go_fifo="$root/dev/.tessera-go"; ready_fifo="$root/dev/.tessera-ready"
mkfifo -m 600 "$go_fifo" "$ready_fifo"
exec 3<>"$go_fifo" 4<>"$ready_fifo"
rm -f "$go_fifo" "$ready_fifo"
cd /
"$@" 3<&3 4>&4 &
chain=$!
read -r _ <&4
cd "$root"
pivot_root . .
cd /
echo go >&3
exec 3>&- 4>&-
set +e
wait "$chain"
`;

/**
 * The last link of the chain, already with the final uid, gid and capability bounding set and an
 * environment of exactly the requested variables: waits for the pivot, enters the working directory,
 * drops the PWD/OLDPWD that \`cd\` exports (restoring requested ones) and execs the command.
 *
 * Arguments: CWD RESTORE_COUNT (NAME=VALUE)... ARGV...
 */
export const CHAIN_SCRIPT = `echo ready >&4
read -r _ <&3
exec 3<&- 4>&-
cwd=$1; count=$2; shift 2
cd -- "$cwd" || { echo "tessera: cannot enter working directory $cwd" >&2; exit 125; }
unset PWD OLDPWD
while [ "$count" -gt 0 ]; do export "$1"; shift; count=$((count - 1)); done
exec "$@"
`;
