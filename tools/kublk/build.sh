#!/usr/bin/env bash
# Build the kernel's ublk selftest server `kublk` as the reference implementation that
# bench/run.mjs measures ublkit against. Nothing it downloads or builds is part of the repo:
#
#   ~/.cache/ublkit/kublk-src/   the selftest sources + the few uapi headers they need (7.2)
#   ~/.cache/ublkit/liburing/    sid's liburing-dev + liburing2, dpkg -x'ed (bookworm's is too old)
#   ~/.cache/ublkit/kublk/kublk  the binary (liburing linked statically; runs on the host's libc)
#   ~/.cache/ublkit/kublk-src-7.3/, kublk-7.3/kublk   the same from 7.3 (UBLKIT_KUBLK_KERNEL=7.3)
#
# Debian packages come through a PRIVATE apt configuration for sid (the one tools/vm/fetch-kernel.sh
# keeps under ~/.cache/ublkit/apt/sid, created here the same way if it is missing); the host's apt
# state is never touched. Idempotent: a second run with everything cached does nothing.
#
# Env: UBLKIT_CACHE (default ~/.cache/ublkit), UBLKIT_KUBLK_KERNEL (7.2, default: linux-source-7.2
#      from sid; 7.3: linux-source-7.3 from trixie-backports), UBLKIT_KUBLK_REBUILD=1 (rebuild even
#      if the binary is there). liburing always comes from sid.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
log() { printf '[kublk] %s\n' "$*" >&2; }

cache="${UBLKIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ublkit}"
kernel="${UBLKIT_KUBLK_KERNEL:-7.2}"
case "$kernel" in
  7.2) src_suite=sid; src="$cache/kublk-src"; out="$cache/kublk" ;;
  7.3) src_suite=trixie-backports; src="$cache/kublk-src-7.3"; out="$cache/kublk-7.3" ;;
  *) log "UBLKIT_KUBLK_KERNEL=$kernel: use 7.2 or 7.3"; exit 1 ;;
esac
srcpkg="linux-source-$kernel"
uring="$cache/liburing"
stamp="$out/.built"

if [[ -x "$out/kublk" && -f "$stamp" && -z "${UBLKIT_KUBLK_REBUILD:-}" ]]; then
  log "present: $out/kublk ($(cat "$stamp"))"; exit 0
fi

for t in gcc apt-get dpkg-deb tar xz; do
  command -v "$t" >/dev/null || { log "missing host tool: $t"; exit 1; }
done

# --- private apt config (shared with tools/vm/fetch-kernel.sh) ----------------------------------
# shellcheck source=../lib/private-apt.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/private-apt.sh"
ensure_apt() { # suite probe-package
  private_apt_init "$1" "$cache/apt/$1"
  private_apt_update "$cache/apt/$1" "" "$2"
}

dl=""
cleanup() { [[ -n "$dl" ]] && rm -rf "$dl"; }
trap cleanup EXIT
download() { # pkg... -> .deb files in $dl
  [[ -n "$dl" ]] || dl="$(mktemp -d "$cache/.kublk-dl.XXXXXX")"
  (cd "$dl" && apt-get download -qq "$@" </dev/null)
}

mkdir -p "$cache"

# --- liburing (sid) ------------------------------------------------------------------------------
if [[ ! -f "$uring/.complete" ]]; then
  ensure_apt sid liburing-dev
  log "downloading liburing-dev + liburing2 (sid)"
  download liburing-dev liburing2
  rm -rf "$uring.tmp" && mkdir -p "$uring.tmp"
  for d in "$dl"/liburing*.deb; do dpkg -x "$d" "$uring.tmp"; done
  dpkg-deb -f "$dl"/liburing-dev_*.deb Version >"$uring.tmp/.complete"
  rm -rf "$uring" && mv "$uring.tmp" "$uring"
fi
libdir="$uring/usr/lib/x86_64-linux-gnu"
[[ -f "$libdir/liburing.a" || -e "$libdir/liburing.so" ]] || { log "no liburing library in $uring"; exit 1; }
log "liburing $(cat "$uring/.complete")"

# --- selftest sources from the kernel source package --------------------------------------------
if [[ ! -f "$src/.complete" ]]; then
  ensure_apt "$src_suite" "$srcpkg"
  log "downloading $srcpkg ($(apt-cache show "$srcpkg" | awk '/^Version:/ {print $2; exit}'), ~160 MB)"
  download "$srcpkg"
  deb="$(ls "$dl"/linux-source-*.deb | head -1)"
  ver="$(dpkg-deb -f "$deb" Version)"
  tarball="$(dpkg-deb -c "$deb" | awk '{print $NF}' | grep -E '/usr/src/linux-source-[^/]*\.tar\.(xz|gz|bz2|zst)$' | head -1)"
  [[ -n "$tarball" ]] || { log "no source tarball inside $deb"; exit 1; }
  mkdir -p "$dl/x"
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$dl/x" "$tarball"
  rm -f "$deb"
  top="$(basename "${tarball%.tar.*}")"
  log "extracting tools/testing/selftests/ublk and uapi headers from $(basename "$tarball")"
  tar -xaf "$dl/x/$tarball" -C "$dl/x" --wildcards \
    "$top/tools/testing/selftests/ublk/*" "$top/include/uapi/linux/*"
  rm -rf "$src.tmp" && mkdir -p "$src.tmp/include/linux"
  cp -a "$dl/x/$top/tools/testing/selftests/ublk" "$src.tmp/ublk"
  # The uapi headers kublk needs newer than bookworm's /usr/include/linux: they go first on the
  # include path; everything else (linux/types.h, ...) still comes from the host.
  u="$dl/x/$top/include/uapi/linux"
  for h in ublk_cmd.h io_uring.h fs.h mount.h fscrypt.h time_types.h; do
    [[ -f "$u/$h" ]] && cp "$u/$h" "$src.tmp/include/linux/"
  done
  [[ -d "$u/io_uring" ]] && cp -a "$u/io_uring" "$src.tmp/include/linux/"
  # Headers the host lacks altogether (e.g. linux/blkdev.h, wanted by liburing 2.15): searched
  # after the system directories, so they only fill gaps.
  mkdir -p "$src.tmp/include-after" && cp -a "$u" "$src.tmp/include-after/linux"
  echo "$srcpkg $ver" >"$src.tmp/.complete"
  rm -rf "$src" && mv "$src.tmp" "$src"
fi
log "sources: $(cat "$src/.complete")"

# --- build ---------------------------------------------------------------------------------------
mapfile -t files < <(cd "$src/ublk" && ls *.c | grep -v '^metadata_size\.c$')
log "gcc: ${files[*]}"
mkdir -p "$out"
if [[ -f "$libdir/liburing.a" ]]; then
  uring_link=("$libdir/liburing.a")
else
  uring_link=(-L"$libdir" -Wl,-rpath,"$libdir" -luring)
fi
(cd "$src/ublk" && gcc -O3 -Wall -Wno-unused-result -D_GNU_SOURCE \
  -I "$src/include" -I "$uring/usr/include" -idirafter "$src/include-after" \
  -o "$out/kublk.tmp" "${files[@]}" "${uring_link[@]}" -lpthread -lm)
mv "$out/kublk.tmp" "$out/kublk"
echo "$(cat "$src/.complete"), liburing $(cat "$uring/.complete")" >"$stamp"
log "built $out/kublk ($(cat "$stamp"))"
