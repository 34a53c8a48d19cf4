// The nbd group of bench/run.mjs: ublkit -t nbd against the kernel's own NBD client on one nbdkit memory server.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * kernel-nbd-cN: `nbd-client -C N` (the guest kernel's nbd driver, one hardware queue per connection).
 * ublkit-nbd-cN: one serving thread with N connections; ublkit-nbd-q2: two threads, one connection each.
 */
export function nbdSystems() {
  return [
    { name: 'kernel-nbd-c1', impl: 'kernel', target: 'nbd', mode: 'c1', setup: 'nbd-client', conns: 1 },
    { name: 'ublkit-nbd-c1', impl: 'ublkit', target: 'nbd', mode: 'c1', conns: 1, queues: 1 },
    { name: 'kernel-nbd-c2', impl: 'kernel', target: 'nbd', mode: 'c2', setup: 'nbd-client', conns: 2 },
    { name: 'ublkit-nbd-c2', impl: 'ublkit', target: 'nbd', mode: 'c2', conns: 2, queues: 1 },
    { name: 'ublkit-nbd-q2', impl: 'ublkit', target: 'nbd', mode: 'c2', conns: 1, queues: 2 },
  ].map((s) => ({ ...s, optIn: true, flags: [] }));
}

function run(cmd, args, timeout = 60_000) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout, stdio: ['ignore', 'pipe', 'pipe'] });
  return { status: r.status ?? 1, out: `${r.stdout || ''}${r.stderr || ''}${r.error ? String(r.error) : ''}`.trim() };
}

function waitUntil(pred, ms) {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) return false;
    spawnSync('sleep', ['0.05']);
  }
  return true;
}

const alive = (pid) => { try { process.kill(pid, 0); return true; } catch { return false; } };

/**
 * Starts the shared nbdkit memory server (one flat allocation; the first kernel client writes it in
 * full, so no client's reads meet untouched pages) and loads the nbd driver if it is not there;
 * registers their teardown in `cleanups`.
 */
