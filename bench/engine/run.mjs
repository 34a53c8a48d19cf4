#!/usr/bin/env node
// The engine's own cost, deterministically: instructions per request counted by valgrind's
// callgrind while the engine serves a fake kernel (bench/engine/fake-kernel.ts), no ublk, no root.
//
//   npm run bench:engine                      # = npm run build && node bench/engine/run.mjs
//   node bench/engine/run.mjs --only 'zero-copy/loop'
//   node bench/engine/run.mjs --baseline ../main   # the same table for another built checkout, side by side
//
// See bench/README.md ("Engine cost") for the method and the numbers to beat.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DRIVER = 'dist/bench/engine/drive.js';
const MODES = ['copy', 'get-data', 'user-copy', 'zero-copy', 'auto-buf-reg'];
const TARGETS = ['null', 'loop'];
const OPS = ['read', 'write'];

const USAGE = `usage: node bench/engine/run.mjs [options]
  --only REGEX       configurations whose name transport/mode/target/op matches (transport per-io or
                     batch; e.g. 'zero-copy', '/loop/', 'per-io/copy/null/read', '^batch')
  --n1 N, --n2 N     requests of the short and the long run (default 40000, 60000): the figure is
                     (Ir(n2) - Ir(n1)) / (n2 - n1), so start-up and JIT warm-up cancel out
  --burst N          requests handed to the engine per wake-up (default 16), --depth N tags (default 128)
  --jobs N           valgrind processes at a time (default 2; the counts do not depend on it)
  --node-flags STR   flags for node under valgrind (default '--predictable': V8 does its compiling and
                     GC on the main thread in a fixed order; with setarch -R too, a count repeats
                     to ~0.001 %)
  --stats            the engine counts every request (per-op counts, bytes, latency histogram), as a
                     device the CLI serves does; without it, as a library device with stats: false
  --baseline DIR     also measure another built checkout (its own ${DRIVER}) and show the ratio
  --out FILE         JSON results (default <repo>/bench-results/engine.json)`;

function die(msg) {
  process.stderr.write(`bench:engine: ${msg}\n`);
  process.exit(1);
}

let opts;
try {
  opts = parseArgs({
    options: {
      only: { type: 'string' }, n1: { type: 'string', default: '40000' }, n2: { type: 'string', default: '60000' },
      burst: { type: 'string', default: '16' }, depth: { type: 'string', default: '128' }, jobs: { type: 'string', default: '2' },
      'node-flags': { type: 'string', default: '--predictable' }, baseline: { type: 'string' }, stats: { type: 'boolean', default: false },
      out: { type: 'string', default: path.join(ROOT, 'bench-results', 'engine.json') }, help: { type: 'boolean', short: 'h' },
    },
  }).values;
} catch (e) {
  die(`${e.message.split('\n')[0]} (--help for the options)`);
}
if (opts.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const [n1, n2, jobs] = [opts.n1, opts.n2, opts.jobs].map(Number);
if (!(Number.isInteger(n1) && Number.isInteger(n2) && n1 >= 0 && n2 > n1)) die('--n1 and --n2 must be whole numbers with n2 > n1');
if (!(Number.isInteger(jobs) && jobs >= 1)) die('--jobs must be a whole number from 1');

if (spawnSync('valgrind', ['--version']).error) die('valgrind is not installed (apt-get install valgrind): it counts the instructions');

const trees = [{ name: 'ublkit', dir: ROOT }];
if (opts.baseline) trees.push({ name: 'base', dir: path.resolve(opts.baseline) });
for (const t of trees) {
  if (!fs.existsSync(path.join(t.dir, DRIVER))) die(`${t.dir} has no ${DRIVER}: build it first (npm run build)`);
}

let only;
try {
  only = opts.only ? new RegExp(opts.only) : null;
} catch (e) {
  die(`--only: ${e.message}`);
}
// Batch IO (PREP/FETCH/COMMIT_IO_CMDS) carries every mode but get-data.
const configs = ['per-io', 'batch'].flatMap((transport) => MODES.filter((m) => transport === 'per-io' || m !== 'get-data')
  .flatMap((mode) => TARGETS.flatMap((target) => OPS.map((op) => ({ transport, mode, target, op, name: `${transport}/${mode}/${target}/${op}` })))))
  .filter((c) => !only || only.test(c.name));
if (!configs.length) die(`--only '${opts.only}' matches no configuration`);

// Without address-space randomisation: where the slab lands decides which addresses are small
// integers to V8 and which are heap numbers, and that moved copy-mode counts by ~1 % between runs.
const NO_ASLR = spawnSync('setarch', [os.machine(), '-R', 'true']).status === 0 ? ['setarch', os.machine(), '-R'] : [];
if (!NO_ASLR.length) process.stderr.write('bench:engine: no setarch -R here: counts of the copy modes may move by ~1 % between runs\n');

/** One driver process under callgrind: its instruction count and the driver's own report. */
function measure(tree, c, n) {
  const args = [
    ...NO_ASLR.slice(1), 'valgrind', '--tool=callgrind', '--callgrind-out-file=/dev/null',
    'node', ...opts['node-flags'].split(/\s+/).filter(Boolean), DRIVER,
    '--mode', c.mode, '--target', c.target, '--op', c.op, '--requests', String(n), '--burst', opts.burst, '--depth', opts.depth,
    ...(c.transport === 'batch' ? ['--batch'] : []), ...(opts.stats ? ['--stats'] : []),
  ];
  return new Promise((resolve, reject) => {
    const p = spawn(NO_ASLR[0] ?? args.shift(), args, { cwd: tree.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => {
      const ir = /==\d+== Collected : (\d+)/.exec(err);
      if (code !== 0 || !ir) return reject(new Error(`${tree.name} ${c.name} n=${n}: exit ${code}: ${err.split('\n').filter((l) => !l.startsWith('==')).join(' ').slice(0, 300)}`));
      resolve({ ir: Number(ir[1]), report: JSON.parse(out.trim().split('\n').pop()) });
    });
  });
}

/** Runs `tasks` (functions returning promises) at most `jobs` at a time. */
async function pool(tasks) {
  const results = new Array(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]();
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, tasks.length) }, worker));
  return results;
}

