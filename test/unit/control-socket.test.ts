// The daemon's control socket and the stats / top commands on the host: a stand-in daemon in a
// temporary run directory answers with a known statistics object.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { answer, ask, listenControl, socketPath, socketIds } from '../../src/cli/control-socket.js';
import { parseWatch, formatStats } from '../../src/cli/stats-format.js';
import { readStats, type DeviceStats } from '../../src/ublk/stats.js';
import { newStatsBuffer, ST_HEADER, ST_OP_WORDS } from '../../src/ublk/engine/stats.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ublkit-run-'));
process.env.UBLKIT_RUN_DIR = path.join(dir, 'run');
const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const BUNDLE = fileURLToPath(new URL('../../src/cli/ublkit.cjs', import.meta.url));

/** A stats object with 1000 reads of 4 KiB and 10 failed writes. */
function sampleStats(id: number): DeviceStats {
  const sab = newStatsBuffer(2);
  const w = new Float64Array(sab);
  w[ST_HEADER] = 1000;
  w[ST_HEADER + 1] = 1000 * 4096;
  w[ST_HEADER + ST_OP_WORDS] = 10;
  w[ST_HEADER + ST_OP_WORDS + 2] = 10;
  return readStats({ id, mode: 'copy', target: 'ublkit:null', startedAt: Date.now() - 5000, nrQueues: 2, buffers: [sab] });
}

/** The CLI in a child (async: the stand-in daemon answers from this process's event loop). */
function cli(args: string[], bin = CLI): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [bin, ...args], { env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    c.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

test('protocol: a known command answers ok, anything else one error line', () => {
  const h = { stats: () => ({ n: 1 }), boom: () => { throw new Error('nope'); } };
  assert.deepEqual(JSON.parse(answer('{"cmd":"stats"}', h)), { ok: true, stats: { n: 1 } });
  assert.deepEqual(JSON.parse(answer('{"cmd":"boom"}', h)), { ok: false, error: 'nope' });
  assert.match(JSON.parse(answer('{"cmd":"toString"}', h)).error, /unknown command "toString"/);
  assert.match(JSON.parse(answer('not json', h)).error, /not JSON/);
  assert.match(JSON.parse(answer('[]', h)).error, /unknown command null/);
  for (const l of ['{}', 'null', '"stats"']) assert.equal(JSON.parse(answer(l, h)).ok, false);
});

test('socket: root-only modes, a stale socket replaced, removed on close, one reply per line', async () => {
  fs.mkdirSync(process.env.UBLKIT_RUN_DIR!, { recursive: true, mode: 0o755 });
  // What a daemon that died left behind.
  fs.writeFileSync(socketPath(4), '');
  const close = await listenControl(4, { stats: () => sampleStats(4) });
  try {
    assert.equal(fs.statSync(process.env.UBLKIT_RUN_DIR!).mode & 0o777, 0o700);
    assert.equal(fs.statSync(socketPath(4)).mode & 0o777, 0o600);
    assert.ok(fs.statSync(socketPath(4)).isSocket());
    assert.deepEqual(socketIds(), [4]);
    const s = (await ask(4, 'stats')) as DeviceStats;
    assert.equal(s.ops.read.count, 1000);
    await assert.rejects(ask(4, 'reboot'), /device 4: unknown command "reboot"/);
    // Two requests in one write: two replies, in order.
    const replies = await new Promise<string>((resolve) => {
      const c = net.createConnection(socketPath(4), () => c.write('{"cmd":"stats"}\n{"cmd":"x"}\n'));
      let t = '';
      c.setEncoding('utf8');
      c.on('data', (d: string) => {
        t += d;
        if (t.split('\n').length > 2) (c.end(), resolve(t));
      });
    });
    const [a, b] = replies.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(a.ok, true);
    assert.equal(b.ok, false);
  } finally {
    close();
  }
  assert.equal(fs.existsSync(socketPath(4)), false);
  await assert.rejects(ask(4, 'stats'), (e: Error & { code?: string }) => e.code === 'ENODEV' && /device 4: no such device/.test(e.message));
});

test('CLI: stats prints the table and JSON, top prints once without a terminal', async () => {
  const close = await listenControl(6, { stats: () => sampleStats(6) });
  try {
    for (const bin of [CLI, BUNDLE]) {
      const t = await cli(['stats', '-n', '6'], bin);
      assert.equal(t.status, 0, t.stderr);
      assert.match(t.stdout, /^ublkb6  mode copy  target ublkit:null  up 5\.\ds  inflight q0:0 q1:0\n/);
      assert.match(t.stdout, /\nread +- +1000 +3\.91 +0 /);
      assert.match(t.stdout, /\nwrite +- +10 +0\.00 +10 /);
      const j = await cli(['stats', '-n', '6', '--json'], bin);
      assert.equal(j.status, 0, j.stderr);
      assert.equal(JSON.parse(j.stdout).ops.write.errors, 10);
      const top = await cli(['top'], bin);
      assert.equal(top.status, 0, top.stderr);
      assert.match(top.stdout, /^dev +mode/);
      assert.match(top.stdout, /\nublkb6 +copy +ublkit:null +- +- +- +- +0 +0 +0 +10 /);
    }
  } finally {
    close();
  }
});

test('CLI: bad input is one line and a non-zero exit', async () => {
  for (const [args, msg] of [
    [['stats'], /^ublkit: stats needs a device id: -n ID\n$/],
    [['stats', '-n', '99'], /^ublkit: device 99: no such device served by a ublkit daemon \(no .*ublkb99\.sock\)\n$/],
    [['stats', '-n', '99', '--watch', '0'], /^ublkit: --watch 0: seconds between samples must be a number from 0\.1 to 86400\n$/],
    [['stats', '-n', '99', '--watch', 'x'], /^ublkit: --watch x: /],
    [['stats', '-n', 'x'], /^ublkit: -n x: device id must be an integer\n$/],
    [['top', '--watch', '-1'], /^ublkit: --watch -1: /],
  ] as Array<[string[], RegExp]>) {
    const r = await cli(args);
    assert.notEqual(r.status, 0, args.join(' '));
    assert.match(r.stderr, msg);
    assert.equal(r.stdout, '');
  }
  assert.equal(parseWatch(undefined), undefined);
  assert.equal(parseWatch('0.5'), 0.5);
  assert.throws(() => parseWatch('1e3'));
});

test('format: IOPS since the previous sample when watching', () => {
  const a = sampleStats(1);
  const b = structuredClone(a);
  b.ops.read.count += 500;
  assert.match(formatStats(b, a, 2), /\nread +250 +1500 /);
});
