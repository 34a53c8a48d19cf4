#!/usr/bin/env bash
# Runs INSIDE the VM (started by tools/kselftest/run.mjs through tools/vm/run.mjs).
#
#   bash guest.sh RESULTS_DIR PER_TEST_TIMEOUT PLAN_FILE
#
# PLAN_FILE: one line per test run, "<server> <workdir> <script>" (workdir = a copy of the selftest
# folder with ./kublk and ./metadata_size beside the scripts). Each script runs directly
# (`cd workdir && ./test_x.sh`) in its own process group; the whole group is killed after
# PER_TEST_TIMEOUT s (saving `ps` and the device states to the log first); its stdout+stderr, then
# the runner's cleanup and the kernel messages it caused, go to RESULTS_DIR/<server>/<test>.log.
# One line "<test>\t<exit code>\t<verdict>\t<seconds>" per test is appended to
# RESULTS_DIR/<server>/results.tsv as soon as the test ends, so a VM that dies keeps what it did.
# Verdicts: PASS (0), SKIP (4), TIMEOUT (killed after PER_TEST_TIMEOUT s), HUNG (killed once every
# device had been DEAD for 60 s: a server or `del` that never finishes), FAIL (anything else).
set -u
results=$1 per_test_timeout=$2 plan=$3
hung_after=${UBLKIT_KSELFTEST_HUNG_AFTER:-60}
# /dev/null is opened once, here. kublk's `del` waits for the daemon's close of /dev/ublkcN with
# inotify on /dev and a 10 s poll timeout that restarts on every event there; a runner that opened
# and closed /dev/null (each `2>/dev/null`) every half second kept that wait going for ever when
# the close it waits for had already happened (10 of 52 kublk tests "hung" so in one full run).
exec 9<>/dev/null
ref_kublk=${UBLKIT_KSELFTEST_REF_KUBLK:-}
# UBLKIT_KSELFTEST_PATH: programs newer than the host's (tools/kselftest/bpftrace.sh), found first
export PATH=${UBLKIT_KSELFTEST_PATH:+$UBLKIT_KSELFTEST_PATH:}/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
unset TMPDIR # the scripts put their files in ./ublktest-dir of the work copy (the guest's tmpfs)

now() { date +%s.%N; }
say() { printf '%s\n' "$*"; }

# "pid state ppid comm" of a process, from /proc/PID/stat (never /proc/PID/cmdline, which blocks
# on the mmap lock of a process stuck in I/O).
proc_stat() {
  local line rest comm
  { read -r line <"/proc/$1/stat"; } 2>&9 || return 1
  comm=${line#*(}; comm=${comm%)*}; rest=${line##*) }
  set -- "$1" $rest
  printf '%s %s %s %s\n' "$1" "$2" "$3" "${comm// /_}"
}

# "pid comm" of every process of the guest except this shell, its parent (init) and kernel threads.
user_pids() {
  local p pid st ppid comm
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    [[ $p -eq $$ || $p -eq 1 || $p -eq 2 || $p -eq $PPID || $p -eq $BASHPID ]] && continue
    read -r pid st ppid comm < <(proc_stat "$p") || continue
    [[ $ppid -eq 2 ]] && continue # kernel thread
    printf '%s %s\n' "$p" "$comm"
  done
}

# Pids of processes that have /dev/ublkc* open (the servers).
ublkc_holders() {
  local f
  for f in /proc/[0-9]*/fd/*; do
    [[ $(readlink "$f" 2>&9) == /dev/ublkc* ]] && { f=${f#/proc/}; echo "${f%%/*}"; }
  done | sort -u
}

# Leftover processes the tests start: fio, bpftrace, dd, servers (kublk, node running ublkit).
# Killed by pid; this shell and the VM's init are never touched. Only /proc/PID/comm is read:
# /proc/PID/cmdline blocks on the mmap lock of a process stuck in I/O.
kill_strays() {
  local pid comm killed=()
  while read -r pid comm; do
    case "$comm" in
      # ld-linux-x86-64: the fetched bpftrace runs under trixie's loader, which names the process
      fio|bpftrace|ld-linux-x86-64|dd|kublk|node|ublkit|sleep|timeout|mkfs.ext4|mount|umount|sfdisk|udevadm|taskset) ;;
      *) continue ;;
    esac
    kill -9 "$pid" 2>&9 && killed+=("$pid:$comm")
  done < <(user_pids)
  ((${#killed[@]})) && say "killed strays: ${killed[*]}"
}

# Run "$@" in the background for at most $1 seconds, output to a file, never waiting on it for
# longer: `del` or even `list` can sit in the kernel (uninterruptible) while a wedged server holds
# I/O, and `wait` or a pipe would hang with it. Prints the output; returns 0 if it ended in time.
bounded() {
  local secs=$1 pid i out; shift
  out=$(mktemp /run/kselftest-out.XXXXXX)
  "$@" >"$out" 2>&1 <&9 9>&- &
  pid=$!
  for ((i = 0; i < secs * 2; i++)); do
    if ! kill -0 "$pid" 2>&9 || [[ $(proc_stat "$pid" | cut -d' ' -f2) == Z ]]; then
      wait "$pid"; cat "$out"; rm -f "$out"; return 0
    fi
    sleep 0.5
  done
  cat "$out"; rm -f "$out"
  say "(still running after ${secs}s, left behind: $*)"
  return 1
}

dstate_stacks() { # kernel stacks of processes in uninterruptible sleep (a hung ublk I/O shows here)
  local p pid st ppid comm
  for p in /proc/[0-9]*; do
    read -r pid st ppid comm < <(proc_stat "${p#/proc/}") || continue
    [[ $st == D ]] || continue
    say "D-state $pid $comm:"
    head -8 "$p/stack" 2>&9 | sed 's/^/    /'
  done
}

server_threads() { # every thread of the servers (ublkc holders, kublk, node): where each one sleeps
  local pid t comm
  for pid in $( { ublkc_holders; for t in /proc/[0-9]*; do read -r comm <"$t/comm" 2>&9 && [[ $comm == kublk || $comm == node ]] && echo "${t#/proc/}"; done; } | sort -un); do
    for t in /proc/"$pid"/task/*; do
      read -r comm <"$t/comm" 2>&9 || continue
      say "thread $pid/${t##*/} $comm: $(cat "$t/wchan" 2>&9)"
      head -6 "$t/stack" 2>&9 | sed 's/^/    /'
    done
  done
}