export function startNbd(sizeBytes, cleanups, log) {
  for (const p of ['nbdkit', 'nbd-client']) {
    if (run('sh', ['-c', `command -v ${p}`]).status !== 0) throw new Error(`${p} is not installed`);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ublkit-bench-nbd-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const sock = path.join(dir, 'sock');
  const pidFile = path.join(dir, 'pid');
  const r = run('nbdkit', ['--unix', sock, '-P', pidFile, 'memory', `size=${sizeBytes}`, 'allocator=malloc'], 120_000);
  if (r.status !== 0 || !waitUntil(() => fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8').trim() !== '', 30_000)) {
    throw new Error(`nbdkit memory did not start: ${r.out.split('\n').slice(-2).join(' | ')}`);
  }
  const pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
  cleanups.push(() => {
    try { process.kill(pid, 'SIGTERM'); } catch { return; }
    if (!waitUntil(() => !alive(pid), 10_000)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  });
  if (!fs.existsSync('/sys/module/nbd')) {
    const m = run('modprobe', ['nbd', 'nbds_max=4']);
    if (m.status !== 0) throw new Error(`modprobe nbd: ${m.out}`);
    cleanups.push(() => { if (run('rmmod', ['nbd']).status !== 0) log('rmmod nbd failed'); });
  }
  return { sock, pid, size: sizeBytes, log, cmd: `nbdkit --unix ${sock} memory size=${sizeBytes} allocator=malloc`, nextNbd: 0, filled: false };
}

/** The kernel client on the next free /dev/nbdN; ublkit systems go through run.mjs's own add. */
export function setupKernelNbd(s, srv, cleanups) {
  let dev;
  for (; srv.nextNbd < 16 && !dev; srv.nextNbd++) {
    const n = srv.nextNbd;
    if (!fs.existsSync(`/dev/nbd${n}`)) break;
    const pid = (() => { try { return fs.readFileSync(`/sys/block/nbd${n}/pid`, 'utf8').trim(); } catch { return ''; } })();
    if (!pid) dev = `/dev/nbd${n}`;
  }
  if (!dev) throw new Error('no free /dev/nbdN');
  const args = ['-unix', srv.sock, dev, '-connections', String(s.conns)];
  const r = run('nbd-client', args);
  if (r.status !== 0) throw new Error(`nbd-client ${args.join(' ')}: ${r.out.split('\n').slice(-2).join(' | ')}`);
  cleanups.push(() => run('nbd-client', ['-d', dev]));
  const base = path.basename(dev);
  if (!waitUntil(() => Number(fs.readFileSync(`/sys/block/${base}/size`, 'utf8')) > 0, 10_000)) throw new Error(`${dev} has no size`);
  s.dev = dev;
  s.cmd = `nbd-client ${args.join(' ')}`;
  if (!srv.filled) {
    srv.log(`writing the nbdkit memory export in full through ${dev}`);
    const f = run('fio', ['--name=fill', `--filename=${dev}`, '--rw=write', '--bs=1M', `--size=${srv.size}`, '--ioengine=io_uring',
      '--direct=1', '--iodepth=8'], 900_000);
    if (f.status !== 0) throw new Error(`filling the nbdkit export through ${dev}: ${f.out.split('\n').slice(-2).join(' | ')}`);
    srv.filled = true;
  }
}

/** ublkit add's arguments for an nbd system. */
export function ublkitNbdArgs(s, srv, depth) {
  return ['add', '-t', 'nbd', '-q', String(s.queues), '-d', String(depth), '--unix', srv.sock, ...(s.conns > 1 ? ['--connections', String(s.conns)] : [])];
}

/** Busy CPU seconds of the whole machine (all CPUs): the kernel client works in kernel threads. */
export function systemBusySeconds(clkTck) {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return (f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] || 0)) / clkTck;
}

function median(a) {
  const b = a.filter((x) => Number.isFinite(x)).sort((x, y) => x - y);
  if (!b.length) return undefined;
  const m = b.length >> 1;
  return b.length % 2 ? b[m] : (b[m - 1] + b[m]) / 2;
}

const f1 = (x) => (x === undefined ? '-' : x.toFixed(1));
const fx = (x) => (x === undefined ? '-' : `${x.toFixed(2)}x`);

/** ublkit against the kernel client per job and connection count, with CPU per IO, geomean and worst job. */
export function nbdReport(results, systems, jobs) {
  const names = new Set(systems.map((s) => s.name));
  const pairs = [['ublkit-nbd-c1', 'kernel-nbd-c1'], ['ublkit-nbd-c2', 'kernel-nbd-c2'], ['ublkit-nbd-q2', 'kernel-nbd-c2']]
    .filter(([u, k]) => names.has(u) && names.has(k));
  if (!pairs.length) return '';
  const cell = (sys, job) => results.find((r) => r.system === sys && r.job === job)?.reps.filter((x) => !x.error) ?? [];
  const med = (reps, k) => median(reps.map((x) => x[k]));
  const rows = [['job', 'ublkit', 'kernel', 'ublkit MiB/s', 'kernel MiB/s', 'ublkit/kernel', 'sys us/IO u|k', 'nbdkit us/IO u|k', 'ublkit srv us/IO']];
  const summary = [];
  for (const [u, k] of pairs) {
    const ratios = [];
    for (const j of jobs) {
      const a = cell(u, j.name);
      const b = cell(k, j.name);
      const ma = med(a, 'mibps');
      const mb = med(b, 'mibps');
      const ratio = ma !== undefined && mb ? ma / mb : undefined;
      if (ratio !== undefined) ratios.push({ job: j.name, ratio });
      rows.push([j.name, u, k, f1(ma), f1(mb), fx(ratio), `${f1(med(a, 'sysUsPerIo'))}|${f1(med(b, 'sysUsPerIo'))}`,
        `${f1(med(a, 'nbdkitUsPerIo'))}|${f1(med(b, 'nbdkitUsPerIo'))}`, f1(med(a, 'srvUsPerIo'))]);
    }
    if (ratios.length) {
      const geo = Math.exp(ratios.reduce((s, r) => s + Math.log(r.ratio), 0) / ratios.length);
      const worst = ratios.reduce((w, r) => (r.ratio < w.ratio ? r : w));
      summary.push(`${u} / ${k}: geometric mean ${fx(geo)}, worst ${worst.job} ${fx(worst.ratio)}`);
    }
  }
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  const text = rows.map((r) => r.map((c, i) => (i < 3 ? String(c).padEnd(w[i]) : String(c).padStart(w[i]))).join('  ').trimEnd());
  return `nbd: ublkit -t nbd vs the kernel nbd client, same nbdkit memory server (medians; sys = whole-machine busy CPU incl. fio; `
    + `u|k = ublkit|kernel)\n${text.join('\n')}\n${summary.join('\n')}\n`;
}
