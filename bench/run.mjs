#!/usr/bin/env node
// ublkit benchmark: fio (io_uring, O_DIRECT) against ublkit and the kernel selftest server kublk in
// every data-transfer mode, next to kernel baselines (loop driver, null_blk, the bare backing file).
//
//   npm run bench                      # = npm run build && node bench/run.mjs
//   node bench/run.mjs --quick         # 1 repetition, copy + zero-copy only, short jobs
//   node bench/run.mjs --only 'loop' --reps 5 --runtime 8
//
// Without /dev/ublk-control on this machine the whole run happens in one QEMU guest
// (tools/vm/run.mjs), results shared back. See bench/README.md for what is measured and how to read it.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs as nodeParseArgs } from 'node:util';
import { MODES, summarize, addRatios, table, ratioMatrix, svg } from './report.mjs';
import { nbdSystems, startNbd, setupKernelNbd, ublkitNbdArgs, systemBusySeconds, nbdReport } from './nbd.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(ROOT, 'dist/src/cli/ublkit.cjs');
const CACHE = process.env.UBLKIT_CACHE
  || path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'ublkit');

const JOBS = [
  { name: 'randread-4k', title: '4 KiB random read, QD64', rw: 'randread', bs: '4k', qd: 64 },
  { name: 'randwrite-4k', title: '4 KiB random write, QD64', rw: 'randwrite', bs: '4k', qd: 64 },
  { name: 'read-1m', title: '1 MiB sequential read, QD8', rw: 'read', bs: '1M', qd: 8 },
  { name: 'write-1m', title: '1 MiB sequential write, QD8', rw: 'write', bs: '1M', qd: 8 },
  // Latency jobs, run only when --jobs names them: one request at a time shows the per-request
  // round trip (client -> kernel -> server -> backing IO -> commit) that deep queues hide.
  { name: 'randread-4k-qd1', title: '4 KiB random read, QD1', rw: 'randread', bs: '4k', qd: 1, optIn: true },
  { name: 'randwrite-4k-qd1', title: '4 KiB random write, QD1', rw: 'randwrite', bs: '4k', qd: 1, optIn: true },
];
const QUEUES = 1;
const DEPTH = 128;

const USAGE = `usage: node bench/run.mjs [options]
  --quick            1 repetition, modes copy and zero-copy only (validation run)
  --warmup SEC       unrecorded mixed fio pass per device before measuring (default 2; 0 = none)
  --max-host-busy N  VM runs on a shared host: before each fio job wait (up to 20 s) until other host
                     processes use less than N cores, and redo a job they disturbed (up to 2 more
                     tries); default 0.5, 0 = off
  --wait-budget MIN  total minutes the run may spend on such waits and redos (default 15)
  --only REGEX       systems whose name matches (e.g. 'loop', 'null-(copy|zero)', 'kernel|file');
                     the nbd group (ublkit -t nbd vs the kernel nbd client on nbdkit) runs only
                     when the pattern matches 'nbd' (--only nbd)
  --baseline DIR     also measure the ublkit checkout in DIR (built) as base-* systems beside
                     ublkit-*: an A/B of two versions in one VM boot, interleaved
  --jobs REGEX       fio jobs whose name matches (${JOBS.map((j) => j.name).join(', ')}); the
                     -qd1 latency jobs run only when the pattern needs their suffix
                     (--jobs qd1, --jobs randread-4k-qd1)
  --runtime SEC      measured seconds per fio job (default 3)
  --ramp SEC         fio ramp_time before measuring (default 1)
  --reps N           repetitions, interleaved across systems (default 3)
  --size SIZE        backing file size in the guest's tmpfs (default 1G)
  --out DIR          results directory (default <repo>/bench-results)
  --timeout SEC      VM time limit (default: from the estimate, generous)
  --no-vm            run here even without /dev/ublk-control (fails without ublk)
  --list             print the systems and jobs that would run, then exit`;

const OPTIONS = {
  quick: { type: 'boolean', default: false }, only: { type: 'string' }, jobs: { type: 'string' }, runtime: { type: 'string' },
  ramp: { type: 'string' }, warmup: { type: 'string' }, 'max-host-busy': { type: 'string' }, 'wait-budget': { type: 'string' },
  reps: { type: 'string' }, size: { type: 'string', default: '1G' }, out: { type: 'string', default: path.join(ROOT, 'bench-results') },
  timeout: { type: 'string' }, 'no-vm': { type: 'boolean', default: false }, 'in-vm': { type: 'boolean', default: false },
  kublk: { type: 'string' }, baseline: { type: 'string' }, list: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' },
};

