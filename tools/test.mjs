#!/usr/bin/env node
// npm test: unit tests on the host, kernel tests on the host's ublk or one VM boot per kernel, then the package test on the host.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';
import { pathToFileURL } from 'node:url';
import { findKernel, crashSummary } from './vm/run.mjs';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const inVm = process.argv.includes('--in-vm');
const only = ['unit', 'package', 'kernel'].find((k) => process.argv.includes(`--${k}`)) ?? 'all';
// Debian sid (7.2), 13 (6.12) and 13 backports (7.3): the kernels the suite must pass on.
const ALL_SUITES = ['sid', 'trixie', 'trixie-backports'];
const COUNTS_TAG = 'UBLKIT_COUNTS ';

function files(dir, re) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((f) => re.test(f)).sort().map((f) => path.join(dir, f));
}

/**
 * Runs `cmd args`, streaming its stdout as it comes except lines starting with COUNTS_TAG;
 * resolves to { status, text } with the whole stdout.
 */
function stream(cmd, args, env = process.env, out = process.stdout) {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { cwd: root, env, stdio: ['ignore', 'pipe', out === process.stdout ? 'inherit' : 'pipe'] });
    let text = '';
    let partial = '';
    p.stdout.setEncoding('utf8');
    p.stderr?.on('data', (d) => out.write(d));
    p.stdout.on('data', (d) => {
      text += d;
      const lines = (partial + d).split('\n');
      partial = lines.pop();
      const keep = lines.filter((l) => !l.startsWith(COUNTS_TAG));
      if (keep.length) out.write(keep.join('\n') + '\n');
    });
    p.on('close', (code, signal) => {
      if (partial && !partial.startsWith(COUNTS_TAG)) out.write(partial + '\n');
      resolve({ status: code ?? (signal ? 128 : 1), text });
    });
  });
}

/** Collects what a run writes, to print it whole when the run ends (runs side by side stay readable). */
function buffered() {
  const parts = [];
  return { write: (d) => void parts.push(String(d)), text: () => parts.join('') };
}

/**
 * One file that imports every file of `list`, so that node's test runner runs them all in one
 * process: in the VM each test file's own process (node, the library's ES modules, the helpers)
 * cost ~6 s before its first test. Files run in `list`'s order, as they do one per process.
 */
function oneFile(list) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ublkit-tests-'));
  const file = path.join(dir, 'kernel.test.mjs');
  fs.writeFileSync(file, list.map((f) => `import ${JSON.stringify(pathToFileURL(f).href)};\n`).join(''));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return file;
}

