#!/usr/bin/env bash
# Where one request's time goes: a QD1 stage breakdown from kernel tracepoints (bpftrace).
#
#   tools/perf/stages.sh SERVER_COMM "ADD COMMAND" "DEL COMMAND" [FIO ARGS...]
#
# e.g. in the VM (node tools/vm/run.mjs -- bash tools/perf/stages.sh node \
#        "node dist/src/cli/ublkit.cjs add -t loop -q 1 /run/bf" "node dist/src/cli/ublkit.cjs del -a")
# or with kublk as the server: SERVER_COMM kublk and its add/del commands.
#
# The device must come up as /dev/ublkb0 (none may exist before). fio runs one request at a time (--iodepth=1 unless the
# FIO ARGS say otherwise), so one set of timestamps is enough: with more in flight the stages of
# different requests mix and the histograms mean nothing. Stages, in microseconds:
#   a_issue_to_cqe      block layer hands the request to ublk -> the server's FETCH CQE is posted
#   b_cqe_to_submit     that CQE -> the server submits its backing IO (or, with no backing IO,
#                       its COMMIT)
#   c_backing_io        backing IO submitted -> its CQE
#   d_io_to_complete    backing IO CQE -> the block layer completes the client's request
#   e_total             issue -> complete
# Needs root, bpftrace and fio. Tracing slows the guest: compare servers in the same run only.
set -euo pipefail
[ $# -ge 3 ] || { sed -n '2,9p' "$0" >&2; exit 2; }
comm=$1 add=$2 del=$3
shift 3
fio_args=("$@")
[ ${#fio_args[@]} -gt 0 ] || fio_args=(--rw=randread --bs=4k)
command -v bpftrace >/dev/null || { echo "stages.sh: bpftrace is not installed" >&2; exit 1; }

[ ! -e /dev/ublkb0 ] || { echo "stages.sh: /dev/ublkb0 exists already: delete it first" >&2; exit 1; }
$add >/dev/null
trap '$del >/dev/null 2>&1 || true' EXIT
for _ in $(seq 50); do [ -b /dev/ublkb0 ] && break; sleep 0.1; done
[ -b /dev/ublkb0 ] || { echo "stages.sh: /dev/ublkb0 did not appear" >&2; exit 1; }
dev=$(( (16#$(stat -c %t /dev/ublkb0) << 20) | 16#$(stat -c %T /dev/ublkb0) ))
# Enabling a tracepoint rewrites kernel text; under QEMU TCG doing that while io_uring runs on
# another CPU has crashed the guest. Let udev's probe IO finish first, so the queue is idle.
udevadm settle 2>/dev/null || true
sleep 1

out=$(mktemp)
# Opcodes: READ_FIXED 4, WRITE_FIXED 5, READ 22, WRITE 23, URING_CMD 46.
bpftrace -e '
tracepoint:block:block_rq_issue /args->dev == '"$dev"'/ { @t0 = nsecs; @t1 = (uint64)0; @t2 = (uint64)0; @t3 = (uint64)0; }
tracepoint:io_uring:io_uring_submit_req /comm == "'"$comm"'"/ {
  @op[args->req] = args->opcode + 1;
  $io = args->opcode == 4 || args->opcode == 5 || args->opcode == 22 || args->opcode == 23;
  if (@t1 && !@t2 && ($io || args->opcode == 46)) {
    @b_cqe_to_submit = hist((nsecs - @t1) / 1000);
    if ($io) { @t2 = nsecs; }
  }
}
tracepoint:io_uring:io_uring_complete /@op[args->req] && @t0/ {
  $o = @op[args->req] - 1;
  if ($o == 46 && !@t1) { @a_issue_to_cqe = hist((nsecs - @t0) / 1000); @t1 = nsecs; }
  if ($o != 46 && @t2 && !@t3) { @c_backing_io = hist((nsecs - @t2) / 1000); @t3 = nsecs; }
}
tracepoint:block:block_rq_complete /args->dev == '"$dev"' && @t0/ {
  if (@t3) { @d_io_to_complete = hist((nsecs - @t3) / 1000); }
  @e_total = hist((nsecs - @t0) / 1000);
  @t0 = (uint64)0;
}
END { clear(@op); clear(@t0); clear(@t1); clear(@t2); clear(@t3); }' >"$out" 2>&1 &
bt=$!
trap '$del >/dev/null 2>&1 || true; kill -INT $bt 2>/dev/null || true' EXIT
sleep 3
fio --name=stages --filename=/dev/ublkb0 --ioengine=io_uring --direct=1 --iodepth=1 --time_based \
  --runtime=3 "${fio_args[@]}" --output-format=terse | awk -F';' '{printf "fio: %d IOPS, mean completion latency %.0f us\n", $8 + $49, $40 + $81}'
kill -INT $bt
wait $bt || true
$del >/dev/null
trap - EXIT
grep -v '^Attaching' "$out"
rm -f "$out"
