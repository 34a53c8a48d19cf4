// The built-in filters and compose(), each through checkTarget plus what it alone promises.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { checkTarget, hostContext } from '../../src/testing/index.js';
import { compose, applyFilters, builtinFilters as F } from '../../src/filters/index.js';
import * as memory from '../../src/targets/memory/index.js';
import * as loop from '../../src/targets/loop/index.js';
import type { Target } from '../../src/target/types.js';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ublkit-filters-'));
process.on('exit', () => fs.rmSync(work, { recursive: true, force: true }));
const hash = (f: string) => createHash('sha256').update(fs.readFileSync(f)).digest('hex');

function sparse(name: string, bytes: number, fill = false): string {
  const f = path.join(work, name);
  fs.writeFileSync(f, '');
  fs.truncateSync(f, bytes);
  // Some non-zero content, so that an overlay that reads zeroes instead of the base is caught.
  if (fill) {
    const fd = fs.openSync(f, 'r+');
    for (let o = 0; o < bytes; o += 65536) fs.writeSync(fd, Buffer.alloc(4096, 1 + ((o >> 16) & 0x7f)), 0, 4096, o);
    fs.closeSync(fd);
  }
  return f;
}

const mem = (size = '2M') => memory.create({ size });

test('compose: undefined members pass through, caps and limits included, results contract-checked', async () => {
  const base: Target = {
    size: 1 << 20, caps: { flush: true }, limits: { logicalBlockShift: 12 },
    read: (buf) => buf.byteLength + 1, write: (buf) => buf.byteLength, flush: () => -28,
    route: (o, l) => [{ fd: 9, offset: o, length: l, bufOffset: 0 }],
  };
  const t = compose(base, (next) => ({ write: (b, o, f) => next.write(b, o, f) }));
  assert.deepEqual(t.caps, { flush: true });
  assert.equal(t.limits?.logicalBlockShift, 12);
  assert.equal(t.route!(0, 8)[0].fd, 9);
  // More than asked is EIO; a negative errno becomes a throw with that errno.
  assert.throws(() => t.read(new Uint8Array(8), 0), { code: 'EIO' });
  assert.throws(() => t.flush!(), { code: 'ENOSPC' });
  // A class target keeps its prototype's methods.
  class Disk { size = 4096; read(b: Uint8Array) { b.fill(1); return b.byteLength; } write(b: Uint8Array) { return b.byteLength; } }
  const c = compose(new Disk() as Target, F.delay);
  const b = new Uint8Array(512);
  assert.equal(await c.read(b, 0), 512);
  assert.equal(b[0], 1);
});

test('compose: the first filter is nearest to the kernel; open and close are chained', async () => {
  const seen: string[] = [];
  const tag = (n: string) => (next: Target) => ({
    read: (b: Uint8Array, o: number) => (seen.push(n), next.read(b, o)),
    open: () => void seen.push(`open ${n}`),
    close: () => void seen.push(`close ${n}`),
  });
  const t = compose({ ...mem('1M'), open: () => void seen.push('open disk'), close: () => void seen.push('close disk') }, tag('a'), tag('b'));
  await t.open!({} as never);
  t.read(new Uint8Array(512), 0);
  await t.close!();
  assert.deepEqual(seen, ['open disk', 'open b', 'open a', 'a', 'b', 'close a', 'close b', 'close disk']);
});

test('readonly: reads pass, writes fail with EROFS, caps.readOnly', async () => {
  const t = compose(mem(), F.readonly);
  assert.equal(t.caps?.readOnly, true);
  assert.throws(() => t.write(new Uint8Array(512), 0, { fua: false }), { code: 'EROFS' });
  const r = await checkTarget(t, { ops: 300 });
  assert.equal(r.ops.write, 0);
});

test('offset: a window of the target, route remapped', async () => {
  const buffer = new SharedArrayBuffer(4 << 20);
  const t = compose(memory.create({ size: 4 << 20, buffer }), [F.offset, { offset: '1M', range: '2M' }]);
  assert.equal(t.size, 2 << 20);
  await checkTarget(t, { ops: 800, seed: 4 });
  const raw = new Uint8Array(buffer);
  assert.ok(raw.subarray(0, 1 << 20).every((x) => x === 0), 'nothing written before the window');
  assert.ok(raw.subarray(3 << 20).every((x) => x === 0), 'nothing written after the window');
  const routed = compose({ ...mem('4M'), route: (o, l) => [{ fd: 3, offset: o, length: l, bufOffset: 0 }] }, [F.offset, { offset: 8192, range: 65536 }]);
  assert.deepEqual(routed.route!(512, 4096), [{ fd: 3, offset: 8704, length: 4096, bufOffset: 0 }]);
  assert.throws(() => compose(mem('1M'), [F.offset, { offset: '1M', range: '1M' }]), /not inside/);
  assert.throws(() => compose(mem('1M'), [F.offset, { offset: 100 }]), /multiples/);
  assert.throws(() => compose(mem('1M'), [F.offset, { ofset: 512 }]), /no option 'ofset'/);
});

