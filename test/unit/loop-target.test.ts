// The loop target without a kernel: integrity file checks and initialisation, FLUSH of both files,
// write-zeroes and discard fallbacks (real io_uring on tmpfs), and same-file checks across opens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { prepare, create, type LoopConfig } from '../../src/targets/loop/index.js';
import * as stripe from '../../src/targets/stripe/index.js';
import { hostContext } from '../../src/testing/host.js';
import { FileIo } from '../../src/uring/file-io.js';
import type { Target, TargetContext } from '../../src/target/types.js';
import * as IO from '../../src/uapi/io-uring.js';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ublkit-loop-'));
process.on('exit', () => fs.rmSync(work, { recursive: true, force: true }));
const EOPNOTSUPP = -95;

function sparse(name: string, bytes: number, dir = work): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, '');
  fs.truncateSync(f, bytes);
  return f;
}
const hash = (f: string) => createHash('sha256').update(fs.readFileSync(f)).digest('hex');
const integrity = (file: string, metaFile: string, extra: Partial<LoopConfig> = {}): LoopConfig =>
  ({ file, metaFile, metadataSize: 8, csumType: 2, integrityFlags: 2, ...extra });

/** A FileIo stand-in: records calls; fallocate answers from `fallocate`, read/write go to the file. */
function spyIo(fallocate: (mode: number) => number = () => 0) {
  const calls: Array<{ op: string; fd: number; mode?: number; off?: number; len?: number }> = [];
  const io = {
    fsync: async (fd: number) => (calls.push({ op: 'fsync', fd }), 0),
    fallocate: async (fd: number, mode: number, off: number, len: number) => (calls.push({ op: 'fallocate', fd, mode, off, len }), fallocate(mode)),
    write: async (fd: number, buf: Uint8Array, off: number) => (calls.push({ op: 'write', fd, off, len: buf.byteLength }), fs.writeSync(fd, buf, 0, buf.byteLength, off)),
    read: async (fd: number, buf: Uint8Array, off: number) => (calls.push({ op: 'read', fd, off, len: buf.byteLength }), fs.readSync(fd, buf, 0, buf.byteLength, off)),
  };
  return { calls, ctx: { io: io as unknown as FileIo, ring: undefined, queues: [0], thread: 0 } as unknown as TargetContext };
}

test('integrity file: a never-written (sparse) file is initialised to 0xff, once', () => {
  const data = sparse('i1.img', 1 << 20);
  const meta = sparse('i1.pi', (1 << 20) / 512 * 8);
  const cfg = prepare(integrity(data, meta));
  assert.ok(fs.readFileSync(meta).every((b) => b === 0xff));
  const t = create(cfg);
  assert.equal(t.size, 1 << 20);
  t.close!();
});

test('integrity file: an empty file is extended to the size the device needs and initialised', () => {
  const data = sparse('i2.img', 1 << 20);
  const meta = sparse('i2.pi', 0);
  prepare(integrity(data, meta));
  const b = fs.readFileSync(meta);
  assert.equal(b.length, (1 << 20) / 512 * 8);
  assert.ok(b.every((x) => x === 0xff));
});

test('integrity file: a re-attach leaves stored metadata untouched', () => {
  const data = sparse('i3.img', 1 << 20);
  const meta = sparse('i3.pi', (1 << 20) / 512 * 8);
  prepare(integrity(data, meta));
  // PI as a previous run stored it for block 3.
  const fd = fs.openSync(meta, 'r+');
  fs.writeSync(fd, Buffer.from([0x12, 0x34, 0, 0, 0, 0, 0, 3]), 0, 8, 3 * 8);
  fs.closeSync(fd);
  const before = hash(meta);
  prepare(integrity(data, meta));
  assert.equal(hash(meta), before, 'add after a reboot must not wipe stored PI');
  prepare(integrity(data, meta, { initMeta: false }));
  assert.equal(hash(meta), before);
});

test('integrity file: swapped, too small, or the data file itself: one-line error, nothing written', () => {
  const data = sparse('i4.img', 1 << 20);
  fs.writeFileSync(data, Buffer.alloc(1 << 20, 0x5a));
  const meta = sparse('i4.pi', (1 << 20) / 512 * 8);
  const dataHash = hash(data);
  const metaHash = hash(meta);
  assert.throws(() => prepare(integrity(meta, data)), (e: Error) => /larger than the data file.*swapped/.test(e.message) && !e.message.includes('\n'));
  assert.equal(hash(data), dataHash, 'the data image must survive swapped arguments');
  assert.equal(hash(meta), metaHash);
  const short = sparse('i4s.pi', 100);
  fs.writeFileSync(short, Buffer.alloc(100, 1));
  assert.throws(() => prepare(integrity(data, short)), /too small: 100 bytes, needs 16384/);
  assert.deepEqual([...fs.readFileSync(short)], Array(100).fill(1));
  assert.throws(() => prepare(integrity(data, data)), /larger than the data file|data file .* itself/);
  assert.equal(hash(data), dataHash);
  // Recovery never initialises: an empty file is simply too small there.
  assert.throws(() => prepare(integrity(data, sparse('i4e.pi', 0), { initMeta: false })), /too small/);
});