function parseArgs(argv) {
  let v;
  try {
    ({ values: v } = nodeParseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false }));
  } catch (e) {
    throw new Error(e.message.split('. ')[0]); // node's first sentence names the option; the rest is advice
  }
  if (v.help) { console.log(USAGE); process.exit(0); }
  const num = (x) => (x === undefined ? undefined : Number(x));
  const o = {
    quick: v.quick, only: v.only ?? null, jobs: v.jobs ?? null, runtime: num(v.runtime), ramp: num(v.ramp), reps: num(v.reps),
    warmup: num(v.warmup), maxHostBusy: num(v['max-host-busy']), waitBudget: num(v['wait-budget']), size: v.size,
    out: path.resolve(v.out), timeout: num(v.timeout) ?? null, noVm: v['no-vm'], inVm: v['in-vm'], list: v.list,
    kublk: v.kublk ?? null, baseline: v.baseline === undefined ? undefined : path.resolve(v.baseline),
  };
  o.runtime ??= 3;
  o.ramp ??= 1;
  o.warmup ??= 2;
  o.maxHostBusy ??= 0.5;
  o.waitBudget ??= 15;
  o.reps ??= o.quick ? 1 : 3;
  for (const k of ['runtime', 'ramp', 'reps', 'warmup', 'maxHostBusy', 'waitBudget']) {
    if (!Number.isFinite(o[k]) || o[k] < (['runtime', 'reps'].includes(k) ? 1 : 0)) throw new Error(`--${k}: bad value`);
  }
  o.kublk ??= path.join(CACHE, 'kublk/kublk');
  return o;
}

function parseSize(s) {
  const m = /^(\d+)([kmgt]?)i?b?$/i.exec(String(s).trim());
  if (!m) throw new Error(`bad size ${s}`);
  return Number(m[1]) * 1024 ** ' kmgt'.indexOf((m[2] || ' ').toLowerCase());
}

/** Every system, in table order: per target, the kernel baseline(s), then ublkit/kublk pairs per mode. */
function allSystems(kublkPath, baseline) {
  const s = [];
  // --baseline DIR: another ublkit checkout (built) measured as `base-*` beside each ublkit system,
  // for an A/B of two versions in one VM boot.
  const impls = baseline ? ['ublkit', 'base', 'kublk'] : ['ublkit', 'kublk'];
  s.push({ name: 'null_blk', impl: 'kernel', target: 'null', mode: '-', setup: 'null_blk' });
  for (const { mode, flags } of MODES) {
    for (const impl of impls) {
      s.push({ name: `${impl}-null-${mode}`, impl, target: 'null', mode, flags });
    }
  }
  s.push({ name: 'kernel-loop', impl: 'kernel', target: 'loop', mode: 'dio', setup: 'losetup' });
  s.push({ name: 'file', impl: 'kernel', target: 'file', mode: 'O_DIRECT', setup: 'file' });
  for (const { mode, flags } of MODES) {
    for (const impl of impls) {
      s.push({ name: `${impl}-loop-${mode}`, impl, target: 'loop', mode, flags });
    }
  }
  for (const x of nbdSystems()) {
    s.push(x);
    if (baseline && x.impl === 'ublkit') s.push({ ...x, name: x.name.replace(/^ublkit/, 'base'), impl: 'base' });
  }
  for (const x of s) if (x.impl === 'kublk') x.bin = kublkPath;
  for (const x of s) if (x.impl === 'base') Object.assign(x, { impl: 'ublkit', cli: path.join(baseline, 'dist/src/cli/ublkit.cjs') });
  return s;
}

function selectSystems(o) {
  let s = allSystems(o.kublk, o.baseline);
  if (o.only) {
    const re = new RegExp(o.only);
    // Opt-in groups (nbd) need the pattern to name the group: --only ublkit stays what it was.
    s = s.filter((x) => re.test(x.name) && (!x.optIn || re.test(x.target)));
  } else {
    s = s.filter((x) => !x.optIn);
  }
  if (!o.only && o.quick) {
    s = s.filter((x) => x.impl === 'kernel' || x.mode === 'copy' || x.mode === 'zero-copy');
  }
  return s;
}

function selectJobs(o) {
  if (!o.jobs) return JOBS.filter((j) => !j.optIn);
  const re = new RegExp(o.jobs);
  // An opt-in job needs its suffix to match: --jobs randread-4k stays one job, --jobs qd1 picks both.
  return JOBS.filter((j) => re.test(j.name) && !(j.optIn && re.test(j.name.replace(/-qd1$/, ''))));
}

/** Seconds a run takes, roughly, under TCG (fio start-up ~0.8 s, device setup ~4 s, boot + prefill ~40 s). */
function estimate(o, systems, jobs) {
  return systems.length * jobs.length * o.reps * (o.runtime + o.ramp + 0.8)
    + systems.length * (4 + (o.warmup ? o.warmup + 0.8 : 0)) + 40;
}

