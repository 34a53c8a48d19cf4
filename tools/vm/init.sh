#!/bin/busybox sh
# /init of the ublkit test VM (busybox initramfs built by tools/vm/run.mjs).
#
# Stays PID 1 inside the initramfs for the whole run and runs the job chrooted into an overlay of the
# host's / (9p, read-only) with a tmpfs upper layer, so the guest sees the host's node, tools and the
# checkout at the same paths. Channels (virtio-serial ports, named by the runner):
#   /dev/ttyS0     kernel console + these [ublkit-init] lines   -> console log on the host
#   ublkit.out     the job's stdout                             -> runner's stdout
#   ublkit.err     the job's stderr                             -> runner's stderr
#   ublkit.ctl     "UBLKIT-VM-START" / "UBLKIT-VM-EXIT <rc>"    -> runner's control parser
# The job itself (command, env, cwd, shares) is a directory on the host whose path comes base64-encoded
# on the kernel command line as ublkit.job=...; it is read through the 9p root.
/bin/busybox --install -s /bin
export PATH=/bin
umask 022

log() { echo "[ublkit-init] $*"; }
ctl=""
finish() { # $1 = exit code
  log "UBLKIT-VM-EXIT $1"
  [ -n "$ctl" ] && echo "UBLKIT-VM-EXIT $1" >"$ctl"
  sync
  poweroff -f
  sleep 10
}
die() { log "FATAL: $*"; finish 255; }

mkdir -p /proc /sys /dev /lower /rw /newroot /tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# Read the command line now: /proc moves into the new root later.
job=""
for w in $(cat /proc/cmdline); do
  case "$w" in ublkit.job=*) job="$(echo "${w#ublkit.job=}" | base64 -d)" ;; esac
done
kver="$(uname -r)"

# Modules the root file system needs, in dependency order (decompressed at build time).
while read -r m args; do
  [ -n "$m" ] || continue
  insmod "/modules/$m.ko" $args || log "insmod $m failed"
done </modules/order

# virtio-serial ports by name (no udev): /dev/virtio-ports/<name> (devtmpfs: seen in every mount of it)
mkdir -p /dev/virtio-ports
for p in /sys/class/virtio-ports/*; do
  [ -f "$p/name" ] && ln -sf "../${p##*/}" "/dev/virtio-ports/$(cat "$p/name")"
done
[ -e /dev/virtio-ports/ublkit.ctl ] && ctl=/dev/virtio-ports/ublkit.ctl

# Root: host / over 9p read-only, tmpfs upper layer (guest writes vanish at power-off).
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /lower ||
  die "cannot mount the host root over 9p"
mount -t tmpfs -o mode=0755 upper /rw
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot ||
  die "cannot mount the overlay root"

[ -n "$job" ] && [ -f "/newroot$job/config" ] || die "no job (ublkit.job=$job) visible in the guest"
UBLKIT_CWD=/; UBLKIT_MODDIR=""; UBLKIT_NSHARES=0
. "/newroot$job/config"

# Writable 9p shares, mounted at their host paths (no cache: the host sees writes at once).
i=0
while [ "$i" -lt "$UBLKIT_NSHARES" ]; do
  eval "sp=\$UBLKIT_SHARE_$i"
  mkdir -p "/newroot$sp"
  mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 "share$i" "/newroot$sp" ||
    die "cannot mount share $sp"
  i=$((i + 1))
done

# proc, sysfs and devtmpfs for the new root: fresh mounts (same thing as moving them; the
# initramfs keeps its own for PID 1).
R=/newroot
mkdir -p $R/proc $R/sys $R/dev
mount -t proc proc $R/proc
mount -t sysfs sysfs $R/sys
mount -t devtmpfs devtmpfs $R/dev
mkdir -p $R/dev/pts $R/dev/shm $R/run $R/sys/kernel/config
mount -t devpts -o gid=5,mode=0620,ptmxmode=0666 devpts $R/dev/pts
mount -t tmpfs -o mode=1777,nosuid,nodev shm $R/dev/shm
mount -t tmpfs -o mode=0755,nosuid,nodev run $R/run
mkdir -p $R/run/lock $R/run/user
mount -t debugfs debugfs $R/sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs $R/sys/kernel/tracing 2>/dev/null
mount -t configfs configfs $R/sys/kernel/config 2>/dev/null
mount -t cgroup2 cgroup2 $R/sys/fs/cgroup 2>/dev/null
ln -sfn /proc/self/fd $R/dev/fd
ln -sfn /proc/self/fd/0 $R/dev/stdin
ln -sfn /proc/self/fd/1 $R/dev/stdout
ln -sfn /proc/self/fd/2 $R/dev/stderr
[ -e $R/dev/ptmx ] || ln -sfn pts/ptmx $R/dev/ptmx

# modprobe in the guest: the kernel's modules (with depmod output) live in the host's cache,
# visible through 9p; link them where kmod looks.
if [ -n "$UBLKIT_MODDIR" ] && [ ! -e "$R/usr/lib/modules/$kver" ] && [ ! -e "$R/lib/modules/$kver" ]; then
  mkdir -p $R/usr/lib/modules
  ln -s "$UBLKIT_MODDIR" "$R/usr/lib/modules/$kver"
fi
# The kernel's own module requests (mount -t ext4, ...) run its modprobe helper from the initramfs
# root, not the chroot: point it at a wrapper that runs the host's kmod modprobe in the new root.
mkdir -p /sbin
printf '#!/bin/sh\nexec /bin/chroot /newroot /sbin/modprobe "$@"\n' >/sbin/modprobe-chroot
chmod 755 /sbin/modprobe-chroot
echo /sbin/modprobe-chroot >$R/proc/sys/kernel/modprobe

hostname ublkit-vm
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up

# Relay the job's stdout/stderr through FIFOs: a virtio port can be open only once at a time, and
# jobs do reopen /dev/stdout (/proc/self/fd/1); a FIFO takes that, and is not a tty (no colours,
# no progress bars, like CI).
out=/dev/virtio-ports/ublkit.out
err=/dev/virtio-ports/ublkit.err
[ -e "$out" ] || out=/dev/console
[ -e "$err" ] || err=/dev/console
mkfifo /job.out /job.err
cat /job.out >"$out" & rout=$!
cat /job.err >"$err" & rerr=$!

log "starting job (kernel $kver, cwd $UBLKIT_CWD)"
[ -n "$ctl" ] && echo "UBLKIT-VM-START $(cut -d' ' -f1 /proc/uptime)" >"$ctl"
chroot $R /usr/bin/env -i HOME=/root USER=root LOGNAME=root SHELL=/bin/sh LANG=C.UTF-8 \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  /bin/sh -c '. "$1/env.sh" && cd "$2" && exec /bin/sh "$1/job.sh"' ublkit-job "$job" "$UBLKIT_CWD" \
  </dev/null >/job.out 2>/job.err
rc=$?

# The job is over: kill what it left behind (daemons would hold the FIFOs open), let the relays
# drain, but not forever.
for p in /proc/[0-9]*; do
  p=${p#/proc/}
  case "$p" in 1|"$rout"|"$rerr") ;; *) kill -9 "$p" 2>/dev/null ;; esac
done
( sleep 3; kill $rout $rerr 2>/dev/null ) & wd=$!
wait $rout $rerr 2>/dev/null
kill $wd 2>/dev/null
finish "$rc"
