// Host-level tests of the native addon (needs io_uring, not ublk); bounds checks: native-bounds.test.mjs.
// Run: node --test test/unit/native.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const addonPath = fileURLToPath(new URL('../../build/Release/ublkit.node', import.meta.url));
const native = createRequire(import.meta.url)('../../build/Release/ublkit.node');
const { constants: C } = native;

const IORING_OP_NOP = 0;
const IORING_OP_READ = 22;
const IORING_ENTER_GETEVENTS = 1;
const IORING_SETUP_CQSIZE = 1 << 3;
const IORING_SETUP_SQE128 = 1 << 10;
const IORING_REGISTER_EVENTFD = 4;
const IORING_REGISTER_BUFFERS2 = 15;
const IORING_RSRC_REGISTER_SPARSE = 1;

// Minimal JS-side ring driver: exactly what the TypeScript layer will do.
function openRing(entries = 8, flags = 0, cq = 0) {
  const r = native.setupRing(entries, flags, cq);
  const u32 = new Uint32Array(r.ring);
  const sqe = new DataView(r.sqes);
  const cqe = new DataView(r.ring);
  const sqeSize = flags & IORING_SETUP_SQE128 ? 128 : 64;
  function push({ opcode, fd = 0, off = 0n, addr = 0n, len = 0, userData }) {
    const tail = Atomics.load(u32, r.sqOff.tail >> 2);
    const idx = tail & u32[r.sqOff.ringMask >> 2];
    const base = idx * sqeSize;
    new Uint8Array(r.sqes, base, sqeSize).fill(0);
    sqe.setUint8(base + 0, opcode);
    sqe.setInt32(base + 4, fd, true);
    sqe.setBigUint64(base + 8, off, true);
    sqe.setBigUint64(base + 16, addr, true);
    sqe.setUint32(base + 24, len, true);
    sqe.setBigUint64(base + 32, BigInt(userData), true);
    u32[(r.sqOff.array >> 2) + idx] = idx;
    Atomics.store(u32, r.sqOff.tail >> 2, tail + 1);
  }
  function reap() {
    const out = [];
    let head = Atomics.load(u32, r.cqOff.head >> 2);
    const tail = Atomics.load(u32, r.cqOff.tail >> 2);
    const mask = u32[r.cqOff.ringMask >> 2];
    for (; head !== tail; head = (head + 1) >>> 0) {
      const o = r.cqOff.cqes + (head & mask) * 16;
      out.push({ userData: cqe.getBigUint64(o, true), res: cqe.getInt32(o + 8, true), flags: cqe.getUint32(o + 12, true) });
    }
    Atomics.store(u32, r.cqOff.head >> 2, head);
    return out;
  }
  return { r, push, reap, close: () => native.closeRing(r.fd) };
}

