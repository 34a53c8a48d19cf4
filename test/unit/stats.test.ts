// IO statistics: the log-linear histogram's buckets and percentiles, and the engine's counters
// driven through the scripted driver (no kernel).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { bucketOf, bucketLow, bucketHigh, quantile, HIST_BUCKETS } from '../../src/ublk/histogram.js';
import { newStatsBuffer, type IoEvent } from '../../src/ublk/engine/stats.js';
import { readStats } from '../../src/ublk/stats.js';
import { QueueEngine } from '../../src/ublk/queue.js';
import type { DataMode } from '../../src/ublk/modes.js';
import type { Target } from '../../src/target/types.js';
import * as U from '../../src/uapi/ublk.js';
import { UblkError } from '../../src/errors.js';
import { StandIn } from '../helpers/stand-in.js';

const KiB = 1024;

test('histogram: every value falls in the bucket whose bounds hold it; width at most 1/8', () => {
  for (let v = 0; v < 5000; v++) {
    const b = bucketOf(v);
    assert.ok(bucketLow(b) <= v && v < bucketHigh(b), `${v} in bucket ${b} [${bucketLow(b)}, ${bucketHigh(b)})`);
  }
  for (const v of [8191.9, 65536, 1e6, 123456789, 2 ** 31 - 1]) {
    const b = bucketOf(v);
    assert.ok(bucketLow(b) <= Math.floor(v) && Math.floor(v) < bucketHigh(b), `${v}`);
    assert.ok((bucketHigh(b) - bucketLow(b)) / bucketLow(b) <= 1 / 8);
  }
  assert.equal(bucketOf(-3), 0);
  assert.equal(bucketOf(1e12), HIST_BUCKETS - 1);
  for (let b = 1; b < HIST_BUCKETS; b++) assert.equal(bucketLow(b), bucketHigh(b - 1), `bucket ${b} follows ${b - 1}`);
});

test('histogram: percentiles of a known distribution within one bucket (12.5 %)', () => {
  const h = new Float64Array(HIST_BUCKETS);
  // 1..100000 us, once each: the q-quantile is q * 100000.
  let max = 0;
  for (let v = 1; v <= 100000; v++) {
    h[bucketOf(v)]++;
    max = v;
  }
  for (const q of [0.5, 0.9, 0.99]) {
    const got = quantile(h, 0, q, max);
    const want = q * 100000;
    assert.ok(got >= want && got <= want * 1.125, `p${q * 100}: ${got} vs ${want}`);
  }
  assert.equal(quantile(h, 0, 1, max), max);
  assert.equal(quantile(new Float64Array(HIST_BUCKETS), 0, 0.5, 0), 0);
  // Bimodal: 90 % at 10 us, 10 % at 5000 us.
  h.fill(0);
  h[bucketOf(10)] = 900;
  h[bucketOf(5000)] = 100;
  assert.ok(quantile(h, 0, 0.5, 5000) <= 11);
  assert.ok(quantile(h, 0, 0.9, 5000) <= 11);
  const p99 = quantile(h, 0, 0.99, 5000);
  assert.ok(p99 >= 5000 && p99 <= 5000, `p99 ${p99}`);
});

function serve(mode: DataMode, target: Target, stats: SharedArrayBuffer | undefined): StandIn {
  const stand = new StandIn({ depth: 4, mode });
  new QueueEngine({
    ublkcFd: -1, queueDepth: 4, maxIoBufBytes: 256 * KiB, noFixedFd: true, mode, target, stats,
    slots: Array.from({ length: 4 }, (_, t) => [0, t] as [number, number]),
    stand: { ring: stand.ring, descriptors: stand.descriptors }, onError: () => {},
  }).start();
  return stand;
}

function memTarget(size: number): Target {
  const mem = new Uint8Array(size);
  return {
    size,
    read: (buf, off) => (buf.set(mem.subarray(off, off + buf.byteLength)), buf.byteLength),
    write: (buf, off) => (off >= size / 2 ? Promise.reject(new UblkError('EIO')) : (mem.set(buf, off), buf.byteLength)),
    flush: () => 0,
  };
}

