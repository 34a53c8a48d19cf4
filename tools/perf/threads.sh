#!/usr/bin/env bash
# Where a server's CPU goes per IO, thread by thread, with no tracer running (guest side).
#
#   node tools/vm/run.mjs -- bash tools/perf/threads.sh [CASE...]
#
# CASE is TARGET:FLAGS:RW,BS,QD, FLAGS comma-separated (default: loop::randwrite,4k,64
# null:--auto_zc:write,1M,8). For each case and each server of SERVERS (default "ublkit
# ublkit-nopin kublk": ublkit as the CLI runs it, ublkit with --no_pin, the reference kublk) it
# creates the device (-q 1 -d 128) on a 1 GiB tmpfs file, warms it up, starts fio and, 2.5 s in,
# reads /proc twice RT seconds apart (default 4) in one awk each, so the reading itself costs
# next to nothing. Per fio IO it prints the whole guest's CPU split (user, sys, idle, iowait: all
# CPUs, so "= N CPUs" checks the window), IPIs, and per thread of the server and of fio: user and
# sys time, run time, time spent runnable but waiting for a CPU (schedstat), and timeslices.
# Perf or bpftrace in this TCG guest halve the throughput and fake idle time; this does not.
#
# Env: SERVERS, RT, KUBLK (default ~/.cache/ublkit/kublk/kublk, tools/kublk/build.sh).
set -uo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
U="node $here/dist/src/cli/ublkit.cjs"
K=${KUBLK:-$HOME/.cache/ublkit/kublk/kublk}
RT=${RT:-4}
SERVERS=${SERVERS:-ublkit ublkit-nopin kublk}
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(loop::randwrite,4k,64 null:--auto_zc:write,1M,8)
[ -e /dev/ublk-control ] || { echo "threads.sh: no /dev/ublk-control (run it in the VM)" >&2; exit 1; }
work=$(mktemp -d /tmp/threads.XXXXXX)
mount -t tmpfs -o size=1200M none "$work"
trap 'umount "$work" 2>/dev/null; rmdir "$work"' EXIT
dd if=/dev/zero of="$work/f" bs=1M count=1024 status=none