test('integrity: tuples at (offset / interval) * metadataSize; FLUSH syncs the data and the integrity file', async () => {
  const data = sparse('i5.img', 1 << 20);
  const meta = sparse('i5.pi', (1 << 20) / 512 * 8);
  const t = create(prepare(integrity(data, meta)));
  const { calls, ctx } = spyIo();
  await t.open!(ctx);
  const tuple = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
  assert.equal(await t.writeIntegrity!(tuple, 4096), 0);
  assert.deepEqual([...fs.readFileSync(meta).subarray(64, 80)], [...tuple], 'interval 8 (512-byte blocks here) holds the first tuple');
  await t.flush!();
  const synced = calls.filter((c) => c.op === 'fsync').map((c) => c.fd);
  const metaFd = calls.find((c) => c.op === 'write')!.fd;
  assert.equal(synced.length, 2, 'one fsync per file');
  assert.ok(synced.includes(metaFd), 'the integrity file is synced by FLUSH');
  t.close!();
});

test('write-zeroes without FALLOC_FL_ZERO_RANGE (tmpfs): the range reads back as zeroes', async (t) => {
  if (!fs.existsSync('/dev/shm')) return t.skip('no /dev/shm tmpfs here');
  const dir = fs.mkdtempSync('/dev/shm/ublkit-loop-');
  const io = await hostContext();
  try {
    const f = path.join(dir, 'z.img');
    fs.writeFileSync(f, Buffer.alloc(4 << 20, 0xa5));
    const target: Target = create(prepare({ file: f }));
    await target.open!(io.ctx);
    assert.equal(await target.writeZeroes!(4096, 3 << 20, true), 0, 'NOUNMAP: zeroes written');
    assert.equal(await target.writeZeroes!((3 << 20) + 8192, 8192, false), 0, 'unmap allowed: hole punched');
    assert.equal(await target.discard!(0, 4096), 0);
    const b = fs.readFileSync(f);
    const zero = (a: number, n: number) => b.subarray(a, a + n).every((x) => x === 0);
    const pattern = (a: number, n: number) => b.subarray(a, a + n).every((x) => x === 0xa5);
    assert.ok(zero(4096, 3 << 20) && zero((3 << 20) + 8192, 8192), 'zeroed ranges read back as zeroes');
    assert.ok(pattern((3 << 20) + 4096, 4096) && pattern((3 << 20) + 16384, (1 << 20) - 16384), 'bytes around them kept');
    target.close!();
  } finally {
    io.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('write-zeroes with neither ZERO_RANGE nor PUNCH_HOLE: bounded writes over the full length; discard is a no-op', async () => {
  const f = sparse('z2.img', 8 << 20);
  fs.writeFileSync(f, Buffer.alloc(8 << 20, 0x77));
  const t = create(prepare({ file: f, buffered: true }));
  const { calls, ctx } = spyIo(() => EOPNOTSUPP);
  await t.open!(ctx);
  const len = (5 << 20) + 4096;
  assert.equal(await t.writeZeroes!(512, len, false), 0);
  const writes = calls.filter((c) => c.op === 'write');
  assert.ok(writes.every((w) => w.len! <= 1 << 20), 'each write at most 1 MiB');
  assert.equal(writes.reduce((s, w) => s + w.len!, 0), len, 'the whole range');
  const b = fs.readFileSync(f);
  assert.ok(b.subarray(512, 512 + len).every((x) => x === 0));
  assert.equal(b[511], 0x77);
  assert.equal(b[512 + len], 0x77);
  // Unsupported modes are not asked again; discard then succeeds without touching data.
  const n = calls.length;
  assert.equal(await t.writeZeroes!(0, 512, true), 0);
  assert.equal(calls.slice(n).filter((c) => c.op === 'fallocate').length, 0);
  assert.equal(await t.discard!(1 << 20, 4096), 0);
  assert.equal(fs.readFileSync(f)[(6 << 20)], 0x77);
  assert.ok(calls.some((c) => c.op === 'fallocate' && c.mode === (IO.FALLOC_FL_PUNCH_HOLE | IO.FALLOC_FL_KEEP_SIZE)));
  t.close!();
});

test('a backing path swapped to another file between prepare() and create() is refused (loop, integrity, stripe)', () => {
  const a = sparse('s-a.img', 1 << 20);
  const b = sparse('s-b.img', 1 << 20);
  const link = path.join(work, 's-link.img');
  fs.symlinkSync(a, link);
  const cfg = prepare({ file: link });
  create(cfg).close!();
  fs.unlinkSync(link);
  fs.symlinkSync(b, link);
  assert.throws(() => create(cfg), /s-link\.img is no longer the file opened at start-up/);

  const m = sparse('s-m.pi', (1 << 20) / 512 * 8);
  const m2 = sparse('s-m2.pi', (1 << 20) / 512 * 8);
  const mlink = path.join(work, 's-mlink.pi');
  fs.symlinkSync(m, mlink);
  const icfg = prepare(integrity(a, mlink));
  fs.renameSync(m2, m);
  assert.throws(() => create(icfg), /integrity file .*s-mlink\.pi is no longer the file/);

  const c = sparse('s-c.img', 1 << 20);
  const slink = path.join(work, 's-slink.img');
  fs.symlinkSync(c, slink);
  const scfg = stripe.prepare({ files: [a, slink] });
  fs.unlinkSync(slink);
  fs.symlinkSync(b, slink);
  assert.throws(() => stripe.create(scfg), /s-slink\.img is no longer the file/);
  assert.throws(() => stripe.prepare({ files: [a, a] }), /given twice/);
});