// ---------------------------------------------------------------------------------------------
// Host side: no ublk here -> the same command in one VM boot.

async function runViaVm(o, argv) {
  if (!fs.existsSync(CLI)) { console.error(`[bench] ${CLI} missing: run npm run build (or npm run bench)`); return 2; }
  const systems = selectSystems(o);
  if (systems.some((s) => s.impl === 'kublk') && !fs.existsSync(o.kublk)) {
    console.error('[bench] building the reference kublk (tools/kublk/build.sh)');
    const r = spawnSync('bash', [path.join(ROOT, 'tools/kublk/build.sh')], { stdio: 'inherit' });
    if (r.status !== 0) console.error('[bench] kublk build failed: kublk rows will be skipped');
  }
  const est = estimate(o, systems, selectJobs(o));
  const timeout = o.timeout || Math.ceil(est * 1.6 + 600 + (o.maxHostBusy > 0 ? o.waitBudget * 60 : 0));
  console.error(`[bench] no /dev/ublk-control here: running in the QEMU guest (estimate ~${Math.round(est / 60)} min, VM limit ${Math.round(timeout / 60)} min)`);
  const { runInVm, SetupError } = await import(path.join(ROOT, 'tools/vm/run.mjs'));
  fs.mkdirSync(o.out, { recursive: true });
  const sampler = hostLoadSampler(path.join(o.out, HOST_LOAD));
  try {
    const r = await runInVm([process.execPath, path.join(ROOT, 'bench/run.mjs'), ...argv, '--in-vm', '--kublk', o.kublk, '--out', o.out],
      { timeout, shares: [o.out], cwd: ROOT, mem: process.env.UBLKIT_VM_MEM || '8G' });
    if (r.code === 124) console.error('[bench] VM timed out; partial results (completed repetitions) may be in', o.out);
    return r.code;
  } catch (e) {
    if (e instanceof SetupError) { console.error(`[bench] ${e.message}`); return 2; }
    throw e;
  } finally {
    sampler.stop();
  }
}

// The host may be shared (other VMs, builds): that steals the emulated CPUs' time and moves every
// number. Once a second the host side writes how much CPU everything *but* our QEMU used, as a
// running total; the guest reads it through the share around each fio job (hostOthers, in cores).
const HOST_LOAD = '.host-load';

function hostLoadSampler(file) {
  const hz = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
  const busy = () => {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    return (f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] || 0)) / hz; // user nice system irq softirq steal
  };
  const ours = () => { // our QEMU: a child of this process
    let t = 0;
    for (const p of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(p)) continue;
      try {
        const st = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
        const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
        if (Number(f[1]) === process.pid) t += (Number(f[11]) + Number(f[12])) / hz;
      } catch { /* gone */ }
    }
    return t;
  };
  const t0 = Date.now();
  const b0 = busy();
  const o0 = ours();
  const tick = () => {
    try {
      const others = Math.max(0, busy() - b0 - (ours() - o0));
      fs.writeFileSync(`${file}.tmp`, `${((Date.now() - t0) / 1000).toFixed(2)} ${others.toFixed(2)}\n`);
      fs.renameSync(`${file}.tmp`, file);
    } catch { /* best effort */ }
  };
  tick();
  const timer = setInterval(tick, 1000);
  return { stop() { clearInterval(timer); fs.rmSync(file, { force: true }); } };
}

/** Others' host load (cores) over at least `windowS` host seconds; undefined without a sampler. */
function othersRate(o, windowS) {
  const h0 = hostLoad(o);
  if (!h0) return undefined;
  const end = Date.now() + (windowS + 5) * 1000;
  for (;;) {
    spawnSync('sleep', ['0.25']);
    const h1 = hostLoad(o);
    if (!h1) return undefined;
    if (h1[0] - h0[0] >= windowS) return (h1[1] - h0[1]) / (h1[0] - h0[0]);
    if (Date.now() > end) return undefined;
  }
}

/**
 * Runs one measured fio job; on a shared host first waits for quiet and redoes a disturbed run
 * (keeping the least disturbed one), within the run's wait budget.
 */
