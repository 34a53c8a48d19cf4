#!/usr/bin/env bash
# Prepare this machine to run ublkit tests in a QEMU (TCG) guest.
#  1. host packages from the machine's own Debian release (bookworm) via apt-get;
#  2. the guest kernels the suite runs on, each fetched with a private apt config by
#     tools/vm/fetch-kernel.sh: Debian sid (7.2), trixie (6.12), trixie-backports (7.3); or only
#     those in UBLKIT_VM_SUITES (space or comma separated) / UBLKIT_VM_SUITE.
# Idempotent, non-interactive (works with CI=true and no stdin), fast when all is there.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { printf '[vm-setup] %s\n' "$*" >&2; }

# host command -> bookworm package that provides it
declare -A need=(
  [qemu-system-x86_64]=qemu-system-x86
  [/bin/busybox]=busybox-static
  [cpio]=cpio
  [xz]=xz-utils
  [fio]=fio
  [mkfs.ext4]=e2fsprogs
  [mkfs.xfs]=xfsprogs
  [losetup]=mount
  [kmod]=kmod
  [depmod]=kmod
  [dpkg-deb]=dpkg
  # NBD servers and tools for the nbd target's tests (the guest sees the host's /)
  [nbdkit]=nbdkit
  [nbdinfo]=libnbd-bin
  [qemu-nbd]=qemu-utils
  [nbd-server]=nbd-server
  [nbd-client]=nbd-client
  # a zoned file system for the zoned target's tests
  [mkfs.f2fs]=f2fs-tools
  [mkfs.btrfs]=btrfs-progs
)
missing=()
for cmd in "${!need[@]}"; do
  if [[ "$cmd" == /* ]]; then [[ -x "$cmd" ]] && continue
  else command -v "$cmd" >/dev/null 2>&1 && continue; fi
  missing+=("${need[$cmd]}")
done
# /bin/busybox must be the static one (the initramfs has no libc)
if ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed'; then
  missing+=(busybox-static)
fi

if ((${#missing[@]})); then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  if [[ $(id -u) -ne 0 ]]; then
    log "missing packages: ${missing[*]} (need root to apt-get install them)"; exit 1
  fi
  log "installing from the host's own release: ${missing[*]}"
  # apt-get update once, unless the lists are fresh (< 1 day) and know the packages
  if ! apt-cache show "${missing[@]}" >/dev/null 2>&1 \
     || [[ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mtime -1 2>/dev/null | head -1)" ]]; then
    apt-get update -qq </dev/null
  fi
  # --no-install-recommends keeps qemu from pulling a desktop; bookworm packages only
  apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
else
  log "host packages: present"
fi

suites="${UBLKIT_VM_SUITES:-${UBLKIT_VM_SUITE:-sid trixie trixie-backports}}"
for suite in ${suites//,/ }; do
  UBLKIT_VM_SUITE="$suite" bash "$here/fetch-kernel.sh"
done

# Ceph for `npm run test:ceph` (a single-node cluster the test starts inside the guest) and qemu's
# rbd driver for qemu-nbd. Installing starts no daemon on the host and writes no /etc/ceph/ceph.conf;
# UBLKIT_VM_NO_CEPH=1 leaves them out (the Ceph test then skips).
if [[ -z "${UBLKIT_VM_NO_CEPH:-}" ]]; then
  ceph_missing=()
  for pkg in ceph-mon ceph-mgr ceph-osd ceph-common qemu-block-extra; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || ceph_missing+=("$pkg")
  done
  if ((${#ceph_missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
      log "missing packages for the Ceph test: ${ceph_missing[*]} (need root; the Ceph test skips without them)"
    else
      log "installing from the host's own release: ${ceph_missing[*]}"
      apt-cache show "${ceph_missing[@]}" >/dev/null 2>&1 || apt-get update -qq </dev/null
      apt-get install -y -qq --no-install-recommends "${ceph_missing[@]}" </dev/null >/dev/null
    fi
  fi
fi