/** Runs node's test runner on `list` (with `together`, in one process); returns {pass, fail, skipped}. */
async function nodeTest(list, label, together = false) {
  const counts = { pass: 0, fail: 0, skipped: 0 };
  if (!list.length) return counts;
  // UBLKIT_TEST_ISOLATE=1: a process per file again, e.g. to rule out one file's effect on another.
  const one = together && list.length > 1 && process.env.UBLKIT_TEST_ISOLATE !== '1';
  console.log(`\n== ${label}: ${list.length} files${one ? ', in one process' : ''} ==`);
  const r = await stream(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=spec', ...(one ? [oneFile(list)] : list)]);
  for (const k of Object.keys(counts)) {
    const m = new RegExp(`^\\S* ?${k} (\\d+)$`, 'm').exec(r.text.replace(/\u2139 /g, ''));
    if (m) counts[k] = Number(m[1]);
  }
  if (r.status !== 0 && counts.fail === 0) counts.fail = 1;
  return counts;
}

function add(a, b) {
  return { pass: a.pass + b.pass, fail: a.fail + b.fail, skipped: a.skipped + b.skipped };
}

const line = (c) => `${c.pass} passed, ${c.fail} failed, ${c.skipped} skipped`;

/** The cached kernel of `suite`, or null (findKernel reads the suite from the environment). */
function kernelOf(suite) {
  const saved = process.env.UBLKIT_VM_SUITE;
  process.env.UBLKIT_VM_SUITE = suite;
  try {
    return findKernel();
  } finally {
    if (saved === undefined) delete process.env.UBLKIT_VM_SUITE;
    else process.env.UBLKIT_VM_SUITE = saved;
  }
}

/**
 * The suites to boot: UBLKIT_VM_SUITES (space or comma separated); else UBLKIT_VM_SUITE or
 * UBLKIT_VM_KERNEL_DIR alone; else every one of ALL_SUITES that setup has fetched (sid if none,
 * so that the VM runner says what is missing).
 */
function vmSuites() {
  const list = process.env.UBLKIT_VM_SUITES?.split(/[\s,]+/).filter(Boolean);
  if (list?.length) return list;
  if (process.env.UBLKIT_VM_KERNEL_DIR) return [undefined];
  if (process.env.UBLKIT_VM_SUITE) return [process.env.UBLKIT_VM_SUITE];
  const cached = ALL_SUITES.filter((s) => kernelOf(s));
  return cached.length ? cached : ['sid'];
}

/** One VM boot running the kernel suite on `suite`'s kernel. */
async function vmRun(suite, out = process.stdout) {
  const kver = suite === undefined ? findKernel()?.kver : kernelOf(suite)?.kver;
  const name = suite === undefined ? `${process.env.UBLKIT_VM_KERNEL_DIR} (${kver ?? '?'})` : `${suite} (${kver ?? 'not fetched'})`;
  out.write(`\n== kernel tests on ${name}: no /dev/ublk-control here, booting the VM (tools/vm/run.mjs) ==\n`);
  const env = { ...process.env };
  if (suite !== undefined) env.UBLKIT_VM_SUITE = suite;
  const timeout = process.env.UBLKIT_VM_TIMEOUT || '1800';
  const t0 = Date.now();
  // Kept so that a guest kernel crash can be named in the summary line, which CI shows.
  const consoleLog = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ublkit-vm-')), 'console.log');
  const r = await stream(process.execPath, [path.join(root, 'tools/vm/run.mjs'), '--timeout', timeout, '--console-log', consoleLog, '--',
    process.execPath, 'tools/test.mjs', '--in-vm'], env, out);
  const m = new RegExp(`^${COUNTS_TAG}(.*)$`, 'm').exec(r.text);
  // No counts: the boot died or timed out mid-suite; count the results it did report, plus one
  // failure for the rest.
  const c = m ? JSON.parse(m[1]) : {
    pass: (r.text.match(/^\u2714 /gm) ?? []).length,
    fail: (r.text.match(/^\u2716 (?!failing tests)/gm) ?? []).length + 1,
    skipped: (r.text.match(/^\ufe63 /gm) ?? []).length,
  };
  if (r.status !== 0 && !c.fail) c.fail = 1;
  const crash = fs.existsSync(consoleLog) ? crashSummary(fs.readFileSync(consoleLog, 'utf8')) : null;
  // Kept whenever the run failed: a timeout with no oops needs the log as much as a crash does.
  const keep = crash || r.status !== 0 || c.fail;
  if (!keep) fs.rmSync(path.dirname(consoleLog), { recursive: true, force: true });
  const summary = `kernel ${name}: ${line(c)} in ${((Date.now() - t0) / 1000).toFixed(0)} s (incl. boot)`
    + (crash ? `\n  ${crash} (console log ${consoleLog})` : keep ? `\n  console log ${consoleLog}` : '');
  out.write(`\n${summary}\n`);
  return { c, summary };
}

async function main() {
  const unit = [...files(path.join(root, 'dist/test/unit'), /\.test\.js$/), ...files(path.join(root, 'test/unit'), /\.test\.mjs$/)];
  const kernel = files(path.join(root, 'dist/test/kernel'), /\.test\.js$/);
  // Packs the tarball and installs it in a scratch project: needs the host's npm, so never in the VM.
  const pkg = files(path.join(root, 'test/package'), /\.test\.mjs$/);

  if (inVm) {
    // Inside the guest: kernel tests only; the counts line is parsed by the host side.
    const c = await nodeTest(kernel, 'kernel tests (VM)', true);
    console.log(`${COUNTS_TAG}${JSON.stringify(c)}`);
    return c.fail ? 1 : 0;
  }

  let total = { pass: 0, fail: 0, skipped: 0 };
  const summaries = [];
  if (only === 'all' || only === 'unit') {
    const c = await nodeTest(unit, 'unit tests (host)');
    summaries.push(`unit tests: ${line(c)}`);
    total = add(total, c);
  }
  if (only === 'all' || only === 'kernel') {
    if (fs.existsSync('/dev/ublk-control')) {
      const c = await nodeTest(kernel, 'kernel tests (host ublk_drv)', true);
      summaries.push(`kernel tests (host): ${line(c)}`);
      total = add(total, c);
    } else {
      // UBLKIT_VM_PARALLEL=1: every kernel's VM boots at once, each run's output printed whole
      // when it ends. A VM's test chain is mostly one process at a time (test, CLI, daemon), so
      // two of them share a 2-core host better than one leaves it idle.
      const suites = vmSuites();
      const parallel = process.env.UBLKIT_VM_PARALLEL === '1' && suites.length > 1;
      const runs = parallel
        ? await Promise.all(suites.map(async (suite) => {
          const out = buffered();
          const r = await vmRun(suite, out);
          process.stdout.write(out.text());
          return r;
        }))
        : [];
      if (!parallel) for (const suite of suites) runs.push(await vmRun(suite));
      for (const { c, summary } of runs) {
        summaries.push(summary);
        total = add(total, c);
      }
    }
  }
  // Last: packing rebuilds dist/src (prepare), which the kernel tests must not see half done.
  if (only === 'all' || only === 'package') {
    const c = await nodeTest(pkg, 'package test (host)');
    summaries.push(`package test: ${line(c)}`);
    total = add(total, c);
  }
  console.log(`\n${summaries.join('\n')}`);
  console.log(`\n${line(total)}`);
  return total.fail ? 1 : 0;
}

main().then((code) => { process.exitCode = code; }, (e) => { console.error(e); process.exitCode = 1; });