function measure(job, s, o, sizeBytes, gate) {
  let best;
  let waited = 0;
  for (let attempt = 0; ; attempt++) {
    if (gate.on && gate.left > 0) {
      const t = Date.now();
      const deadline = t + 20_000;
      for (;;) {
        const rate = othersRate(o, 1.5);
        if (rate === undefined) { gate.on = false; break; }
        if (rate < o.maxHostBusy || Date.now() > deadline) break;
      }
      const w = (Date.now() - t) / 1000;
      waited += w;
      gate.left -= w;
    }
    const t1 = Date.now();
    const r = runFio(job, s, o, sizeBytes);
    r.attempt = attempt;
    if (!best || (r.hostOthers ?? 0) < (best.hostOthers ?? 0) || (best.error && !r.error)) best = r;
    const disturbed = r.hostOthers !== undefined && r.hostOthers >= o.maxHostBusy;
    if (attempt > 0) gate.left -= (Date.now() - t1) / 1000;
    if (!gate.on || !disturbed || attempt >= 2 || gate.left <= 0 || r.error) break;
    log(`  ${s.name} ${job.name}: disturbed (host busy ${r.hostOthers.toFixed(1)} cores), again`);
  }
  best.attempts = best.attempt + 1;
  delete best.attempt;
  if (waited >= 0.5) best.waitedS = Math.round(waited * 10) / 10;
  return best;
}

/** [host seconds, others' CPU seconds] from the sampler, or undefined when there is none. */
function hostLoad(o) {
  try {
    const [t, c] = fs.readFileSync(path.join(o.out, HOST_LOAD), 'utf8').trim().split(' ').map(Number);
    return Number.isFinite(t) && Number.isFinite(c) ? [t, c] : undefined;
  } catch { return undefined; }
}

// ---------------------------------------------------------------------------------------------
// Where ublk is: set up every system, run the interleaved matrix, tear everything down.

const log = (m) => process.stderr.write(`[bench] ${m}\n`);
const mean = (a) => a.reduce((x, y) => x + y, 0) / a.length;

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: opts.timeout ?? 120_000, maxBuffer: 64 << 20, input: opts.input });
  return { status: r.status ?? (r.signal ? 128 : 1), stdout: r.stdout || '', stderr: (r.stderr || '') + (r.error ? String(r.error) : '') };
}

/** A server that daemonizes keeps its inherited stdout open: send it to a file, not a pipe. */
function runDetached(cmd, args, timeout = 120_000) {
  const f = path.join(os.tmpdir(), `ublkit-bench-${process.pid}-${Date.now()}.log`);
  const fd = fs.openSync(f, 'w+');
  try {
    const r = spawnSync(cmd, args, { stdio: ['ignore', fd, fd], timeout });
    const out = fs.readFileSync(f, 'utf8');
    return { status: r.status ?? (r.signal ? 128 : 1), out: out + (r.error ? String(r.error) : '') };
  } finally {
    fs.closeSync(fd);
    fs.rmSync(f, { force: true });
  }
}

function waitForPath(p, ms) {
  const end = Date.now() + ms;
  while (!fs.existsSync(p)) {
    if (Date.now() > end) return false;
    spawnSync('sleep', ['0.05']);
  }
  return true;
}

const cleanups = [];
let cleaned = false;
function cleanupAll() {
  if (cleaned) return;
  cleaned = true;
  for (const c of cleanups.reverse()) {
    try { c(); } catch (e) { log(`cleanup: ${e.message}`); }
  }
}

