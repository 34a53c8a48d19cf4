#!/usr/bin/env bash
# Host programs the kernel's ublk selftests call, from the machine's OWN Debian release (bookworm),
# never from sid: the guest runs the host's / (read-only), so what is installed here is what the
# test scripts find in the VM. Idempotent and quiet when all is present; needs root to install.
#   fio, mkfs.ext4, lsblk/blockdev/taskset, sfdisk (part_01). bpftrace (generic_02, generic_12) must be
# newer than bookworm's: tools/kselftest/bpftrace.sh fetches trixie's into the cache.
# udevadm is not installed: without udev in the guest, `udevadm settle` would only wait for nothing;
# the scripts ignore its absence.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
log() { printf '[kselftest-setup] %s\n' "$*" >&2; }

declare -A need=(
  [fio]=fio
  [mkfs.ext4]=e2fsprogs
  [lsblk]=util-linux
  [blockdev]=util-linux
  [taskset]=util-linux
  [sfdisk]=fdisk
  [gcc]=gcc
)
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
((${#missing[@]})) || { log "host programs: present"; exit 0; }
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)

codename="$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")"
if [[ "$codename" != bookworm ]]; then
  log "host release is '${codename:-unknown}', not bookworm: install ${missing[*]} yourself"; exit 1
fi
if [[ $(id -u) -ne 0 ]]; then
  log "missing packages: ${missing[*]} (need root to apt-get install them)"; exit 1
fi
log "installing from bookworm: ${missing[*]}"
if ! apt-cache show "${missing[@]}" >/dev/null 2>&1 \
   || [[ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mtime -1 2>/dev/null | head -1)" ]]; then
  apt-get update -qq </dev/null
fi
# -t bookworm: only the host's own release, whatever else a sources list may hold
apt-get install -y -qq --no-install-recommends -t bookworm "${missing[@]}" </dev/null >/dev/null
log "installed: ${missing[*]}"
