#!/usr/bin/env node
// npm test: unit tests on the host, kernel tests on the host's ublk when it has one, else in the VM.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const inVm = process.argv.includes('--in-vm');
const only = process.argv.includes('--unit') ? 'unit' : process.argv.includes('--kernel') ? 'kernel' : 'all';

function files(dir, re) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((f) => re.test(f)).sort().map((f) => path.join(dir, f));
}

/** Runs node's test runner on `list`, streaming its report; returns {pass, fail, skipped}. */
function nodeTest(list, label) {
  const counts = { pass: 0, fail: 0, skipped: 0 };
  if (!list.length) return counts;
  console.log(`\n== ${label}: ${list.length} files ==`);
  const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=spec', ...list], {
    cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 28,
  });
  process.stdout.write(r.stdout);
  for (const k of Object.keys(counts)) {
    const m = new RegExp(`^\\S* ?${k} (\\d+)$`, 'm').exec(r.stdout.replace(/\u2139 /g, ''));
    if (m) counts[k] = Number(m[1]);
  }
  if (r.status !== 0 && counts.fail === 0) counts.fail = 1;
  return counts;
}

function add(a, b) {
  return { pass: a.pass + b.pass, fail: a.fail + b.fail, skipped: a.skipped + b.skipped };
}

const unit = [...files(path.join(root, 'dist/test/unit'), /\.test\.js$/), ...files(path.join(root, 'test/unit'), /\.test\.mjs$/)];
const kernel = files(path.join(root, 'dist/test/kernel'), /\.test\.js$/);
let total = { pass: 0, fail: 0, skipped: 0 };

if (inVm) {
  // Inside the guest: kernel tests only; the counts line is parsed by the host side.
  const c = nodeTest(kernel, 'kernel tests (VM)');
  console.log(`UBLKIT_COUNTS ${JSON.stringify(c)}`);
  process.exit(c.fail ? 1 : 0);
}

if (only !== 'kernel') total = add(total, nodeTest(unit, 'unit tests (host)'));
if (only !== 'unit') {
  if (fs.existsSync('/dev/ublk-control')) {
    total = add(total, nodeTest(kernel, 'kernel tests (host ublk_drv)'));
  } else {
    console.log('\n== kernel tests: no /dev/ublk-control here, booting the VM (tools/vm/run.mjs) ==');
    const t0 = Date.now();
    const r = spawnSync(process.execPath, [path.join(root, 'tools/vm/run.mjs'), '--timeout', '1500', '--', process.execPath, 'tools/test.mjs', '--in-vm'], {
      cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 28,
    });
    process.stdout.write(r.stdout.split('\n').filter((l) => !l.startsWith('UBLKIT_COUNTS')).join('\n'));
    const m = /^UBLKIT_COUNTS (.*)$/m.exec(r.stdout);
    const c = m ? JSON.parse(m[1]) : { pass: 0, fail: 1, skipped: 0 };
    if (r.status !== 0 && !c.fail) c.fail = 1;
    console.log(`\nVM kernel suite: ${c.pass} passed, ${c.fail} failed, ${c.skipped} skipped in ${((Date.now() - t0) / 1000).toFixed(0)} s (incl. boot)`);
    total = add(total, c);
  }
}

console.log(`\n${total.pass} passed, ${total.fail} failed, ${total.skipped} skipped`);
process.exit(total.fail ? 1 : 0);