function setupSystem(s, backing, sizeBytes, nbd) {
  if (s.setup === 'file') { s.dev = backing; return; }
  if (s.target === 'nbd') {
    nbd.srv ??= startNbd(sizeBytes, cleanups, log);
    s.nbdkitPid = nbd.srv.pid;
    if (s.setup === 'nbd-client') { setupKernelNbd(s, nbd.srv, cleanups); return; }
  }
  if (s.setup === 'losetup') {
    const r = run('losetup', ['--direct-io=on', '--show', '-f', backing]);
    if (r.status !== 0) throw new Error(`losetup: ${r.stderr.trim()}`);
    const dev = r.stdout.trim();
    cleanups.push(() => run('losetup', ['-d', dev]));
    s.dev = dev;
    const dio = (() => { try { return fs.readFileSync(`/sys/block/${path.basename(dev)}/loop/dio`, 'utf8').trim(); } catch { return '?'; } })();
    s.cmd = `losetup --direct-io=on -f ${backing}`;
    s.note = `dio=${dio}`;
    if (dio !== '1') log(`warning: ${dev} is not in direct-io mode (dio=${dio})`);
    return;
  }
  if (s.setup === 'null_blk') {
    if (fs.existsSync('/sys/module/null_blk')) throw new Error('null_blk is already loaded (not by us): skipped');
    const params = ['nr_devices=1', 'queue_mode=2', 'irqmode=0', `submit_queues=${QUEUES}`, `hw_queue_depth=${DEPTH}`,
      'gb=250', 'bs=512', 'memory_backed=0'];
    const r = run('modprobe', ['null_blk', ...params]);
    if (r.status !== 0) throw new Error(`modprobe null_blk: ${r.stderr.trim()}`);
    cleanups.push(() => run('rmmod', ['null_blk']));
    if (!waitForPath('/dev/nullb0', 10_000)) throw new Error('/dev/nullb0 did not appear');
    s.dev = '/dev/nullb0';
    s.cmd = `modprobe null_blk ${params.join(' ')}`;
    return;
  }
  // ublkit or kublk: same command-line syntax.
  const args = s.target === 'nbd' ? ublkitNbdArgs(s, nbd.srv, DEPTH) : ['add', '-t', s.target, '-q', String(QUEUES), '-d', String(DEPTH), ...s.flags];
  if (s.target === 'loop') args.push(backing);
  const [cmd, pre] = s.impl === 'ublkit' ? [process.execPath, [s.cli ?? CLI]] : [s.bin, []];
  if (s.impl === 'kublk' && !fs.existsSync(s.bin)) throw new Error(`${s.bin} missing (tools/kublk/build.sh)`);
  const r = runDetached(cmd, [...pre, ...args]);
  const m = /dev id (\d+):/.exec(r.out);
  if (m) {
    const id = m[1];
    cleanups.push(() => {
      const d = runDetached(cmd, [...pre, 'del', '-n', id], 60_000);
      if (d.status !== 0) log(`${s.name}: del -n ${id} failed: ${d.out.trim()}`);
    });
    s.id = Number(id);
  }
  if (r.status !== 0 || !m) throw new Error(`${s.impl} ${args.join(' ')} failed (${r.status}): ${r.out.trim().split('\n').slice(-3).join(' | ')}`);
  s.dev = `/dev/ublkb${s.id}`;
  s.cmd = `${s.impl} ${args.join(' ')}`;
  if (!waitForPath(s.dev, 10_000)) throw new Error(`${s.dev} did not appear`);
  s.pids = holders(`/dev/ublkc${s.id}`);
  if (!s.pids.length) log(`${s.name}: no process holds /dev/ublkc${s.id}?`);
  void sizeBytes;
}

/** Processes holding `node` (a /dev/ublkcN) open: the server, whatever its process layout. */
function holders(node) {
  const pids = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    let fds;
    try { fds = fs.readdirSync(`/proc/${p}/fd`); } catch { continue; }
    for (const f of fds) {
      let t;
      try { t = fs.readlinkSync(`/proc/${p}/fd/${f}`); } catch { continue; }
      if (t === node) { pids.push(Number(p)); break; }
    }
  }
  return pids;
}

const CLK_TCK = Number(run('getconf', ['CLK_TCK']).stdout.trim()) || 100;