test('delay: each request waits, route is off', async () => {
  const t = compose({ ...mem('1M'), route: () => [] }, [F.delay, { ms: 20 }]);
  assert.equal(t.route, undefined);
  const t0 = performance.now();
  await t.read(new Uint8Array(512), 0);
  assert.ok(performance.now() - t0 >= 19);
  await checkTarget(compose(mem('1M'), [F.delay, { ms: 1 }]), { ops: 100, depth: 8 });
});

test('error: a seeded share of writes fails with the errno; no wrong data reaches a read', async () => {
  const t = compose(mem(), [F.error, { rate: 0.2, op: 'write', errno: 'ENOSPC', seed: 9 }]);
  const r = await checkTarget(t, { ops: 1000, seed: 9 });
  assert.ok(r.errors.write > 0 && r.errors.read === 0);
  assert.equal(r.errnos.ENOSPC, r.errors.write);
  // Same seeds, same failures.
  const again = await checkTarget(compose(mem(), [F.error, { rate: 0.2, op: 'write', errno: 'ENOSPC', seed: 9 }]), { ops: 1000, seed: 9 });
  assert.equal(again.errors.write, r.errors.write);
});

test('error: a byte range, and a trigger file', async () => {
  const t = compose(mem('1M'), [F.error, { from: 4096, to: 8192 }]);
  const b = new Uint8Array(512);
  assert.equal(t.read(b, 0), 512);
  assert.throws(() => t.read(b, 4096), { code: 'EIO' });
  assert.throws(() => t.read(new Uint8Array(1024), 3584), { code: 'EIO' });
  assert.equal(t.read(b, 8192), 512);
  const trigger = path.join(work, 'trigger');
  const f = compose(mem('1M'), [F.error, { file: trigger }]);
  assert.equal(f.read(b, 0), 512);
  fs.writeFileSync(trigger, '');
  assert.throws(() => f.read(b, 0), { code: 'EIO' });
  assert.throws(() => compose(mem('1M'), [F.error, { errno: 'ENOPE' }]), /not an errno name/);
});

test('cow in memory over loop: the base file is never written; commit merges the overlay', async () => {
  const file = sparse('base.img', 2 << 20, true);
  const before = hash(file);
  const host = await hostContext();
  const base = loop.create(loop.prepare({ file }));
  const t = compose(base, F.cow);
  try {
    await checkTarget(t, { ops: 1000, seed: 6, context: host.ctx });
    assert.equal(hash(file), before, 'base file unchanged');
    // What the overlay reads as now is what the base holds after commit.
    const want = host.alloc(2 << 20);
    for (let o = 0; o < want.byteLength; o += 65536) await t.read(want.subarray(o, o + 65536), o);
    await (t.commit as () => Promise<void>)();
    assert.deepEqual(new Uint8Array(fs.readFileSync(file)), want);
  } finally {
    await t.close?.();
    host.close();
  }
});

test('cow with an overlay file over loop: flushes the overlay, never the base', async () => {
  const file = sparse('base2.img', 2 << 20, true);
  const overlay = path.join(work, 'overlay.img');
  const before = hash(file);
  const t = compose(loop.create(loop.prepare({ file, buffered: true })), [F.cow, { file: overlay }]);
  try {
    const r = await checkTarget(t, { ops: 800, seed: 8, depth: 16 });
    assert.ok(r.ops.flush > 0);
    assert.equal(hash(file), before);
    assert.equal(fs.statSync(overlay).size, 2 << 20);
  } finally {
    await t.close?.();
  }
  // The overlay is scratch: a non-empty file is never taken over, and building a stack makes none.
  const again = compose(loop.create(loop.prepare({ file, buffered: true })), [F.cow, { file: overlay }]);
  const host = await hostContext();
  try {
    await assert.rejects(async () => again.open!(host.ctx), /exists and is not empty/);
  } finally {
    await again.close?.();
    host.close();
  }
  const unopened = path.join(work, 'never.img');
  compose(mem('1M'), [F.cow, { file: unopened }]);
  assert.equal(fs.existsSync(unopened), false);
});

test('rate: iops and bandwidth budgets hold', async () => {
  const t = compose(mem('1M'), [F.rate, { iops: 200 }]);
  const t0 = performance.now();
  await Promise.all(Array.from({ length: 21 }, (_, i) => t.read(new Uint8Array(512), i * 512)));
  const ms = performance.now() - t0;
  assert.ok(ms >= 95 && ms < 3000, `21 requests at 200 IOPS took ${ms} ms`);
  const bw = compose(mem('1M'), [F.rate, { read_bps: '1M' }]);
  const t1 = performance.now();
  await Promise.all(Array.from({ length: 5 }, (_, i) => bw.read(new Uint8Array(65536), i * 65536)));
  assert.ok(performance.now() - t1 >= 240, 'five 64 KiB reads at 1 MiB/s take at least 4/16 s');
  await checkTarget(compose(mem('1M'), [F.rate, { bps: '64M' }]), { ops: 200 });
});

