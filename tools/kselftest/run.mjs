#!/usr/bin/env node
// Conformance runner: the kernel's own ublk selftests (tools/testing/selftests/ublk of Debian's
// linux-source-7.2, fetched at run time, never copied into this repo) against ublkit's CLI and
// against the reference `kublk` built from the same sources, in the QEMU guest of tools/vm.
//
//   npm run test:kselftest [-- --only REGEX] [--server ublkit|kublk|both] [--jobs N]
//   node tools/kselftest/run.mjs [options]     (expects `npm run build` done)
//
// Options: --only REGEX (test names, e.g. 'null|loop_0[12]'), --server (default both), --jobs N
// (VMs at once; default 1), --timeout SEC (per test, default 300), --vm-timeout SEC, --mem SIZE
// (per VM, default 4G), --out DIR (default .vm-out/kselftest), --list (print the tests and exit),
// --report (no VM: the table and lists again from results.json, i.e. the latest result of each test).
// Exit: 0 when ublkit passes every test kublk passes and skips only where kublk skips, else 1;
// 2 on a setup problem. See tools/kselftest/README.md.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs as nodeParseArgs } from 'node:util';
import { runInVm, SetupError } from '../vm/run.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const CACHE = process.env.UBLKIT_CACHE
  || path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'ublkit');
const SERVERS = ['ublkit', 'kublk'];
const USAGE = `usage: node tools/kselftest/run.mjs [--kernel 7.2|7.3] [--only REGEX] [--server ublkit|kublk|both]
       [--jobs N] [--timeout SEC] [--vm-timeout SEC] [--mem SIZE] [--out DIR] [--list] [--report]`;

// Each kernel's selftests with the reference kublk built from the same source, booted on that kernel.
const KERNELS = {
  '7.2': { vmSuite: 'sid', src: 'kublk-src', kublk: 'kublk/kublk' },
  '7.3': { vmSuite: 'trixie-backports', src: 'kublk-src-7.3', kublk: 'kublk-7.3/kublk' },
};

const OPTIONS = {
  kernel: { type: 'string', default: '7.2' },
  only: { type: 'string' }, server: { type: 'string', default: 'both' }, jobs: { type: 'string', short: 'j', default: '1' },
  timeout: { type: 'string', default: '300' }, 'vm-timeout': { type: 'string' }, mem: { type: 'string', default: '4G' },
  out: { type: 'string' }, list: { type: 'boolean', default: false },
  report: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false },
};

function parseArgs(argv) {
  let v;
  try {
    ({ values: v } = nodeParseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false }));
  } catch (e) {
    throw new Error(e.message.split('. ')[0]); // node's first sentence names the option; the rest is advice
  }
  if (!KERNELS[v.kernel]) throw new Error(`--kernel: ${Object.keys(KERNELS).join(' or ')}`);
  const o = {
    kernel: v.kernel,
    only: v.only === undefined ? null : new RegExp(v.only), server: v.server, jobs: Number(v.jobs), timeout: Number(v.timeout),
    vmTimeout: v['vm-timeout'] === undefined ? null : Number(v['vm-timeout']), mem: v.mem,
    out: path.resolve(v.out ?? path.join(ROOT, v.kernel === '7.2' ? '.vm-out/kselftest' : `.vm-out/kselftest-${v.kernel}`)),
    list: v.list, report: v.report, help: v.help,
  };
  if (!['ublkit', 'kublk', 'both'].includes(o.server)) throw new Error(`--server: ublkit, kublk or both`);
  if (!(o.jobs >= 1)) throw new Error('--jobs must be >= 1');
  if (!(o.timeout > 0)) throw new Error('--timeout must be > 0');
  return o;
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], ...opts });
  if (r.error) throw r.error;
  return r.status;
}