/** user+system CPU seconds of these processes, all their threads (io_uring workers included). */
function cpuSeconds(pids) {
  let ticks = 0;
  for (const p of pids) {
    try {
      const st = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch { /* gone */ }
  }
  return ticks / CLK_TCK;
}

function fioArgs(job, dev, o, sizeBytes) {
  return [
    `--name=${job.name}`, `--filename=${dev}`, `--rw=${job.rw}`, `--bs=${job.bs}`, `--iodepth=${job.qd}`,
    '--ioengine=io_uring', '--direct=1', '--numjobs=1', '--time_based', `--runtime=${o.runtime}`,
    `--ramp_time=${o.ramp}`, `--size=${sizeBytes}`, '--norandommap', '--randrepeat=0',
    '--output-format=json',
  ];
}

function runFio(job, s, o, sizeBytes) {
  const { pids } = s;
  const args = fioArgs(job, s.dev, o, sizeBytes);
  const cpu0 = pids?.length ? cpuSeconds(pids) : 0;
  const kit0 = s.nbdkitPid ? cpuSeconds([s.nbdkitPid]) : 0;
  const sys0 = systemBusySeconds(CLK_TCK);
  const h0 = hostLoad(o);
  const t0 = Date.now();
  const r = run('fio', args, { timeout: (o.runtime + o.ramp + 120) * 1000 });
  const wallS = (Date.now() - t0) / 1000;
  const cpuS = pids?.length ? cpuSeconds(pids) - cpu0 : undefined;
  const kitS = s.nbdkitPid ? cpuSeconds([s.nbdkitPid]) - kit0 : undefined;
  const sysS = systemBusySeconds(CLK_TCK) - sys0;
  const h1 = hostLoad(o);
  const text = r.stdout;
  const start = text.indexOf('{');
  let j;
  try { j = JSON.parse(text.slice(start)); } catch {
    return { error: `fio exit ${r.status}: ${(r.stderr || text).trim().split('\n').slice(-3).join(' | ')}` };
  }
  const jb = j.jobs?.[0];
  if (!jb) return { error: 'fio: no job in output' };
  if (jb.error) return { error: `fio job error ${jb.error}` };
  const side = job.rw.includes('read') ? jb.read : jb.write;
  const pct = side.clat_ns?.percentile || {};
  const res = {
    iops: side.iops,
    mibps: side.bw_bytes / 2 ** 20,
    p50us: (pct['50.000000'] ?? NaN) / 1000,
    p99us: (pct['99.000000'] ?? NaN) / 1000,
    ios: side.total_ios,
  };
  if (h0 && h1 && h1[0] - h0[0] >= 1) res.hostOthers = Math.max(0, (h1[1] - h0[1]) / (h1[0] - h0[0]));
  if (cpuS !== undefined) {
    // Server CPU over the whole fio process lifetime (start-up idle, ramp, runtime, drain of the
    // last IOs); per IO with the IOs of ramp + runtime estimated from the measured ones.
    res.srvCpuPct = (100 * cpuS) / wallS;
    res.srvUsPerIo = (cpuS * 1e6) / (res.ios * ((o.runtime + o.ramp) / o.runtime));
  }
  // Whole-machine busy CPU (fio included) and the NBD server's: the only CPU figures that compare
  // a userspace client with the kernel's, whose work runs in kernel threads and interrupts.
  const ioAll = res.ios * ((o.runtime + o.ramp) / o.runtime);
  res.sysUsPerIo = (sysS * 1e6) / ioAll;
  if (kitS !== undefined) res.nbdkitUsPerIo = (kitS * 1e6) / ioAll;
  if (!(res.ios > 0)) return { error: 'fio: no IO completed', ...res };
  return res;
}

function sysInfo() {
  const cpu = (() => { try { return /model name\s*:\s*(.*)/.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1]; } catch { return undefined; } })();
  const git = run('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']).stdout.trim() || undefined;
  let kublk;
  try { kublk = fs.readFileSync(path.join(CACHE, 'kublk/.built'), 'utf8').trim(); } catch {}
  return {
    kernel: os.release(), cpu, cpus: os.cpus().length, inVm: process.env.UBLKIT_IN_VM === '1',
    node: process.version, fio: run('fio', ['--version']).stdout.trim(), git, kublk,
  };
}

function writeResults(o, doc, systems, jobs, results) {
  fs.mkdirSync(o.out, { recursive: true });
  const jsonPath = path.join(o.out, 'latest.json');
  fs.writeFileSync(`${jsonPath}.tmp`, JSON.stringify(doc, null, 1) + '\n');
  fs.renameSync(`${jsonPath}.tmp`, jsonPath);
  const sub = `${doc.meta.kernel}${doc.meta.inVm ? ' (QEMU TCG guest)' : ''}, fio io_uring direct, -q ${QUEUES} -d ${DEPTH}, `
    + `${o.runtime}s+${o.ramp}s ramp x ${doc.meta.repsDone}/${o.reps} reps, ${doc.meta.started}`;
  fs.writeFileSync(path.join(o.out, 'latest.svg'), svg(results, systems, jobs, { subtitle: sub }));
}