# One process per reading: cpu line, IPIs, the disk's completed sectors, "T tid comm utime stime"
# and "S tid run wait slices" for every thread of the server ($2) and of fio ($3).
snap() {
  awk 'FNR==1 && FILENAME=="/proc/stat" { print "CPU", $2, $4, $5, $6, $7, $8; nextfile }
       FILENAME=="/proc/interrupts" { if ($1 ~ /^(RES|CAL|TLB|LOC):$/) { s=0; for (i=2; i<NF && $i ~ /^[0-9]+$/; i++) s+=$i; print "IRQ", $1, s }; next }
       FILENAME ~ /^\/sys\/block/ { print "DISK", $3+$7; nextfile }
       FILENAME ~ /\/schedstat$/ { split(FILENAME, p, "/"); print "S", p[5], $1, $2, $3; nextfile }
       FILENAME ~ /\/stat$/ { l=$0; sub(/^[0-9]+ \(/, "", l); c=substr(l, 1, index(l, ") ")-1); r=substr(l, index(l, ") ")+2);
                              split(r, f, " "); split(FILENAME, p, "/"); print "T", p[5], c, f[12], f[13]; nextfile }' \
    /proc/stat /proc/interrupts "/sys/block/$1/stat" /proc/"$2"/task/*/stat /proc/"$3"/task/*/stat \
    /proc/"$2"/task/*/schedstat /proc/"$3"/task/*/schedstat 2>/dev/null
}

report() { # A-snapshot, B-snapshot, block size in bytes, title
  { echo "$1" | sed 's/^/A /'; echo "$2" | sed 's/^/B /'; } | awk -v bs="$3" -v title="$4" -v rt="$RT" '
    $2=="CPU" { for (i=3; i<=8; i++) c[$1,i]=$i }
    $2=="IRQ" { irq[$1,$3]=$4; names[$3]=1 }
    $2=="DISK" { d[$1]=$3 }
    $2=="T" { ut[$1,$3]=$5; st[$1,$3]=$6; comm[$3]=$4; seen[$1,$3]=1 }
    $2=="S" { run[$1,$3]=$4; wt[$1,$3]=$5; sl[$1,$3]=$6 }
    END {
      n=(d["B"]-d["A"])*512/bs; if (n<=0) { print "== " title ": no IO in the window"; exit }
      printf "== %s: %.0f IOPS\n", title, n/rt
      tot=0; for (i=3; i<=8; i++) { x[i]=c["B",i]-c["A",i]; tot+=x[i] }
      printf "  guest us/IO: user %.1f sys %.1f idle %.1f iowait %.1f irq+softirq %.1f (%.2f CPUs)\n",
        x[3]*1e4/n, x[4]*1e4/n, x[5]*1e4/n, x[6]*1e4/n, (x[7]+x[8])*1e4/n, tot/100/rt
      line="  IPIs/IO:"; for (q in names) line=line sprintf(" %s %.2f", q, (irq["B",q]-irq["A",q])/n); print line
      for (t in comm) {
        if (!seen["A",t] || !seen["B",t]) { printf "  %-7s %-16s started or ended in the window\n", t, comm[t]; continue }
        u=ut["B",t]-ut["A",t]; s=st["B",t]-st["A",t]; r=(run["B",t]-run["A",t])/1000/n
        if (u+s == 0 && r < 0.5) continue
        printf "  %-7s %-16s user %7.1f sys %7.1f | run %7.1f runq-wait %7.1f us/IO, %.2f slices/IO\n",
          t, comm[t], u*1e4/n, s*1e4/n, r, (wt["B",t]-wt["A",t])/1000/n, (sl["B",t]-sl["A",t])/n
      }
    }'
}

for c in "${cases[@]}"; do
  IFS=: read -r tgt flags job <<<"$c"
  IFS=, read -r rw bs qd <<<"$job"
  flags=${flags//,/ }
  arg=""; [ "$tgt" = loop ] && arg="$work/f"
  for srv in $SERVERS; do
    case $srv in
      ublkit) bin=$U; extra="" ;;
      ublkit-nopin) bin=$U; extra="--no_pin" ;;
      kublk) bin=$K; extra="" ;;
      *) echo "threads.sh: unknown server $srv" >&2; exit 2 ;;
    esac
    # shellcheck disable=SC2086
    out=$($bin add -t "$tgt" -q 1 -d 128 $flags $extra $arg 2>&1)
    id=$(echo "$out" | sed -n 's/^dev id \([0-9]*\):.*/\1/p')
    pid=$(echo "$out" | sed -n 's/.*daemon pid \([0-9]*\).*/\1/p')
    [ -n "$id" ] || { echo "threads.sh: $srv add failed: $out" >&2; continue; }
    dev=/dev/ublkb$id
    fio --name=warm --filename="$dev" --rw=randrw --bs=64k --iodepth=16 --ioengine=io_uring --direct=1 \
      --time_based --runtime=2 --size=512M >/dev/null 2>&1
    fio --name=m --filename="$dev" --rw="$rw" --bs="$bs" --iodepth="$qd" --ioengine=io_uring --direct=1 \
      --time_based --runtime=$((RT + 4)) --size=512M --norandommap >/dev/null 2>&1 &
    fp=$!
    sleep 2.5
    fpid=$(pgrep -n -x fio)
    a=$(snap "ublkb$id" "$pid" "$fpid")
    sleep "$RT"
    b=$(snap "ublkb$id" "$pid" "$fpid")
    wait $fp
    report "$a" "$b" "$(numfmt --from=iec "${bs^^}")" "$srv $tgt $flags $rw $bs QD$qd"
    $bin del -n "$id" >/dev/null 2>&1
  done
done