test('log: one JSON line per request', async () => {
  const file = path.join(work, 'log.jsonl');
  const t = compose(mem('1M'), [F.log, { file }]);
  const r = await checkTarget(t, { ops: 50 });
  await t.close?.();
  const lines = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const sent = Object.values(r.ops).reduce((a, b) => a + b, 0);
  assert.ok(lines.length >= sent, `${lines.length} lines for ${sent} requests (plus the harness's full reads)`);
  assert.ok(lines.some((l) => l.op === 'write' && typeof l.ms === 'number'));
});

test('applyFilters: a spec list, unknown names refused', () => {
  const t = applyFilters(mem('1M'), [{ name: 'readonly' }, { name: 'offset', config: { offset: '512K' } }]);
  assert.equal(t.size, 512 * 1024);
  assert.equal(t.caps?.readOnly, true);
  assert.throws(() => applyFilters(mem('1M'), [{ name: 'nope' }]), /unknown filter 'nope'/);
});

test('CLI: --filter NAME[:key=value,...], repeatable, in order, into the target spec', async () => {
  const { parseArgs } = await import('../../src/cli/args.js');
  const { targetSpec } = await import('../../src/cli/targets.js');
  const a = parseArgs(['add', '-t', 'memory', '-s', '1M', '--filter', 'error:rate=0.1,op=write,errno=EIO', '--filter=readonly']);
  assert.deepEqual(targetSpec(a).filters, [
    { name: 'error', config: { rate: '0.1', op: 'write', errno: 'EIO' } },
    { name: 'readonly', config: {} },
  ]);
  assert.equal(targetSpec(parseArgs(['add', '-t', 'null'])).filters, undefined);
  assert.throws(() => targetSpec(parseArgs(['add', '-t', 'null', '--filter', 'nope'])), /unknown filter 'nope'/);
  assert.throws(() => targetSpec(parseArgs(['add', '-t', 'null', '--filter', 'offset:1M'])), /expected key=value/);
  // String values from the command line work as the library's numbers do.
  const t = applyFilters(mem('2M'), targetSpec(parseArgs(['add', '-t', 'null', '--filter', 'offset:offset=1M,range=512K'])).filters);
  assert.equal(t.size, 512 * 1024);
});

test('filters over a target with integrity: only one that maps the tuples (offset) may go over it', async () => {
  const written: number[] = [];
  const t: Target = {
    size: 1 << 20,
    integrity: { metadataSize: 8 },
    read: (buf) => buf.byteLength,
    write: (buf) => buf.byteLength,
    readIntegrity: () => 0,
    writeIntegrity: (_buf, off) => void written.push(off),
  };
  for (const name of ['readonly', 'cow', 'error', 'delay']) {
    assert.throws(() => compose(t, [F[name], {}]), /does not carry integrity metadata/, name);
  }
  const shifted = compose(t, [F.offset, { offset: 4096, range: 65536 }]);
  await shifted.writeIntegrity!(new Uint8Array(8), 512);
  assert.deepEqual(written, [4096 + 512]);
});

test('readonly turns route off: a routing target\'s writes cannot reach its files past the filter', () => {
  const t: Target = {
    size: 1 << 20,
    read: (buf) => buf.byteLength,
    write: (buf) => buf.byteLength,
    route: (offset, length) => [{ fd: 3, offset, length, bufOffset: 0 }],
  };
  const ro = compose(t, F.readonly);
  assert.equal(ro.route, undefined);
  assert.throws(() => ro.write(new Uint8Array(512), 0, { fua: false }), /EROFS|read-only/);
});

test('readsZeroes stays only while read() is the target\'s own: a filter with a read of its own drops it', async () => {
  const nul = await import('../../src/targets/null/index.js');
  const fi = await import('../../src/targets/fault-inject/index.js');
  assert.equal(compose(nul.create()).readsZeroes, true);
  assert.equal(compose(nul.create(), F.readonly).readsZeroes, true, 'readonly passes reads through');
  assert.equal(compose(nul.create(), [F.delay, { ms: 1 }]).readsZeroes, undefined);
  assert.equal(compose(nul.create(), [F.error, { rate: 0.1 }]).readsZeroes, undefined);
  assert.equal(fi.create({ delayUs: 100 }).readsZeroes, undefined, 'fault_inject must delay its reads');
  assert.equal(fi.create({}).readsZeroes, true);
});