function tmpFile(bytes) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ublkit-native-'));
  const file = path.join(dir, 'data');
  fs.writeFileSync(file, bytes);
  return { file, dispose: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

// Run a snippet in a fresh node process (to observe exit / uncaught behaviour).
function runChild(code, timeout = 10000) {
  return spawnSync(process.execPath, ['-e', `const native = require(${JSON.stringify(addonPath)});\n${code}`],
    { encoding: 'utf8', timeout });
}

test('constants', () => {
  assert.equal(C.IORING_OFF_SQ_RING, 0);
  assert.equal(C.IORING_OFF_CQ_RING, 0x8000000);
  assert.equal(C.IORING_OFF_SQES, 0x10000000);
  assert.equal(C.PAGE_SIZE, 4096);
  for (const k of ['PROT_READ', 'PROT_WRITE', 'MAP_SHARED', 'MAP_PRIVATE', 'MAP_ANONYMOUS', 'MAP_POPULATE', 'MAP_HUGETLB', 'O_DIRECT', 'O_CLOEXEC'])
    assert.equal(typeof C[k], 'number', k);
});

test('setupRing + NOP round trip through the mmapped rings', () => {
  const ring = openRing(8, 0, 0);
  const { r } = ring;
  assert.ok(r.fd >= 0);
  assert.equal(r.sqEntries, 8);
  assert.equal(r.cqEntries, 16);
  assert.ok(r.ring instanceof ArrayBuffer && r.sqes instanceof ArrayBuffer);
  assert.equal(r.sqes.byteLength, 8 * 64);
  assert.ok(r.ring.byteLength >= r.cqOff.cqes + 16 * 16);
  assert.ok(r.ring.byteLength >= r.sqOff.array + 8 * 4);
  assert.ok(r.features & 1, 'IORING_FEAT_SINGLE_MMAP');
  for (const k of ['head', 'tail', 'ringMask', 'ringEntries', 'flags', 'dropped', 'array']) assert.equal(typeof r.sqOff[k], 'number');
  for (const k of ['head', 'tail', 'ringMask', 'ringEntries', 'overflow', 'cqes', 'flags']) assert.equal(typeof r.cqOff[k], 'number');

  ring.push({ opcode: IORING_OP_NOP, userData: 42 });
  assert.equal(native.enter(r.fd, 1, 1, IORING_ENTER_GETEVENTS), 1);
  assert.deepEqual(ring.reap(), [{ userData: 42n, res: 0, flags: 0 }]);
  // Second lap proves head/tail bookkeeping works from JS.
  ring.push({ opcode: IORING_OP_NOP, userData: 7 });
  ring.push({ opcode: IORING_OP_NOP, userData: 8 });
  assert.equal(native.enter(r.fd, 2, 2, IORING_ENTER_GETEVENTS), 2);
  assert.deepEqual(ring.reap().map((c) => c.userData), [7n, 8n]);

  assert.equal(ring.close(), 0);
  assert.equal(r.ring.byteLength, 0, 'ring buffer detached after closeRing');
  assert.equal(r.sqes.byteLength, 0, 'sqes buffer detached after closeRing');
  assert.equal(native.closeRing(r.fd), -9, 'second closeRing -> -EBADF');
});

test('SQE128 and CQSIZE rings', () => {
  const ring = openRing(8, IORING_SETUP_SQE128, 0);
  assert.equal(ring.r.sqes.byteLength, 8 * 128);
  assert.ok(ring.r.flags & IORING_SETUP_SQE128);
  ring.push({ opcode: IORING_OP_NOP, userData: 1 });
  ring.push({ opcode: IORING_OP_NOP, userData: 2 });
  assert.equal(native.enter(ring.r.fd, 2, 2, IORING_ENTER_GETEVENTS), 2);
  assert.deepEqual(ring.reap().map((c) => [c.userData, c.res]), [[1n, 0], [2n, 0]]);
  ring.close();

  const big = native.setupRing(4, 0, 64);
  assert.equal(big.cqEntries, 64);
  assert.ok(big.flags & IORING_SETUP_CQSIZE);
  native.closeRing(big.fd);
});

test('setupRing throws with errno details', () => {
  assert.throws(() => native.setupRing(0, 0, 0), (e) => e.code === 'EINVAL' && e.errno === 22 && e.syscall === 'io_uring_setup');
});

test('enter/register/close return -errno instead of throwing', () => {
  const stale = native.eventfd(0);
  native.close(stale); // now a closed fd number
  assert.equal(native.enter(stale, 1, 0, 0), -9); // EBADF
  assert.equal(native.register(stale, IORING_REGISTER_EVENTFD, new Int32Array([0]), 1), -9);
  assert.equal(native.close(stale), -9);
  const ring = openRing();
  assert.equal(native.register(ring.r.fd, IORING_REGISTER_BUFFERS2, null, 32), -22); // no 32-byte arg: refused before the syscall
  ring.close();
});

test('IORING_OP_READ of a temp file into alloc() memory via addressOf', () => {
  const content = Buffer.from('hello from io_uring, '.repeat(10));
  const t = tmpFile(content);
  const fd = fs.openSync(t.file, 'r');
  const ring = openRing();
  try {
    const buf = native.alloc(4096, 4096);
    ring.push({ opcode: IORING_OP_READ, fd, off: 0n, addr: native.addressOf(buf), len: 4096, userData: 99 });
    assert.equal(native.enter(ring.r.fd, 1, 1, IORING_ENTER_GETEVENTS), 1);
    const [c] = ring.reap();
    assert.equal(c.userData, 99n);
    assert.equal(c.res, content.length);
    assert.deepEqual(Buffer.from(buf, 0, content.length), content);
    assert.equal(new Uint8Array(buf)[content.length], 0);

    // Read at offset 6 into the middle of the buffer through a view's address.
    const view = new Uint8Array(buf, 1000, 5);
    ring.push({ opcode: IORING_OP_READ, fd, off: 6n, addr: native.addressOf(view), len: 4, userData: 100 });
    assert.equal(native.enter(ring.r.fd, 1, 1, IORING_ENTER_GETEVENTS), 1);
    assert.equal(ring.reap()[0].res, 4);
    assert.equal(Buffer.from(buf, 1000, 4).toString(), 'from');
  } finally {
    ring.close();
    fs.closeSync(fd);
    t.dispose();
  }
});

test('addressOf honours byteOffset for every view kind', () => {
  const ab = native.alloc(256, 64);
  const base = native.addressOf(ab);
  assert.equal(typeof base, 'bigint');
  assert.equal(native.addressOf(new Uint8Array(ab, 16)), base + 16n);
  assert.equal(native.addressOf(new Uint32Array(ab, 32, 4)), base + 32n);
  assert.equal(native.addressOf(new BigUint64Array(ab, 64)), base + 64n);
  assert.equal(native.addressOf(new DataView(ab, 48)), base + 48n);
  assert.equal(native.addressOf(Buffer.from(ab, 8, 8)), base + 8n);
  assert.throws(() => native.addressOf(42), TypeError);
});

test('register(REGISTER_BUFFERS2, sparse) returns 0', () => {
  const ring = openRing();
  const reg = new DataView(new ArrayBuffer(32)); // struct io_uring_rsrc_register
  reg.setUint32(0, 16, true); // nr
  reg.setUint32(4, IORING_RSRC_REGISTER_SPARSE, true); // flags
  // resv2, data, tags = 0
  assert.equal(native.register(ring.r.fd, IORING_REGISTER_BUFFERS2, reg.buffer, 32), 0);
  ring.close();
});

test('eventfd + REGISTER_EVENTFD + watch: completion wakes the event loop', async () => {
  const ring = openRing();
  const efd = native.eventfd(0);
  try {
    assert.equal(native.register(ring.r.fd, IORING_REGISTER_EVENTFD, new Int32Array([efd]), 1), 0);
    let calls = 0;
    let wake;
    const h = native.watch(efd, () => { calls++; wake?.(); });
    assert.equal(typeof h, 'number');
    assert.throws(() => native.watch(efd, () => {}), (e) => e.code === 'EEXIST');
    const fired = new Promise((res) => { wake = res; });
    ring.push({ opcode: IORING_OP_NOP, userData: 5 });
    assert.equal(native.enter(ring.r.fd, 1, 0, 0), 1);
    await fired;
    assert.equal(calls, 1);
    assert.deepEqual(ring.reap().map((c) => c.userData), [5n]);
    // Microtasks queued inside the callback run as soon as it returns
    // (napi_make_callback semantics), before any macrotask.
    const order = [];
    const again = new Promise((res) => {
      wake = () => {
        order.push('cb');
        setImmediate(() => { order.push('immediate'); res(); });
        queueMicrotask(() => order.push('microtask'));
        Promise.resolve().then(() => order.push('then'));
      };
    });
    ring.push({ opcode: IORING_OP_NOP, userData: 6 });
    native.enter(ring.r.fd, 1, 0, 0);
    await again;
    assert.deepEqual(order, ['cb', 'microtask', 'then', 'immediate']);
    assert.equal(native.watchRef(h, false), true);
    assert.equal(native.watchRef(h, true), true);
    assert.equal(native.unwatch(h), true);
    assert.equal(native.unwatch(h), false, 'second unwatch is a no-op');
    assert.equal(native.watchRef(h, true), false);
    ring.push({ opcode: IORING_OP_NOP, userData: 7 });
    native.enter(ring.r.fd, 1, 0, 0);
    await new Promise((res) => setTimeout(res, 50));
    assert.equal(calls, 2, 'no callback after unwatch');
  } finally {
    ring.close();
    native.close(efd);
  }
});

test('process exits after unwatch, and with an unref-ed watch', () => {
  const common = `
    const r = native.setupRing(4, 0, 0);
    const efd = native.eventfd(0);
    native.register(r.fd, 4, new Int32Array([efd]), 1);
    const u32 = new Uint32Array(r.ring);
    const tail = u32[r.sqOff.tail >> 2], idx = tail & u32[r.sqOff.ringMask >> 2];
    new Uint8Array(r.sqes, idx * 64, 64).fill(0);
    u32[(r.sqOff.array >> 2) + idx] = idx;
    Atomics.store(u32, r.sqOff.tail >> 2, tail + 1);`;
  const a = runChild(`${common}
    const h = native.watch(efd, () => { console.log('fired'); native.unwatch(h); });
    native.enter(r.fd, 1, 0, 0);`);
  assert.equal(a.status, 0, a.stderr);
  assert.equal(a.stdout.trim(), 'fired');
  const b = runChild(`${common}
    const h = native.watch(efd, () => {});
    native.watchRef(h, false);`);
  assert.equal(b.status, 0, b.stderr);
  assert.equal(b.signal, null);
});

test('an exception thrown by a watch callback becomes uncaughtException', () => {
  const res = runChild(`
    const efd = native.eventfd(1);
    process.on('uncaughtException', (e) => { console.log('caught', e.message); native.unwatch(h); });
    const h = native.watch(efd, () => { throw new Error('boom'); });`);
  assert.equal(res.status, 0, res.stderr);
  assert.equal(res.stdout.trim(), 'caught boom');
});

test('watch inside worker_threads runs on the worker loop; terminate is clean', async () => {
  const code = `
    const { parentPort } = require('node:worker_threads');
    const native = require(${JSON.stringify(addonPath)});
    const r = native.setupRing(4, 0, 0);
    const efd = native.eventfd(0);
    native.register(r.fd, 4, new Int32Array([efd]), 1);
    const u32 = new Uint32Array(r.ring);
    let fired = 0;
    native.watch(efd, () => {
      fired++;
      parentPort.postMessage({ tid: native.gettid(), fired, tail: Atomics.load(u32, r.cqOff.tail >> 2) });
    });
    const tail = u32[r.sqOff.tail >> 2], idx = tail & u32[r.sqOff.ringMask >> 2];
    new Uint8Array(r.sqes, idx * 64, 64).fill(0);
    u32[(r.sqOff.array >> 2) + idx] = idx;
    Atomics.store(u32, r.sqOff.tail >> 2, tail + 1);
    native.enter(r.fd, 1, 0, 0);`;
  const mainTid = native.gettid();
  assert.equal(mainTid, process.pid);
  // Two workers at once, each with its own loop, ring and watch (left active).
  const workers = [0, 1].map(() => new Worker(code, { eval: true }));
  const msgs = await Promise.all(workers.map((w) => new Promise((res, rej) => { w.once('message', res); w.once('error', rej); })));
  for (const m of msgs) {
    assert.equal(m.fired, 1);
    assert.equal(m.tail, 1);
    assert.notEqual(m.tid, mainTid);
  }
  assert.notEqual(msgs[0].tid, msgs[1].tid);
  // terminate() with the watch and ring still live exercises the env cleanup hook.
  const codes = await Promise.all(workers.map((w) => w.terminate()));
  assert.deepEqual(codes, [1, 1]);
  // The main thread's instance of the addon is unaffected.
  const ring = openRing();
  ring.push({ opcode: IORING_OP_NOP, userData: 3 });
  assert.equal(native.enter(ring.r.fd, 1, 1, IORING_ENTER_GETEVENTS), 1);
  assert.equal(ring.reap()[0].userData, 3n);
  ring.close();
});

test('worker that finishes on its own with an unref-ed watch exits', async () => {
  const w = new Worker(`
    const native = require(${JSON.stringify(addonPath)});
    const efd = native.eventfd(0);
    native.watchRef(native.watch(efd, () => {}), false);`, { eval: true });
  const code = await new Promise((res, rej) => { w.once('exit', res); w.once('error', rej); });
  assert.equal(code, 0);
});

test('statxDio on a file in /tmp', () => {
  const t = tmpFile(Buffer.alloc(12345, 1));
  try {
    const s = native.statxDio(t.file);
    assert.equal(s.size, 12345n);
    assert.equal(s.mode & 0o170000, 0o100000);
    assert.ok(s.blksize > 0);
    assert.equal(typeof s.memAlign, 'number');
    assert.equal(typeof s.offsetAlign, 'number');
  } finally {
    t.dispose();
  }
  assert.throws(() => native.statxDio('/nonexistent/ublkit'), (e) => e.code === 'ENOENT' && e.errno === 2 && e.syscall === 'statx');
  assert.throws(() => native.statxDio('/'.repeat(5000)), (e) => e.code === 'ENAMETOOLONG');
});

test('mmap/munmap of an anonymous region', () => {
  const len = 2 * C.PAGE_SIZE;
  const ab = native.mmap(-1, len, C.PROT_READ | C.PROT_WRITE, C.MAP_PRIVATE | C.MAP_ANONYMOUS, 0n);
  assert.equal(ab.byteLength, len);
  assert.equal(native.addressOf(ab) % BigInt(C.PAGE_SIZE), 0n);
  const u8 = new Uint8Array(ab);
  assert.equal(u8[len - 1], 0);
  u8.fill(0xab);
  assert.equal(u8[len - 1], 0xab);
  native.munmap(ab);
  assert.equal(ab.byteLength, 0, 'detached after munmap');
  native.munmap(ab); // no-op on a detached buffer
  assert.throws(() => native.munmap(native.alloc(4096, 4096)), (e) => e.code === 'EINVAL' && e.syscall === 'munmap');
  const shared = native.mmap(-1, len, C.PROT_READ | C.PROT_WRITE, C.MAP_SHARED | C.MAP_ANONYMOUS, 0);
  const alias = new Uint8Array(shared, C.PAGE_SIZE);
  alias[0] = 1;
  native.munmap(shared);
  assert.equal(alias.length, 0, 'views of an unmapped region are detached too');
  assert.throws(() => native.mmap(-1, 4096, C.PROT_READ, C.MAP_SHARED, 0), (e) => e.code === 'EBADF' && e.syscall === 'mmap');
});

test('alloc() returns aligned, zeroed memory', () => {
  for (const align of [8, 512, 4096, 65536]) {
    const ab = native.alloc(1000, align);
    assert.equal(ab.byteLength, 1000);
    assert.equal(native.addressOf(ab) % BigInt(align), 0n, `align ${align}`);
    assert.ok(new Uint8Array(ab).every((b) => b === 0));
  }
  assert.throws(() => native.alloc(100, 3), (e) => e.code === 'EINVAL');
});

test('ioctl helpers, eventfd, gettid', () => {
  const t = tmpFile(Buffer.alloc(1));
  const fd = fs.openSync(t.file, 'r');
  try {
    assert.throws(() => native.ioctl64(fd, 0x80081272), (e) => e.code === 'ENOTTY' && e.syscall === 'ioctl');
    assert.throws(() => native.ioctlInt(fd, 0x1268), (e) => e.code === 'ENOTTY');
  } finally {
    fs.closeSync(fd);
    t.dispose();
  }
  const efd = native.eventfd();
  assert.ok(efd > 2);
  assert.equal(native.close(efd), 0);
  assert.equal(native.gettid(), process.pid);
});
