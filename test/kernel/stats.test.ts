// Live stats on the real driver: ublkit stats follows a running fio and ends on its totals; top
// lists the device once without a terminal; Device.stats() in the library, with stats off too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { Device, type DeviceStats, type IoEvent } from '../../src/index.js';
import { kernelSkipReason, hasProgram, addDevice, delDevice, cli, cliAsync, freeId, waitFor, shAsync } from '../helpers/kernel.js';

const skip = kernelSkipReason();
const skipFio = skip ?? (hasProgram('fio') ? undefined : 'fio is not installed');

async function statsOf(id: number): Promise<DeviceStats> {
  const r = await cliAsync(['stats', '-n', String(id), '--json']);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as DeviceStats;
}

interface FioTotals { reads: number; writes: number; readBytes: number; writeBytes: number }

function runFio(dev: string): Promise<FioTotals> {
  const args = ['--name=stats', `--filename=${dev}`, '--rw=randrw', '--direct=1', '--ioengine=libaio', '--bs=4k', '--iodepth=16',
    '--size=64M', '--time_based', '--runtime=12', '--output-format=json'];
  return new Promise((resolve, reject) => {
    const p = spawn('fio', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => {
      if (code !== 0) return reject(new Error(`fio failed (${code}): ${err}`));
      const j = JSON.parse(out.slice(out.indexOf('{'))).jobs[0];
      resolve({ reads: j.read.total_ios, writes: j.write.total_ios, readBytes: j.read.io_bytes, writeBytes: j.write.io_bytes });
    });
  });
}

test('ublkit stats follows fio and ends on its totals; top lists the device; sockets are root-only', { skip: skipFio }, async () => {
  const logFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ublkit-stats-')), 'daemon.log');
  const id = addDevice(['-t', 'null', '-s', '256M', '-q', '2', '--log', logFile]);
  try {
    assert.match(fs.readFileSync(logFile, 'utf8'), new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z ublkit\\[\\d+\\]: device ${id} served \\(copy\\)`));
    const sock = `/run/ublkit/ublkb${id}.sock`;
    assert.equal(fs.statSync(sock).mode & 0o777, 0o600);
    assert.equal(fs.statSync('/run/ublkit').mode & 0o777, 0o700);
    const s0 = await statsOf(id);
    assert.equal(s0.id, id);
    assert.equal(s0.mode, 'copy');
    assert.equal(s0.enabled, true);
    assert.equal(s0.inflight.length, 2);
    const fio = runFio(`/dev/ublkb${id}`);
    let done = false;
    void fio.then(() => (done = true), () => (done = true));
    // Counts grow while fio runs: two samples apart, both beyond the start.
    const seen: number[] = [];
    while (!done && seen.length < 2) {
      const s = await statsOf(id);
      const n = s.ops.read.count + s.ops.write.count - s0.ops.read.count - s0.ops.write.count;
      if (n > 0 && (seen.length === 0 || n > seen[seen.length - 1])) seen.push(n);
    }
    const f = await fio;
    assert.equal(seen.length, 2, `counts grew while fio ran: ${seen.join(', ')}`);
    // Nothing left in flight once fio is done; then the totals match fio's (udev may read a little).
    let s1 = await statsOf(id);
    await waitFor(() => s1.inflight.every((n) => n === 0), 10_000, 'no request in flight');
    s1 = await statsOf(id);
    const reads = s1.ops.read.count - s0.ops.read.count;
    const writes = s1.ops.write.count - s0.ops.write.count;
    assert.ok(reads >= f.reads && reads <= f.reads + 32, `reads ${reads} vs fio ${f.reads}`);
    assert.ok(writes >= f.writes && writes <= f.writes + 4, `writes ${writes} vs fio ${f.writes}`);
    const rb = s1.ops.read.bytes - s0.ops.read.bytes;
    assert.ok(rb >= f.readBytes && rb <= f.readBytes + (1 << 20), `read bytes ${rb} vs fio ${f.readBytes}`);
    assert.equal(s1.ops.write.bytes - s0.ops.write.bytes >= f.writeBytes, true);
    assert.equal(s1.ops.read.errors + s1.ops.write.errors, 0);
    const l = s1.ops.read.latency;
    assert.ok(l.p50 > 0 && l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.max, JSON.stringify(l));
    // The human table, and top without a terminal: printed once.
    const t = cli(['stats', '-n', String(id)]);
    assert.equal(t.status, 0, t.stderr);
    assert.match(t.stdout, new RegExp(`^ublkb${id}  mode copy  target ublkit:null`));
    assert.match(t.stdout, /\nread +- +\d+ /);
    const top = cli(['top']);
    assert.equal(top.status, 0, top.stderr);
    assert.match(top.stdout, new RegExp(`\\nublkb${id} +copy +ublkit:null `));
  } finally {
    delDevice(id);
  }
  await waitFor(() => !fs.existsSync(`/run/ublkit/ublkb${id}.sock`), 10_000, 'the socket removed with the device');
});

test('ublkit stats of a device nobody serves: one line, non-zero', { skip }, () => {
  const r = cli(['stats', '-n', String(freeId())]);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /^ublkit: device \d+: no such device served by a ublkit daemon/);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
});

test('library: Device.stats() counts IO, ublkit:io reports it, stats: false counts nothing', { skip }, async () => {
  const target = { size: 16 << 20, read: (b: Uint8Array) => (b.fill(0), b.byteLength), write: (b: Uint8Array) => b.byteLength };
  for (const stats of [true, false]) {
    const dev = await Device.create({ target, queues: 1, depth: 16, stats, description: 'zeroes' });
    const events: IoEvent[] = [];
    const onIo = (m: unknown) => void events.push(m as IoEvent);
    subscribe('ublkit:io', onIo);
    try {
      const before = dev.stats().ops.write.count;
      await shAsync('dd', ['if=/dev/zero', `of=${dev.blockPath}`, 'bs=64k', 'count=16', 'oflag=direct', 'status=none']);
      const s = dev.stats();
      assert.equal(s.target, 'zeroes');
      assert.equal(s.enabled, stats);
      if (stats) {
        assert.equal(s.ops.write.count - before, 16);
        assert.equal(s.ops.write.bytes, 16 * 65536);
        assert.ok(events.filter((e) => e.op === 'write' && e.length === 65536).length === 16);
      } else {
        assert.equal(s.ops.write.count, 0);
        assert.equal(events.length, 0);
      }
    } finally {
      unsubscribe('ublkit:io', onIo);
      await dev.delete();
    }
  }
});