test('engine: counts, bytes, errors, latency and in-flight per op, and ublkit:io events', async () => {
  const sab = newStatsBuffer(1);
  const stand = serve('copy', memTarget(1 << 20), sab);
  await stand.settle();
  const events: IoEvent[] = [];
  const onIo = (m: unknown) => void events.push(m as IoEvent);
  subscribe('ublkit:io', onIo);
  try {
    stand.deliver(0, { op: U.UBLK_IO_OP_READ, off: 0, len: 8 * KiB, data: new Uint8Array(8 * KiB) });
    stand.deliver(1, { op: U.UBLK_IO_OP_WRITE, off: 4096, len: 4 * KiB, data: new Uint8Array(4 * KiB) });
    stand.deliver(2, { op: U.UBLK_IO_OP_WRITE, off: 1 << 19, len: 4 * KiB, data: new Uint8Array(4 * KiB) });
    stand.deliver(3, { op: U.UBLK_IO_OP_FLUSH, off: 0, len: 0, data: new Uint8Array(0) });
    await stand.settle();
  } finally {
    unsubscribe('ublkit:io', onIo);
  }
  stand.deliver(0, { op: U.UBLK_IO_OP_DISCARD, off: 0, len: 4096, data: new Uint8Array(0) });
  await stand.settle();
  const s = readStats({ id: 7, mode: 'copy', target: 't', startedAt: Date.now() - 2000, nrQueues: 1, buffers: [sab] });
  assert.deepEqual([s.ops.read.count, s.ops.read.bytes, s.ops.read.errors], [1, 8 * KiB, 0]);
  assert.deepEqual([s.ops.write.count, s.ops.write.bytes, s.ops.write.errors], [2, 4 * KiB, 1]);
  assert.deepEqual([s.ops.flush.count, s.ops.discard.count, s.ops.discard.errors, s.ops.other.count], [1, 1, 1, 0]);
  assert.ok(s.ops.read.latency.max > 0 && s.ops.read.latency.p50 >= s.ops.read.latency.max);
  assert.deepEqual(s.inflight, [0]);
  assert.ok(s.enabled && s.uptimeSec >= 2);
  assert.equal(events.length, 4);
  const w = events.find((e) => e.result < 0)!;
  assert.deepEqual([w.op, w.offset, w.length, w.result], ['write', 1 << 19, 4 * KiB, -5]);
  stand.dispose();
});

test('engine: without a stats block nothing is counted and the device reads as disabled', async () => {
  const stand = serve('copy', memTarget(1 << 20), undefined);
  await stand.settle();
  stand.deliver(0, { op: U.UBLK_IO_OP_READ, off: 0, len: 4 * KiB, data: new Uint8Array(4 * KiB) });
  await stand.settle();
  assert.deepEqual(stand.commits, [{ tag: 0, result: 4 * KiB }]);
  const s = readStats({ id: 1, mode: 'copy', target: 't', startedAt: Date.now(), nrQueues: 2, buffers: [] });
  assert.equal(s.enabled, false);
  assert.equal(s.ops.read.count, 0);
  assert.deepEqual(s.inflight, [0, 0]);
  stand.dispose();
});

test('in-flight: a request held by the target shows on its queue until committed', async () => {
  const sab = newStatsBuffer(1);
  let release!: () => void;
  const t: Target = { size: 1 << 20, read: (b) => new Promise<number>((r) => (release = () => r(b.byteLength))), write: (b) => b.byteLength };
  const stand = serve('copy', t, sab);
  await stand.settle();
  stand.deliver(2, { op: U.UBLK_IO_OP_READ, off: 0, len: 4 * KiB, data: new Uint8Array(4 * KiB) });
  await stand.settle();
  const read = () => readStats({ id: 1, mode: 'copy', target: 't', startedAt: Date.now(), nrQueues: 1, buffers: [sab] });
  assert.deepEqual(read().inflight, [1]);
  release();
  await stand.settle();
  assert.deepEqual(read().inflight, [0]);
  assert.equal(read().ops.read.count, 1);
  stand.dispose();
});
