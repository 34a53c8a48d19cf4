#!/usr/bin/env bash
# Fetch a guest kernel (vmlinuz + modules) from one Debian suite WITHOUT touching the host's apt setup:
# a private apt configuration under ~/.cache/ublkit/apt resolves the suite's linux-image-amd64 meta package
# to a version, `apt-get download`s the split packages linux-binary-<ver> / linux-modules-<ver>
# (or the classic linux-image-<ver> if the split ones do not exist) and `dpkg -x`es them into
# ~/.cache/ublkit/kernel/<ver>/. ~/.cache/ublkit/kernel/current (sid) or current-<suite> holds the
# version in use. tools/vm/setup.sh calls it once per suite the tests run on.
#
# Env: UBLKIT_VM_SUITE (default sid), UBLKIT_VM_KERNEL_DIR (use that unpacked tree, fetch nothing),
#      UBLKIT_VM_REFRESH=1 (re-resolve even if a kernel is cached; otherwise lists are refreshed
#      at most once a day), UBLKIT_CACHE (default ~/.cache/ublkit).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
log() { printf '[vm-kernel] %s\n' "$*" >&2; }

if [[ -n "${UBLKIT_VM_KERNEL_DIR:-}" ]]; then
  log "UBLKIT_VM_KERNEL_DIR=$UBLKIT_VM_KERNEL_DIR: fetching nothing"; exit 0
fi

cache="${UBLKIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ublkit}"
suite="${UBLKIT_VM_SUITE:-sid}"
apt_root="$cache/apt/$suite"
# pointer file: "current" for the default suite, "current-<suite>" for others (e.g. bookworm's 6.1)
ptr="current"; [[ "$suite" == sid ]] || ptr="current-$suite"
kroot="$cache/kernel"
mkdir -p "$apt_root"/{lists/partial,archives/partial,etc/sources.list.d,etc/preferences.d,debs} "$kroot"

# A kernel is already there and fresh enough: stay offline and fast.
if [[ -f "$kroot/$ptr" && -z "${UBLKIT_VM_REFRESH:-}" ]]; then
  cur="$(<"$kroot/$ptr")"
  if [[ -f "$kroot/$cur/.complete" ]]; then
    log "kernel $cur present ($kroot/$cur)"; exit 0
  fi
fi

# shellcheck source=../lib/private-apt.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/private-apt.sh"
private_apt_init "$suite" "$apt_root"
private_apt_update "$apt_root" "${UBLKIT_VM_REFRESH:-}"

# linux-image-amd64 (meta) Depends: linux-image-<ver>-amd64 | linux-image-<ver>-amd64-unsigned ...
dep="$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')"
if [[ -z "$dep" ]]; then
  log "cannot resolve linux-image-amd64 in $suite"; apt-cache policy linux-image-amd64 >&2 || true; exit 1
fi
kver="${dep#linux-image-}"        # e.g. 7.2.13+deb14-amd64
kver="${kver%-unsigned}"
log "$suite linux-image-amd64 -> $dep (kernel $kver)"

dest="$kroot/$kver"
if [[ -f "$dest/.complete" ]]; then
  echo "$kver" >"$kroot/$ptr.tmp" && mv "$kroot/$ptr.tmp" "$kroot/$ptr"
  log "kernel $kver present"; exit 0
fi

have() { apt-cache show "$1" >/dev/null 2>&1; }
pkgs=()
if have "linux-binary-$kver" && have "linux-modules-$kver"; then
  pkgs=("linux-binary-$kver" "linux-modules-$kver")
  # base files: config, System.map, modules.builtin* (lets modprobe accept built-in names)
  have "linux-base-$kver" && pkgs+=("linux-base-$kver")
else
  # the meta package's own target, possibly with its (split) dependencies
  pkgs=("$dep")
  while read -r d; do
    case "$d" in linux-binary-*|linux-modules-*|linux-base-[0-9]*) pkgs+=("$d") ;; esac
  done < <(apt-cache depends "$dep" 2>/dev/null | awk '/Depends:/ {print $2}')
fi
log "downloading: ${pkgs[*]}"
rm -rf "$apt_root/debs" && mkdir -p "$apt_root/debs"
(cd "$apt_root/debs" && apt-get download -qq "${pkgs[@]}" </dev/null)

rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
for deb in "$apt_root"/debs/*.deb; do
  log "unpacking $(basename "$deb")"
  dpkg -x "$deb" "$dest.tmp"
done
rm -rf "$apt_root/debs"

# Normalise: usr/lib/modules/<ver>/vmlinuz (split packages) or boot/vmlinuz-<ver> (classic).
moddir=""
for d in "$dest.tmp/usr/lib/modules/$kver" "$dest.tmp/lib/modules/$kver"; do [[ -d $d ]] && moddir=$d && break; done
[[ -n "$moddir" ]] || { log "no modules directory for $kver in the packages"; exit 1; }
vmlinuz=""
for f in "$moddir/vmlinuz" "$dest.tmp/boot/vmlinuz-$kver"; do [[ -f $f ]] && vmlinuz=$f && break; done
[[ -n "$vmlinuz" ]] || { log "no vmlinuz for $kver in the packages"; exit 1; }
[[ -n "$(find "$moddir" -name 'ublk_drv.ko*' -print -quit)" ]] || { log "kernel $kver has no ublk_drv module"; exit 1; }
ln -sfn "${vmlinuz#$dest.tmp/}" "$dest.tmp/vmlinuz"
ln -sfn "${moddir#$dest.tmp/}" "$dest.tmp/modules"
# Module dependency data so `modprobe` works in the guest (depmod from the host's kmod).
if command -v depmod >/dev/null; then
  depmod -b "${moddir%/lib/modules/$kver}" "$kver" || log "depmod failed (insmod still works)"
fi
echo "$suite" >"$dest.tmp/.suite"
touch "$dest.tmp/.complete"
rm -rf "$dest" && mv "$dest.tmp" "$dest"
echo "$kver" >"$kroot/$ptr.tmp" && mv "$kroot/$ptr.tmp" "$kroot/$ptr"
# keep the cache small: drop older kernels fetched from the same suite
for old in "$kroot"/*/; do
  old="${old%/}"; [[ "$(basename "$old")" == "$kver" ]] && continue
  [[ "$(cat "$old/.suite" 2>/dev/null)" == "$suite" ]] || continue
  log "removing old $suite kernel $(basename "$old")"; rm -rf "$old"
done
log "kernel $kver ready in $dest ($(du -sh "$dest" | cut -f1))"
