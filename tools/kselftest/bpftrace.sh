#!/usr/bin/env bash
# A bpftrace new enough for the ublk selftests' trace scripts (generic_02, generic_12 read
# tracepoint fields as `args.dev` and cast with `(int64)`; bookworm's 0.17 knows only `args->dev`).
# Debian trixie's bpftrace and the libraries it needs (its own glibc and LLVM among them) are
# fetched with `apt-get download` under the private apt configuration, unpacked into the cache,
# and started through trixie's own dynamic loader, so nothing on the host changes.
#
#   bash tools/kselftest/bpftrace.sh      prints the directory to put first on PATH (holds `bpftrace`)
#
# Cached in ~/.cache/ublkit/bpftrace-trixie (or $UBLKIT_CACHE); about 60 MB of packages, once.
set -euo pipefail
cache="${UBLKIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ublkit}"
top="$cache/bpftrace-trixie"
log() { printf '[bpftrace] %s\n' "$*" >&2; }

if [[ ! -x "$top/bin/bpftrace" ]]; then
  # shellcheck source=../lib/private-apt.sh
  . "$(dirname "${BASH_SOURCE[0]}")/../lib/private-apt.sh"
  private_apt_init trixie "$cache/apt/trixie"
  private_apt_update "$cache/apt/trixie" "" bpftrace
  rm -rf "$top.new"
  mkdir -p "$top.new/debs" "$top.new/root" "$top.new/bin"
  # The whole run-time closure (Depends and Pre-Depends), named as apt resolves it.
  mapfile -t pkgs < <(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
    --no-breaks --no-replaces --no-enhances bpftrace | grep -v -e '^ ' -e '^<' | sort -u)
  log "fetching trixie's bpftrace with ${#pkgs[@]} packages"
  (cd "$top.new/debs" && apt-get download -qq "${pkgs[@]}" </dev/null)
  for d in "$top.new"/debs/*.deb; do dpkg-deb -x "$d" "$top.new/root"; done
  rm -rf "$top.new/debs"
  root="$top/root"
  libs="$root/usr/lib/x86_64-linux-gnu:$root/lib/x86_64-linux-gnu"
  cat >"$top.new/bin/bpftrace" <<SH
#!/bin/sh
# trixie's bpftrace with trixie's loader and libraries (written by tools/kselftest/bpftrace.sh)
exec "$root/usr/lib64/ld-linux-x86-64.so.2" --library-path "$libs" "$root/usr/bin/bpftrace" "\$@"
SH
  chmod +x "$top.new/bin/bpftrace"
  rm -rf "$top"
  mv "$top.new" "$top"
  log "$("$top/bin/bpftrace" --version) in $top"
fi
echo "$top/bin"