async function runHere(o) {
  if (process.getuid?.() !== 0) { console.error('[bench] needs root (creates block devices)'); return 2; }
  if (!fs.existsSync('/dev/ublk-control')) { console.error('[bench] no /dev/ublk-control (modprobe ublk_drv)'); return 2; }
  if (run('fio', ['--version']).status !== 0) { console.error('[bench] fio not found'); return 2; }
  if (!fs.existsSync(CLI)) { console.error(`[bench] ${CLI} missing: npm run build`); return 2; }
  const systems = selectSystems(o);
  const jobs = selectJobs(o);
  if (!systems.length || !jobs.length) { console.error('[bench] nothing selected'); return 2; }
  const sizeBytes = parseSize(o.size);

  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => { log(`${sig}: cleaning up`); cleanupAll(); process.exit(130); });
  }
  process.on('exit', cleanupAll);
  const dmesgBefore = run('dmesg', []).stdout.split('\n').length;

  // Backing file in a private tmpfs (O_DIRECT works on tmpfs since 6.6), written once in full.
  const mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'ublkit-bench-'));
  cleanups.push(() => fs.rmSync(mnt, { recursive: true, force: true }));
  const mr = run('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes + (64 << 20)}`, 'ublkit-bench', mnt]);
  if (mr.status !== 0) { console.error(`[bench] mount tmpfs: ${mr.stderr.trim()}`); return 1; }
  cleanups.push(() => { const u = run('umount', [mnt]); if (u.status !== 0) run('umount', ['-l', mnt]); });
  const backing = path.join(mnt, 'backing.img');
  // The nbd group has its own server; without a loop or file system the backing file is not read.
  const needsBacking = systems.some((s) => s.target === 'loop' || s.setup === 'file');
  log(needsBacking ? `pre-writing ${o.size} backing file ${backing}` : 'no system reads the backing file: not pre-written');
  const pw = !needsBacking ? { status: 0 } : run('fio', ['--name=prefill', `--filename=${backing}`, '--rw=write', '--bs=1M', `--size=${sizeBytes}`,
    '--ioengine=io_uring', '--direct=1', '--iodepth=8', '--output-format=json'], { timeout: 600_000 });
  if (pw.status !== 0) { console.error(`[bench] prefill failed: ${pw.stderr.trim()}`); return 1; }
  if (needsBacking) try { fs.closeSync(fs.openSync(backing, fs.constants.O_RDWR | fs.constants.O_DIRECT)); } catch (e) {
    console.error(`[bench] backing file does not take O_DIRECT (${e.code}): results would not compare`); return 1;
  }

  const meta = {
    ...sysInfo(), started: new Date().toISOString(), runtimeS: o.runtime, rampS: o.ramp, warmupS: o.warmup, reps: o.reps, repsDone: 0,
    backing: { path: backing, fs: 'tmpfs', size: sizeBytes }, deviceOptions: { queues: QUEUES, depth: DEPTH },
    fioCommon: fioArgs({ name: '<job>', rw: '<rw>', bs: '<bs>', qd: '<qd>' }, '<dev>', o, sizeBytes).slice(5),
    order: 'for each repetition, for each job, for each system',
  };
  log(`${systems.length} systems x ${jobs.length} jobs x ${o.reps} reps, ${o.runtime}s + ${o.ramp}s ramp each (~${Math.round(estimate(o, systems, jobs) / 60)} min)`);

  // Set up every device once; they stay live (idle servers cost nothing) for the interleaved matrix.
  const live = [];
  const nbd = {};
  for (const s of systems) {
    try {
      setupSystem(s, backing, sizeBytes, nbd);
      live.push(s);
      log(`up: ${s.name} -> ${s.dev}${s.note ? ` (${s.note})` : ''}`);
    } catch (e) {
      s.setupError = e.message;
      log(`SKIP ${s.name}: ${e.message}`);
    }
  }

  if (nbd.srv) meta.nbdServer = nbd.srv.cmd;

  // Unrecorded warm-up per device (mixed sizes, both directions): JIT-compiled servers (ublkit) and
  // every device's first-touch costs are paid before any measured job, for every system alike.
  if (o.warmup > 0) {
    log(`warm-up: ${o.warmup}s mixed randrw 4k-1M per device`);
    for (const s of live) {
      const w = run('fio', ['--name=warmup', `--filename=${s.dev}`, '--rw=randrw', '--bsrange=4k-1M', '--iodepth=32',
        '--ioengine=io_uring', '--direct=1', '--time_based', `--runtime=${o.warmup}`, `--size=${sizeBytes}`,
        '--norandommap', '--randrepeat=0', '--output-format=json'], { timeout: (o.warmup + 120) * 1000 });
      if (w.status !== 0) log(`warm-up ${s.name}: fio exit ${w.status}: ${w.stderr.trim().split('\n').slice(-2).join(' | ')}`);
    }
  }

  const results = [];
  for (const s of systems) for (const j of jobs) results.push({ system: s.name, job: j.name, reps: [], summary: { n: 0 } });
  const cell = (s, j) => results.find((r) => r.system === s.name && r.job === j.name);
  const doc = { meta, jobs, systems: systems.map(({ bin, flags, pids, ...rest }) => ({ ...rest, flags: flags ? flags.join(' ') : undefined })), results };
  const t0 = Date.now();
  const gate = { on: o.maxHostBusy > 0 && !!hostLoad(o), left: o.waitBudget * 60 };
  meta.hostGate = gate.on ? { maxHostBusy: o.maxHostBusy, waitBudgetMin: o.waitBudget } : undefined;
  for (let rep = 0; rep < o.reps; rep++) {
    for (const j of jobs) {
      for (const s of live) {
        const r = measure(j, s, o, sizeBytes, gate);
        r.rep = rep;
        cell(s, j).reps.push(r);
        log(`rep ${rep + 1}/${o.reps} ${j.name.padEnd(12)} ${s.name.padEnd(24)} `
          + (r.error ? `ERROR ${r.error}` : `${r.mibps.toFixed(1).padStart(8)} MiB/s ${Math.round(r.iops).toString().padStart(7)} IOPS p99 ${Math.round(r.p99us)} us`
            + (r.srvCpuPct !== undefined ? `  server ${Math.round(r.srvCpuPct)}% CPU ${r.srvUsPerIo.toFixed(1)} us/IO` : '')
            + (r.hostOthers !== undefined ? `  host busy ${r.hostOthers.toFixed(1)}` : '')
            + (r.attempts > 1 ? ` (try ${r.attempts})` : '') + (r.waitedS ? ` (waited ${r.waitedS}s)` : '')));
      }
    }
    meta.repsDone = rep + 1;
    for (const c of results) c.summary = summarize(c.reps);
    addRatios(results, systems);
    meta.elapsedS = Math.round((Date.now() - t0) / 1000);
    if (gate.on) meta.waitBudgetLeftS = Math.round(gate.left);
    writeResults(o, doc, systems, jobs, results);
  }
  for (const s of systems) {
    if (s.setupError) for (const c of results.filter((x) => x.system === s.name)) c.summary = { n: 0, error: s.setupError };
  }
  writeResults(o, doc, systems, jobs, results);

  const loads = results.flatMap((c) => c.reps.map((r) => r.hostOthers)).filter((x) => x !== undefined);
  if (loads.length) {
    meta.hostOthersMean = mean(loads);
    meta.hostOthersMax = Math.max(...loads);
    meta.hostOthersShare = loads.filter((x) => x > 0.5).length / loads.length;
  }
  cleanupAll();
  const news = run('dmesg', []).stdout.split('\n').slice(dmesgBefore - 1)
    .filter((l) => /ublk|WARNING|BUG|Oops|null_blk|hung/i.test(l) && !/ublk_drv: loading/i.test(l));
  const suspicious = news.filter((l) => /WARNING|BUG|Oops|hung|error|fail/i.test(l));
  if (suspicious.length) { meta.dmesg = suspicious.slice(0, 50); writeResults(o, doc, systems, jobs, results); }

  const shown = systems;
  console.log(`\nublkit benchmark  ${meta.kernel}${meta.inVm ? ' (QEMU TCG guest)' : ''}, ${meta.cpus} CPUs, fio ${meta.fio}, node ${meta.node}`);
  console.log(`devices: -q ${QUEUES} -d ${DEPTH}; backing: ${o.size} file in tmpfs; fio io_uring direct=1, ${o.runtime}s + ${o.ramp}s ramp, `
    + `${meta.repsDone} rep(s) interleaved; values = median over reps; latency = completion latency; `
    + `srv = server process CPU; host busy = other host load in cores (VM runs)\n`);
  console.log(table(results, shown, jobs));
  const rm = ratioMatrix(results, shown, jobs);
  if (rm) console.log(`MiB/s ratios\n${rm}\n`);
  const nr = nbdReport(results, shown, jobs);
  if (nr) console.log(nr);
  for (const s of systems.filter((x) => x.setupError)) console.log(`skipped ${s.name}: ${s.setupError}`);
  if (meta.hostOthersMean !== undefined && meta.hostOthersMax > 0.5) {
    console.log(`WARNING: the host was shared: other processes used ${meta.hostOthersMean.toFixed(2)} cores on average `
      + `(max ${meta.hostOthersMax.toFixed(1)}; ${Math.round(100 * meta.hostOthersShare)}% of the fio runs saw > 0.5) `
      + `of the host CPUs running the VM: the emulated CPUs lost time; trust medians and ratios only, check "host busy".`);
  }
  if (suspicious.length) console.log(`dmesg during the run:\n  ${suspicious.slice(0, 20).join('\n  ')}`);
  console.log(`results: ${path.join(o.out, 'latest.json')}, chart: ${path.join(o.out, 'latest.svg')} (${Math.round((Date.now() - t0) / 60000)} min)`);
  const failed = results.filter((c) => c.summary.errors).length;
  return systems.every((s) => s.setupError) ? 1 : failed ? 3 : 0;
}

async function main() {
  const argv = process.argv.slice(2);
  let o;
  try { o = parseArgs(argv); } catch (e) { console.error(`${e.message}\n${USAGE}`); return 2; }
  if (o.list) {
    const js = selectJobs(o);
    const ss = selectSystems(o);
    console.log(`jobs: ${js.map((j) => j.name).join(', ')}\nsystems (${ss.length}):`);
    for (const s of ss) console.log(`  ${s.name}`);
    console.log(`estimate: ~${Math.round(estimate(o, ss, js) / 60)} min`);
    return 0;
  }
  if (!o.inVm && !o.noVm && !fs.existsSync('/dev/ublk-control')) return runViaVm(o, argv);
  return runHere(o);
}

main().then((c) => { process.exitCode = c; }, (e) => { console.error(e); cleanupAll(); process.exitCode = 1; });
