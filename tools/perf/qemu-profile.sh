#!/usr/bin/env bash
# Where the emulator's host CPU goes while a guest job runs: perf on the QEMU process, from the host.
#
#   tools/perf/qemu-profile.sh OUTDIR -- GUEST COMMAND...
#
# Boots the test VM (tools/vm/run.mjs) with OUTDIR shared writable at the same path and runs the
# guest command. The guest opens a profiling window by appending "NAME SECONDS" to OUTDIR/marks at
# the start of a steady state (e.g. two seconds into a fio run); the host then records QEMU for
# SECONDS into OUTDIR/NAME.data and, at the end, prints per window the host CPU used (in cores)
# and the share of the TCG costs that grow with a process's working set after a context switch:
# translation-block hash lookups (qht_lookup_custom: the per-CPU jump cache is flushed with the
# soft TLB) and soft-TLB refills. Divide the cores by the guest job's IOPS for host CPU per IO.
#
# Needs root on the host (perf on another process) and perf. Windows are taken one at a time, in
# the order the guest asks for them.
set -euo pipefail
[ $# -ge 3 ] && [ "$2" = -- ] || { sed -n '2,13p' "$0" >&2; exit 2; }
out=$(realpath "$1")
shift 2
command -v perf >/dev/null || { echo "qemu-profile.sh: perf is not installed on the host" >&2; exit 1; }
mkdir -p "$out"
: > "$out/marks"
here=$(cd "$(dirname "$0")/../.." && pwd)
hz=999

watch_marks() {
  local done=0 line name secs pid
  while :; do
    line=$(sed -n "$((done + 1))p" "$out/marks" 2>/dev/null || true)
    if [ -z "$line" ]; then sleep 0.1; continue; fi
    done=$((done + 1))
    read -r name secs <<<"$line"
    pid=$(pgrep -n -P "$runner" -f qemu-system || true)
    [ -n "$pid" ] || continue
    perf record -F $hz -p "$pid" -o "$out/$name.data" -- sleep "${secs:-4}" >/dev/null 2>&1 || true
    echo "$name ${secs:-4}" >> "$out/windows"
  done
}
: > "$out/windows"

node "$here/tools/vm/run.mjs" --share "$out" -- "$@" &
runner=$!
watch_marks &
watcher=$!
trap 'kill $watcher 2>/dev/null || true' EXIT
status=0
wait $runner || status=$?
sleep 1
kill $watcher 2>/dev/null || true

printf '%-16s %8s %10s %10s\n' window cores tb-lookup tlb-refill
while read -r name secs; do
  f="$out/$name.data"
  [ -s "$f" ] || continue
  n=$(perf script -i "$f" 2>/dev/null | wc -l)
  report=$(perf report -i "$f" --no-children --sort sym --stdio 2>/dev/null)
  share() { awk -v re="$1" '$0 ~ re { s += $1 } END { printf "%.1f%%", s }' <<<"$report"; }
  printf '%-16s %8.2f %10s %10s\n' "$name" "$(awk -v n="$n" -v hz=$hz -v s="$secs" 'BEGIN { print n / (hz * s) }')" \
    "$(share 'qht_lookup|tb_htable_lookup')" "$(share 'tlb_set_page|tlb_fill|probe_access|translate_for_iotlb|flush_jmp_cache')"
done < "$out/windows"
exit $status