snapshot() { # work why: what a timed-out or hung test was doing
  say "=== kselftest runner: $2: state before the kill ==="
  bounded 15 "${ref_kublk:-$1/kublk}" list | grep -E 'dev id|state|still running' | head -20
  bounded 15 ps -eo pid,ppid,pgid,stat,etimes,wchan:28,comm --sort=pid | awk '$2 != 2 && $1 != 2' | tail -40
  dstate_stacks
  server_threads | head -150
}

# True when there is at least one ublk device and every one is DEAD (stopped): kept so for long,
# a server or `del` is stuck and the test waits for it for ever.
all_dead() {
  local out
  out=$(bounded 5 "${ref_kublk:-$1/kublk}" list 2>&9) || return 1
  local n=$(grep -c '^dev id' <<<"$out") d=$(grep -c 'state DEAD' <<<"$out")
  ((n > 0 && n == d))
}

cpu_idle() { # percent of CPU time idle over half a second
  local a b
  read -r _ a1 a2 a3 a4 a5 _ </proc/stat; sleep 0.5; read -r _ b1 b2 b3 b4 b5 _ </proc/stat
  a=$(( (b1 + b2 + b3 + b4 + b5) - (a1 + a2 + a3 + a4 + a5) )); b=$(( (b4 + b5) - (a4 + a5) ))
  ((a > 0)) && echo $((100 * b / a)) || echo 100
}

# A test that writes to /dev/ublkbN after the device is gone (fio lays files out, dd creates
# them) leaves a REGULAR file there; devtmpfs then gives the next device 0 no node, and every later
# test silently runs on that file (ENOSPC, loop mounts). Remove such files and say so.
stray_dev_files() {
  local f
  for f in /dev/ublkb* /dev/ublkc*; do
    [[ -e $f && ! -b $f && ! -c $f ]] || continue
    say "WARNING: $f was a regular file (written after its device was gone): removed"
    rm -f "$f"
  done
}

cleanup() { # server workdir
  local server=$1 work=$2 left pids m
  say "=== kselftest runner: cleanup ==="
  bounded 30 "$work/kublk" del -a | tail -5
  if [[ ${PIPESTATUS[0]} -ne 0 ]]; then
    pids=$(ublkc_holders)
    say "'$server del -a' still running after 30 s; killing the servers: $(echo $pids)"
    dstate_stacks
    [[ -n $pids ]] && kill -9 $pids 2>&9
    sleep 2
  fi
  left=$(ls /dev/ublkc* 2>&9)
  if [[ -n $left ]]; then
    pids=$(ublkc_holders)
    say "devices left after '$server del -a': $(echo $left); server pids: $(echo $pids)"
    [[ -n $pids ]] && kill -9 $pids 2>&9
    sleep 1
    if [[ -n $ref_kublk && -x $ref_kublk ]]; then
      bounded 40 "$ref_kublk" del -a || say "reference 'kublk del -a' still running after 40 s"
    fi
    left=$(ls /dev/ublkc* 2>&9)
    [[ -n $left ]] && { say "STILL LEFT: $(echo $left)"; dstate_stacks; }
  fi
  kill_strays
  stray_dev_files
  # mounts: ublk block devices, anything under the work copy, hugetlbfs (shmemzc)
  while read -r m; do
    [[ -n $m ]] || continue
    umount -l "$m" 2>&9 && say "unmounted $m"
  done < <(awk -v w="$work" '$1 ~ /^\/dev\/ublkb/ || index($2, w) == 1 || $3 == "hugetlbfs" {print $2}' /proc/mounts | sort -r)
  [[ $(cat /proc/sys/vm/nr_hugepages) != 0 ]] && echo 0 >/proc/sys/vm/nr_hugepages
  rm -rf "$work/ublktest-dir"
  stray_dev_files
}