/** The kernel's selftest folder (and its uapi headers) plus the reference binary, via tools/kublk/build.sh. */
function ensureSources(kernel) {
  const build = path.join(ROOT, 'tools/kublk/build.sh');
  if (!fs.existsSync(build)) throw new SetupError(`${build} is missing (it fetches linux-source-${kernel} and builds kublk)`);
  if (run('bash', [build], { env: { ...process.env, UBLKIT_KUBLK_KERNEL: kernel } }) !== 0) throw new SetupError('tools/kublk/build.sh failed');
  const src = path.join(CACHE, KERNELS[kernel].src);
  const suite = path.join(src, 'ublk');
  const kublk = path.join(CACHE, KERNELS[kernel].kublk);
  for (const p of [path.join(suite, 'test_common.sh'), kublk]) {
    if (!fs.existsSync(p)) throw new SetupError(`tools/kublk/build.sh did not produce ${p}`);
  }
  let version = '?';
  try { version = fs.readFileSync(path.join(src, '.complete'), 'utf8').trim(); } catch {}
  return { src, suite, kublk, version };
}

/** metadata_size (integrity_01's helper), built from the suite's own source with its kernel's uapi headers. */
function ensureMetadataSize({ src, suite }) {
  const c = path.join(suite, 'metadata_size.c');
  const dir = path.join(CACHE, 'kselftest', path.basename(src));
  const bin = path.join(dir, 'metadata_size');
  if (fs.existsSync(bin) && fs.statSync(bin).mtimeMs >= fs.statSync(c).mtimeMs) return bin;
  fs.mkdirSync(dir, { recursive: true });
  const st = run('gcc', ['-O2', '-Wall', '-I', path.join(src, 'include'), '-idirafter', path.join(src, 'include-after'),
    '-o', `${bin}.tmp`, c]);
  if (st !== 0) throw new SetupError('gcc metadata_size.c failed');
  fs.renameSync(`${bin}.tmp`, bin);
  return bin;
}

function listTests(suite, only) {
  const key = (f) => f.replace(/\d+/g, (d) => d.padStart(6, '0'));
  return fs.readdirSync(suite).filter((f) => /^test_.+\.sh$/.test(f) && f !== 'test_common.sh')
    .sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0))
    .map((f) => ({ script: f, name: f.slice(5, -3) }))
    .filter((t) => !only || only.test(t.name) || only.test(t.script));
}

/** A work copy of the suite per server: ./kublk is the server under test, ./metadata_size beside. */
function makeWorkCopies(src, servers, metadataSize) {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'ublkit-kselftest-'));
  fs.chmodSync(base, 0o755);
  const dirs = {};
  for (const s of servers) {
    const d = path.join(base, s);
    fs.cpSync(src.suite, d, { recursive: true });
    const k = path.join(d, 'kublk');
    fs.rmSync(k, { force: true });
    if (s === 'kublk') fs.copyFileSync(src.kublk, k);
    else fs.writeFileSync(k, `#!/bin/sh\nexec ${process.execPath} ${path.join(ROOT, 'dist/src/cli/ublkit.cjs')} "$@"\n`);
    fs.chmodSync(k, 0o755);
    fs.copyFileSync(metadataSize, path.join(d, 'metadata_size'));
    fs.chmodSync(path.join(d, 'metadata_size'), 0o755);
    dirs[s] = d;
  }
  return { base, dirs };
}

function readTsv(file) {
  const m = new Map();
  if (!fs.existsSync(file)) return m;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const [test, code, verdict, secs] = line.split('\t');
    if (test && verdict) m.set(test, { code: Number(code), verdict, seconds: Number(secs) });
  }
  return m;
}

const LOG_NOISE = /^(=== kselftest runner|udevadm|.*udevadm: (command )?not found|ublk selftest: )/;
/** A one-line reason for a failure: the first line that looks like an error, else the last line. */
export function failReason(logFile, verdict = 'FAIL') {
  let text;
  try { text = fs.readFileSync(logFile, 'utf8'); } catch { return '(no log)'; }
  const own = text.split('=== kselftest runner:')[0];
  const lines = own.split('\n').map((l) => l.trim()).filter((l) => l && !LOG_NOISE.test(l));
  if (verdict === 'TIMEOUT' || verdict === 'HUNG') {
    // guest.sh saved `kublk list` before the kill: summarize the devices' states
    const snap = (text.split(`=== kselftest runner: ${verdict}`)[1] || '').split('=== kselftest runner:')[0];
    const ids = [...snap.matchAll(/dev id (\d+):/g)].map((m) => m[1]);
    const st = [...snap.matchAll(/daemon pid (-?\d+) flags \S+ state (\w+)/g)];
    const devs = ids.map((id, i) => `ublk${id} ${st[i] ? `${st[i][2]} pid ${st[i][1]}` : '?'}`).join(', ');
    return `${verdict === 'HUNG' ? 'hung (every device DEAD for 60 s)' : 'timed out'}; devices then: ${devs || 'none'}; last output: ${lines.filter((l) => !/^\[/.test(l)).pop() || '(none)'}`.slice(0, 200);
  }
  const err = lines.find((l) => /error|fail|fault|invalid|not |cannot|can't|timed? ?out|killed|abort|mismatch|bad |unexpected|denied|no such|\bverify\b/i.test(l)
    && !/: \[(PASS|SKIP|FAIL)\]$/.test(l));
  return (err || lines.filter((l) => !/: \[FAIL\]$/.test(l)).pop() || lines.pop() || '(empty log)').slice(0, 200);
}