const started = Date.now();
process.stderr.write(`bench:engine: ${configs.length * trees.length * 2} runs under callgrind, ${jobs} at a time (about ${Math.ceil((configs.length * trees.length * 2 * 35) / Math.min(jobs, os.cpus().length) / 60)} min on an idle machine)\n`);
const tasks = [];
for (const c of configs) for (const t of trees) for (const n of [n1, n2]) tasks.push(() => measure(t, c, n));
let runs;
try {
  runs = await pool(tasks);
} catch (e) {
  die(e.message);
}

const rows = [];
let k = 0;
for (const c of configs) {
  const row = { ...c };
  for (const t of trees) {
    const [a, b] = [runs[k++], runs[k++]];
    row[t.name] = { irPerRequest: Math.round((b.ir - a.ir) / (n2 - n1)), ir: [a.ir, b.ir], perRequest: b.report.perRequest };
  }
  rows.push(row);
}

const fmt = (x) => (x === undefined ? '-' : x.toLocaleString('en-US'));
const paths = (p) => Object.entries(p).filter(([name, x]) => name !== 'enter' && x > 0).map(([name, x]) => (x === 1 ? name : `${x} ${name}`)).join(' + ');
const head = ['transport', 'mode', 'target', 'op', 'Ir/request', ...(opts.baseline ? ['base Ir/request', 'ublkit/base'] : []), 'SQEs per request'];
const body = rows.map((r) => [
  r.transport, r.mode, r.target, r.op, fmt(r.ublkit.irPerRequest),
  ...(opts.baseline ? [fmt(r.base.irPerRequest), (r.ublkit.irPerRequest / r.base.irPerRequest).toFixed(3)] : []),
  paths(r.ublkit.perRequest),
]);
const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => String(b[i]).length)));
const line = (cells) => cells.map((x, i) => (i >= 4 && i < head.length - 1 ? String(x).padStart(widths[i]) : String(x).padEnd(widths[i]))).join('  ').trimEnd();
console.log(line(head));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const b of body) console.log(line(b));
console.log(`\n${opts.depth} tags, bursts of ${opts.burst}, 4 KiB; Ir = (Ir(${n2}) - Ir(${n1})) / ${n2 - n1}; node ${process.version} ${opts['node-flags']}; ${Math.round((Date.now() - started) / 1000)} s`);

const rev = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim();
fs.mkdirSync(path.dirname(opts.out), { recursive: true });
fs.writeFileSync(opts.out, `${JSON.stringify({
  meta: { date: new Date().toISOString(), rev, node: process.version, nodeFlags: opts['node-flags'], valgrind: spawnSync('valgrind', ['--version'], { encoding: 'utf8' }).stdout.trim(), n1, n2, burst: Number(opts.burst), depth: Number(opts.depth), cpu: os.cpus()[0]?.model },
  rows,
}, null, 2)}\n`);