stray_dev_files
say "kselftest guest: kernel $(uname -r), $(nproc) CPUs, per-test timeout ${per_test_timeout}s"
seen_servers=" "
while read -r server work script; do
  [[ -n $server ]] || continue
  test=${script#test_}; test=${test%.sh}
  mkdir -p "$results/$server"
  if [[ $seen_servers != *" $server "* ]]; then
    seen_servers+="$server "
    f0=$(now)
    ( cd "$work" && ./kublk features ) >"$results/$server/features.txt" 2>&1
    say "[$server] './kublk features' took $(awk -v a="$f0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }') s (the cost of one CLI call here)"
  fi
  log=$results/$server/$test.log
  kmsg_before=$(dmesg 2>&9 | wc -l)
  t0=$(now)
  # The script gets its own process group (job control: pgid = its pid) in this session: polled,
  # and on timeout its whole process group is killed after a snapshot (device states, processes,
  # D-state stacks) goes to the log. Not a session of its own (setsid), which the kselftest
  # harness does not do either: that way the suite's stress tests ran twice as slow here, the
  # test's CLI calls starved against the server daemons, which set up sessions of their own
  # (stress_04 with ublkit: 121 s in its own session, 50 s in a process group).
  : >"$log" # O_APPEND below: the snapshot and the test may write at the same time
  set -m
  ( cd "$work" && exec "./$script" ) >>"$log" 2>&1 <&9 9>&- &
  pgid=$!
  set +m
  start=$SECONDS verdict= rc= dead_since= next_check=$((SECONDS + 20))
  while :; do
    st=$(proc_stat "$pgid" | cut -d' ' -f2)
    if [[ -z $st || $st == Z ]]; then wait "$pgid"; rc=$?; break; fi
    el=$((SECONDS - start))
    # Every 20 s: devices that all stay DEAD for HUNG_AFTER s mean a server or `del` that never ends
    # (the test would only reach the timeout): cut the test short as HUNG. Not more often: `list`
    # opens /dev/ublk-control, an event in /dev that restarts kublk del's 10 s wait (see fd 9).
    if [[ -z $verdict && $SECONDS -ge $next_check ]]; then
      next_check=$((SECONDS + 20))
      if all_dead "$work"; then dead_since=${dead_since:-$SECONDS}; else dead_since=; fi
      if [[ -n $dead_since && $((SECONDS - dead_since)) -ge $hung_after ]]; then
        verdict=HUNG
        snapshot "$work" "HUNG: every device DEAD for ${hung_after}s with the test still waiting" >>"$log" 2>&1
        kill -TERM -- "-$pgid" 2>&9
        start=$((SECONDS - per_test_timeout)) # the KILL and unkillable steps below follow as for a timeout
        continue
      fi
    fi
    if [[ -z $verdict && $el -ge $per_test_timeout ]]; then
      verdict=TIMEOUT
      snapshot "$work" "TIMEOUT after ${per_test_timeout}s" >>"$log" 2>&1
      kill -TERM -- "-$pgid" 2>&9
    elif [[ -n $verdict && $el -ge $((per_test_timeout + 10)) ]]; then
      kill -KILL -- "-$pgid" 2>&9
      if [[ $el -ge $((per_test_timeout + 40)) ]]; then
        rc=-1; echo "=== kselftest runner: the script is unkillable; going on ===" >>"$log"; break
      fi
    fi
    sleep 0.5
  done
  t1=$(now)
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  kill -9 -- "-$pgid" 2>&9 # the test's own background jobs, if any survived
  if [[ -n $verdict ]]; then :
  elif [[ $rc -eq 0 ]]; then verdict=PASS
  elif [[ $rc -eq 4 ]]; then verdict=SKIP
  else verdict=FAIL
  fi
  {
    say "=== kselftest runner: exit $rc ($verdict) after ${secs}s ==="
    cleanup "$server" "$work"
    say "=== kselftest runner: after cleanup: CPU idle $(cpu_idle)%, load $(cut -d' ' -f1-3 /proc/loadavg), $(awk '/MemAvailable/ {print int($2/1024)}' /proc/meminfo) MiB available ==="
    say "=== kernel messages during the test ==="
    dmesg 2>&9 | tail -n +"$((kmsg_before + 1))"
  } >>"$log" 2>&1
  printf '%s\t%s\t%s\t%s\n' "$test" "$rc" "$verdict" "$secs" >>"$results/$server/results.tsv"
  printf '[%s] %-14s %-7s %6ss\n' "$server" "$test" "$verdict" "$secs"
done <"$plan"
dmesg >"$results/dmesg-$(basename "$plan" .plan).log" 2>&1
exit 0