function fmtVerdict(r) { return r ? r.verdict : '-'; }

async function main() {
  let o;
  try { o = parseArgs(process.argv.slice(2)); } catch (e) { console.error(`${e.message}\n${USAGE}`); return 2; }
  if (o.help) { console.log(USAGE); return 0; }
  const servers = o.server === 'both' ? SERVERS : [o.server];
  // The VM boots the kernel whose selftests run (tools/vm/run.mjs reads the suite from the environment).
  process.env.UBLKIT_VM_SUITE = KERNELS[o.kernel].vmSuite;

  let src;
  try {
    if (run('bash', [path.join(HERE, 'setup.sh')]) !== 0) console.error('[kselftest] setup.sh failed: some tests may SKIP or FAIL for a missing program');
    src = ensureSources(o.kernel);
  } catch (e) { console.error(`[kselftest] ${e.message}`); return 2; }
  const tests = listTests(src.suite, o.only);
  if (o.list) { for (const t of tests) console.log(t.name); return 0; }
  if (!tests.length) { console.error(`[kselftest] no test matches ${o.only}`); return 2; }
  if (servers.includes('ublkit') && !fs.existsSync(path.join(ROOT, 'dist/src/cli/ublkit.cjs'))) {
    console.error('[kselftest] dist/src/cli/ublkit.cjs is missing: npm run build'); return 2;
  }
  const jsonFile = path.join(o.out, 'results.json');
  let prev = {};
  try { prev = JSON.parse(fs.readFileSync(jsonFile, 'utf8')); } catch {}
  let res = {}, vms = [], wall = 0, nvm = 0, ublkitBuild = prev.last_run?.ublkit_build || null, merged = prev;
  if (o.report) {
    if (!prev.servers) { console.error(`[kselftest] no ${jsonFile}`); return 2; }
    for (const s of servers) {
      res[s] = {};
      for (const t of tests) {
        const r = { ...(prev.servers[s]?.[t.name] || { code: null, verdict: 'NOTRUN', seconds: 0 }) };
        const log = path.join(o.out, s, `${t.name}.log`);
        if (r.verdict !== 'PASS' && r.verdict !== 'SKIP' && fs.existsSync(log)) r.reason = failReason(log, r.verdict);
        res[s][t.name] = r;
      }
    }
  } else {
    let metadataSize;
    try { metadataSize = ensureMetadataSize(src); } catch (e) { console.error(`[kselftest] ${e.message}`); return 2; }
    // generic_02 and generic_12 need a bpftrace newer than the host's: trixie's, fetched into the cache.
    const bt = spawnSync('bash', [path.join(HERE, 'bpftrace.sh')], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
    const guestPath = bt.status === 0 ? bt.stdout.trim() : '';
    if (!guestPath) console.error('[kselftest] tools/kselftest/bpftrace.sh failed: generic_02 and generic_12 get the host\'s bpftrace, if any');

    const work = makeWorkCopies(src, servers, metadataSize);
    // what ublkit was run: the commit and when dist/ was built (others may rebuild it meanwhile)
    const git = (...a) => spawnSync('git', a, { cwd: ROOT, encoding: 'utf8' }).stdout?.trim() || null;
    ublkitBuild = servers.includes('ublkit') ? {
      head: git('rev-parse', '--short', 'HEAD'), dirty_src: !!git('status', '--porcelain', '--', 'src', 'native'),
      dist_built: fs.statSync(path.join(ROOT, 'dist/src/cli/ublkit.cjs')).mtime.toISOString(),
    } : null;
    fs.mkdirSync(o.out, { recursive: true });
    for (const s of servers) {
      fs.mkdirSync(path.join(o.out, s), { recursive: true });
      fs.rmSync(path.join(o.out, s, 'results.tsv'), { force: true });
      for (const t of tests) fs.rmSync(path.join(o.out, s, `${t.name}.log`), { force: true });
    }

    // Tests go round-robin to the VMs; each VM runs a test with every server back to back, so the
    // two servers of one test always share a VM and meet the same load.
    nvm = Math.min(o.jobs, tests.length);
    const plans = Array.from({ length: nvm }, () => []);
    tests.forEach((t, i) => plans[i % nvm].push(...servers.map((s) => ({ t, s }))));
    console.log(`[kselftest] ${src.version}: ${tests.length} tests x ${servers.join('+')} in ${nvm} VM(s), `
      + `per-test timeout ${o.timeout}s, logs in ${path.relative(process.cwd(), o.out) || '.'}`);

    const t0 = Date.now();
    vms = await Promise.all(plans.map(async (plan, i) => {
      const planFile = path.join(work.base, `vm${i}.plan`);
      fs.writeFileSync(planFile, plan.map(({ t, s }) => `${s} ${work.dirs[s]} ${t.script}\n`).join(''));
      const vmTimeout = o.vmTimeout || Math.ceil(plan.length * (o.timeout + 90) + 120);
      try {
        const r = await runInVm(['bash', path.join(HERE, 'guest.sh'), o.out, String(o.timeout), planFile], {
          timeout: vmTimeout, mem: o.mem, cwd: work.base, shares: [o.out],
          env: { UBLKIT_KSELFTEST_REF_KUBLK: work.dirs.kublk ? path.join(work.dirs.kublk, 'kublk') : src.kublk, UBLKIT_KSELFTEST_PATH: guestPath },
          consoleLog: path.join(o.out, `console-vm${i}.log`),
        });
        if (r.code !== 0) console.error(`[kselftest] VM ${i} ended with ${r.code}${r.timedOut ? ' (VM timeout)' : ''}`);
        return r;
      } catch (e) {
        if (e instanceof SetupError) console.error(`[kselftest] ${e.message}`);
        else console.error(e);
        return { code: e instanceof SetupError ? 2 : 125, error: String(e.message || e) };
      }
    }));
    wall = (Date.now() - t0) / 1000;
    fs.rmSync(work.base, { recursive: true, force: true });
    if (vms.every((r) => r.code === 2)) return 2;

    // Results of this run; tests a dead VM never reached are NOTRUN (counted as failures).
    for (const s of servers) {
      const got = readTsv(path.join(o.out, s, 'results.tsv'));
      res[s] = {};
      for (const t of tests) {
        const r = got.get(t.name) || { code: null, verdict: 'NOTRUN', seconds: 0 };
        if (r.verdict !== 'PASS' && r.verdict !== 'SKIP') r.reason = failReason(path.join(o.out, s, `${t.name}.log`), r.verdict);
        res[s][t.name] = r;
      }
    }

    // Merge into results.json, so that a one-server run (--server ublkit) is compared with the last
    // kublk results of the same tests.
    merged = { suite: src.version, updated: new Date().toISOString(), servers: prev.servers || {} };
    for (const s of servers) {
      merged.servers[s] ||= {};
      for (const [n, r] of Object.entries(res[s])) {
        merged.servers[s][n] = { ...r, at: merged.updated, ...(s === 'ublkit' ? { build: ublkitBuild } : {}) };
      }
    }
}
  const kublkOf = (n) => res.kublk?.[n] || merged.servers.kublk?.[n] || null;
  const ublkitOf = (n) => res.ublkit?.[n] || null;

  // Report.
  const w = Math.max(...tests.map((t) => t.name.length));
  console.log('');
  for (const t of tests) {
    const u = ublkitOf(t.name); const k = kublkOf(t.name);
    const cols = [];
    if (servers.includes('ublkit')) cols.push(`ublkit=${fmtVerdict(u)}`);
    cols.push(`kublk=${fmtVerdict(k)}${servers.includes('kublk') || o.report ? '' : ' (earlier run)'}`);
    const secs = servers.map((s) => `${s} ${res[s][t.name].seconds.toFixed(0)}s`).join(', ');
    console.log(`${t.name.padEnd(w)} ${cols.join(' ')}   (${secs})`);
  }
  const summary = {};
  console.log('');
  for (const s of servers) {
    const v = Object.values(res[s]);
    const c = (x) => v.filter((r) => r.verdict === x).length;
    const secs = v.reduce((a, r) => a + r.seconds, 0);
    summary[s] = { pass: c('PASS'), skip: c('SKIP'), fail: v.length - c('PASS') - c('SKIP'), timeout: c('TIMEOUT'), hung: c('HUNG'),
      notrun: c('NOTRUN'), seconds: Math.round(secs) };
    console.log(`${s}: ${summary[s].pass} pass, ${summary[s].skip} skip, ${summary[s].fail} fail`
      + `${summary[s].timeout ? ` (${summary[s].timeout} timeout)` : ''}${summary[s].hung ? ` (${summary[s].hung} hung)` : ''}${summary[s].notrun ? ` (${summary[s].notrun} not run)` : ''}`
      + ` in ${summary[s].seconds} s`);
  }
  if (!o.report) console.log(`wall time ${wall.toFixed(0)} s (${nvm} VM(s))`);

  let failsWherePass = [], skipsWherePass = [], failsUnknownRef = [];
  if (servers.includes('ublkit')) {
    for (const t of tests) {
      const u = ublkitOf(t.name); const k = kublkOf(t.name);
      const bad = u.verdict !== 'PASS' && u.verdict !== 'SKIP';
      if (!k) { if (bad) failsUnknownRef.push(t.name); continue; }
      if (k.verdict === 'PASS' && bad) failsWherePass.push(t.name);
      if (k.verdict === 'PASS' && u.verdict === 'SKIP') skipsWherePass.push(t.name);
    }
    const show = (title, list, withReason) => {
      console.log(`\n${title}: ${list.length ? '' : 'none'}`);
      for (const n of list) {
        const u = ublkitOf(n);
        console.log(`  ${n.padEnd(w)}${withReason ? ` ${u.verdict}: ${u.reason}` : ''}`);
      }
    };
    show('ublkit fails where kublk passes', failsWherePass, true);
    show('ublkit skips where kublk passes', skipsWherePass, false);
    if (failsUnknownRef.length) show('ublkit fails, no kublk result to compare', failsUnknownRef, true);
  }
  const ok = servers.includes('ublkit')
    ? !failsWherePass.length && !skipsWherePass.length && !failsUnknownRef.length
    : Object.values(res.kublk).every((r) => r.verdict !== 'NOTRUN');
  const vmProblems = vms.filter((r) => r.code !== 0);
  merged.last_run = {
    at: merged.updated, servers, tests: tests.map((t) => t.name), only: o.only ? o.only.source : null,
    ublkit_build: ublkitBuild, jobs: nvm, per_test_timeout: o.timeout, wall_seconds: Math.round(wall), summary,
    ublkit_fails_where_kublk_passes: failsWherePass, ublkit_skips_where_kublk_passes: skipsWherePass,
    vm_exit_codes: vms.map((r) => r.code), ok,
  };
  if (!o.report) fs.writeFileSync(jsonFile, JSON.stringify(merged, null, 2) + '\n');
  console.log(`\nresults: ${path.relative(process.cwd(), jsonFile)}; logs: ${path.relative(process.cwd(), o.out)}/<server>/<test>.log`);
  if (vmProblems.length) console.log(`VM problems: exit codes ${vms.map((r) => r.code).join(', ')} (see console-vm*.log)`);
  console.log(ok ? 'kselftest: ublkit matches kublk' : 'kselftest: ublkit does NOT match kublk');
  return ok ? 0 : 1;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().then((c) => { process.exitCode = c; }, (e) => { console.error(e); process.exitCode = 1; });
}
