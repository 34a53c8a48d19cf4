// The queue engine's request state machine against a scripted driver (test/helpers/stand-in.ts):
// short passes, broken links, partial NEED_GET_DATA copies, CQ overflow, a refused command.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { QueueEngine, kernelCopiesCmdSqe } from '../../src/ublk/queue.js';
import type { DataMode } from '../../src/ublk/modes.js';
import type { Target } from '../../src/target/types.js';
import * as U from '../../src/uapi/ublk.js';
import * as IO from '../../src/uapi/io-uring.js';
import { StandIn, type StandOptions } from '../helpers/stand-in.js';
import { countResult, statusResult, wholeResult } from '../../src/target/result.js';
import { UblkError } from '../../src/errors.js';

const KiB = 1024;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ublkit-engine-unit-'));

function pattern(seed: number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + seed * 31 + (i >> 9)) & 0xff;
  return b;
}

/** A pass-through target over a real file of `size` bytes filled with pattern(9). */
function fileTarget(name: string, size: number): Target & { fd: number; file: string } {
  const file = path.join(work, name);
  fs.writeFileSync(file, pattern(9, size));
  const fd = fs.openSync(file, 'r+');
  return {
    fd, file, size,
    read: (buf, off) => fs.readSync(fd, buf, 0, buf.byteLength, off),
    write: (buf, off) => fs.writeSync(fd, buf, 0, buf.byteLength, off),
    route: (offset, length) => [{ fd, offset, length, bufOffset: 0 }],
  };
}

function start(opts: StandOptions, target: Target): { stand: StandIn; engine: QueueEngine; errors: Error[] } {
  const stand = new StandIn(opts);
  const errors: Error[] = [];
  const engine = new QueueEngine({
    ublkcFd: -1, queueDepth: opts.depth, maxIoBufBytes: 256 * KiB, noFixedFd: true, mode: opts.mode, target,
    slots: Array.from({ length: opts.depth }, (_, t) => [0, t] as [number, number]),
    stand: { ring: stand.ring, descriptors: stand.descriptors }, onError: (e) => errors.push(e),
  });
  engine.start();
  return { stand, engine, errors };
}

const cmds = (stand: StandIn, op: number) => stand.log.filter(([o, c]) => o === IO.IORING_OP_URING_CMD && c === op).length;

for (const mode of ['zero-copy', 'auto-buf-reg', 'copy', 'get-data'] as DataMode[]) {
  test(`${mode}: a short file read is finished by another pass, the whole length committed`, async () => {
    const t = fileTarget(`short-${mode}.img`, 256 * KiB);
    // The first file IO moves a quarter of what it was asked (a multiple of 4 KiB), the rest whole.
    let calls = 0;
    const fileIo = (_op: string, _fd: number, _off: number, len: number) => (calls++ === 0 ? len / 4 : len);
    const { stand } = start({ depth: 2, mode, fileIo }, t);
    await stand.settle();
    const data = new Uint8Array(64 * KiB).fill(0xee);
    stand.deliver(1, { op: U.UBLK_IO_OP_READ, off: 32 * KiB, len: 64 * KiB, data });
    await stand.settle();
    assert.deepEqual(stand.commits, [{ tag: 1, result: 64 * KiB }]);
    assert.deepEqual(data, pattern(9, 256 * KiB).subarray(32 * KiB, 96 * KiB));
    if (mode === 'zero-copy') {
      // The buffer stayed registered across the broken link: one REGISTER, one UNREGISTER.
      assert.equal(cmds(stand, U.UBLK_U_IO_REGISTER_IO_BUF), 1);
      assert.equal(cmds(stand, U.UBLK_U_IO_UNREGISTER_IO_BUF), 1);
    }
    stand.dispose();
  });

  test(`${mode}: a file IO that stops moving ends the request with EIO, not a short count`, async () => {
    const t = fileTarget(`stuck-${mode}.img`, 256 * KiB);
    let calls = 0;
    const fileIo = (_op: string, _fd: number, _off: number, len: number) => (calls++ === 0 ? len / 4 : 0);
    const { stand } = start({ depth: 1, mode, fileIo }, t);
    await stand.settle();
    stand.deliver(0, { op: U.UBLK_IO_OP_WRITE, off: 0, len: 16 * KiB, data: pattern(1, 16 * KiB) });
    await stand.settle();
    assert.deepEqual(stand.commits, [{ tag: 0, result: -5 }]);
    if (mode === 'zero-copy') assert.equal(cmds(stand, U.UBLK_U_IO_UNREGISTER_IO_BUF), cmds(stand, U.UBLK_U_IO_REGISTER_IO_BUF));
    stand.dispose();
  });
}

for (const mode of ['copy', 'get-data'] as DataMode[]) {
  test(`${mode}: a target that moves 4 KiB per call is asked again until the request is whole`, async () => {
    const mem = new Uint8Array(256 * KiB);
    const calls: number[] = [];
    const t: Target = {
      size: mem.byteLength,
      read(buf, off) {
        calls.push(off);
        const n = Math.min(buf.byteLength, 4096);
        buf.set(mem.subarray(off, off + n));
        return Promise.resolve(n);
      },
      write(buf, off) {
        calls.push(off);
        const n = Math.min(buf.byteLength, 4096);
        mem.set(buf.subarray(0, n), off);
        return n;
      },
    };
    const { stand } = start({ depth: 2, mode }, t);
    await stand.settle();
    const w = pattern(2, 32 * KiB);
    stand.deliver(0, { op: U.UBLK_IO_OP_WRITE, off: 8 * KiB, len: 32 * KiB, data: w });
    await stand.settle();
    const r = new Uint8Array(32 * KiB);
    stand.deliver(0, { op: U.UBLK_IO_OP_READ, off: 8 * KiB, len: 32 * KiB, data: r });
    await stand.settle();
    assert.deepEqual(stand.commits.map((c) => c.result), [32 * KiB, 32 * KiB]);
    assert.deepEqual(mem.subarray(8 * KiB, 40 * KiB), w);
    assert.deepEqual(r, w);
    assert.equal(calls.length, 16);
    stand.dispose();
  });
}

test('get-data: a WRITE that NEED_GET_DATA copied only in part fails, and writes nothing', async () => {
  const t = fileTarget('gd.img', 256 * KiB);
  const { stand } = start({ depth: 1, mode: 'get-data', getDataBytes: (_tag, len) => (len === 64 * KiB ? 16 * KiB : len) }, t);
  await stand.settle();
  // An earlier request leaves its bytes in the slot buffer.
  stand.deliver(0, { op: U.UBLK_IO_OP_WRITE, off: 128 * KiB, len: 32 * KiB, data: pattern(3, 32 * KiB) });
  await stand.settle();
  stand.deliver(0, { op: U.UBLK_IO_OP_WRITE, off: 0, len: 64 * KiB, data: pattern(4, 64 * KiB) });
  await stand.settle();
  // Never the stale slot bytes past the copy, and never a short count that 7.3 would take as whole.
  assert.deepEqual(stand.commits, [{ tag: 0, result: 32 * KiB }, { tag: 0, result: -5 }]);
  const file = fs.readFileSync(t.file);
  assert.deepEqual(new Uint8Array(file.subarray(0, 64 * KiB)), pattern(9, 64 * KiB), 'nothing was written');
  stand.dispose();
});

test('completions in the CQ overflow list are flushed even when nothing is left to submit', async () => {
  // A target that answers only once two requests are in: the second one's CQE overflowed.
  const waiting: Array<() => void> = [];
  const t: Target = {
    size: 1 << 20,
    read(buf) {
      buf.fill(0);
      return new Promise<number>((resolve) => {
        waiting.push(() => resolve(buf.byteLength));
        if (waiting.length === 2) for (const w of waiting.splice(0)) w();
      });
    },
    write: (buf) => buf.byteLength,
  };
  const { stand } = start({ depth: 2, mode: 'copy', cqSize: 1 }, t);
  await stand.settle();
  stand.deliver(0, { op: U.UBLK_IO_OP_READ, off: 0, len: 4096, data: new Uint8Array(4096) });
  stand.deliver(1, { op: U.UBLK_IO_OP_READ, off: 4096, len: 4096, data: new Uint8Array(4096) });
  await stand.settle();
  assert.deepEqual(stand.commits.map((c) => c.tag).sort(), [0, 1]);
  stand.dispose();
});

test('a command the driver refuses stops the thread loudly: requests in hand finish, then the ring closes', async () => {
  // A refused COMMIT leaves its request owned by the server for good; serving on would hang that
  // client IO, so the engine fail-stops (the kernel then fails or requeues what it served).
  const failCmd = (op: number, tag: number) => (op === U.UBLK_U_IO_COMMIT_AND_FETCH_REQ && tag === 0 ? -22 : undefined);
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const t: Target = {
    size: 1 << 20,
    read: (buf, off) => (off === 0 ? buf.fill(0).byteLength : gate.then(() => buf.fill(0).byteLength)),
    write: (buf) => buf.byteLength,
  };
  const { stand, engine, errors } = start({ depth: 2, mode: 'copy', failCmd }, t);
  let ended = false;
  void engine.done.then(() => (ended = true));
  await stand.settle();
  stand.deliver(1, { op: U.UBLK_IO_OP_READ, off: 4096, len: 4096, data: new Uint8Array(4096) });
  stand.deliver(0, { op: U.UBLK_IO_OP_READ, off: 0, len: 4096, data: new Uint8Array(4096) });
  await stand.settle();
  assert.equal(errors.length, 1);
  assert.match(errors[0].message, /tag 0 failed: EINVAL; this thread stops serving/);
  assert.equal(ended, false, 'tag 1 still holds a request');
  release();
  await stand.settle();
  assert.deepEqual(stand.commits.filter((c) => c.tag === 1), [{ tag: 1, result: 4096 }], 'the request in hand was finished');
  assert.equal(ended, true, 'then the engine ended');
  assert.equal(engine.failure, errors[0], 'and says it failed, for the device to let go');
  stand.dispose();
});

test('one result contract: counts 1..len pass, 0 and over-reports are EIO, errnos and rejections pass through', async () => {
  assert.equal(countResult(4096, 4096), 4096);
  assert.equal(countResult(512, 4096), 512);
  assert.equal(countResult(0, 4096), -5, '0 bytes done would be re-sent forever');
  assert.equal(countResult(8192, 4096), -5, 'more than asked');
  assert.equal(countResult(1.5, 4096), -5);
  assert.equal(countResult(undefined, 4096), -5);
  assert.equal(countResult(-28, 4096), -28, 'a negative errno is still accepted');
  assert.equal(statusResult(undefined), 0);
  assert.equal(statusResult(-95), -95);
  assert.equal(wholeResult(4095, 4096), -5);
  assert.equal(wholeResult(4096, 4096), 4096);
  // Through the engine: a target that rejects with a UblkError, one that resolves with a negative
  // errno, one that over-reports; each request fails with what the contract says.
  const results = [() => Promise.reject(new UblkError('ENOSPC')), () => Promise.resolve(-28), () => 8192];
  let i = 0;
  const t: Target = { size: 1 << 20, read: (buf) => buf.byteLength, write: () => results[i++]() };
  const { stand } = start({ depth: 1, mode: 'copy' }, t);
  await stand.settle();
  for (let k = 0; k < 3; k++) {
    stand.deliver(0, { op: U.UBLK_IO_OP_WRITE, off: 0, len: 4096, data: new Uint8Array(4096) });
    await stand.settle();
  }
  assert.deepEqual(stand.commits.map((c) => c.result), [-28, -28, -5]);
  stand.dispose();
});

test('a COMMIT is linked behind its IO only where the kernel copies uring_cmd SQEs at submission (6.14+)', () => {
  for (const r of ['6.12.117+deb13-amd64', '6.13.2', '6.11.0', '6.5.0', 'garbage']) assert.equal(kernelCopiesCmdSqe(r), false, r);
  for (const r of ['6.14.0', '6.15.1-arch1', '7.2.13+deb14-amd64', '7.3.4+deb13-amd64']) assert.equal(kernelCopiesCmdSqe(r), true, r);
});

/** A null-like target that says its reads are zeroes, and counts the reads the engine still asks for. */
function zeroTarget(): Target & { reads: number } {
  const t = {
    size: 1 << 20,
    reads: 0,
    readsZeroes: true,
    read(buf: Uint8Array) {
      t.reads++;
      buf.fill(0);
      return buf.byteLength;
    },
    write: (buf: Uint8Array) => buf.byteLength,
  };
  return t;
}

const isZero = (b: Uint8Array) => b.every((x) => x === 0);

for (const mode of ['copy', 'get-data'] as DataMode[]) {
  test(`${mode}: a target whose reads are zeroes is not asked, and no WRITE's bytes reach a READ`, async () => {
    const t = zeroTarget();
    const { stand } = start({ depth: 1, mode }, t);
    await stand.settle();
    const reads = [];
    // A write leaves 64 KiB in the slot buffer; the reads after it (longer, then shorter) see zeroes.
    stand.deliver(0, { op: U.UBLK_IO_OP_WRITE, off: 0, len: 64 * KiB, data: pattern(5, 64 * KiB) });
    await stand.settle();
    for (const len of [128 * KiB, 4 * KiB, 128 * KiB]) {
      const data = new Uint8Array(len).fill(0xaa);
      stand.deliver(0, { op: U.UBLK_IO_OP_READ, off: 0, len, data });
      await stand.settle();
      reads.push(isZero(data));
    }
    assert.deepEqual(reads, [true, true, true]);
    assert.deepEqual(stand.commits.map((c) => c.result), [64 * KiB, 128 * KiB, 4 * KiB, 128 * KiB]);
    assert.equal(t.reads, 0, 'read() was not called');
    stand.dispose();
  });
}

test('get-data: the part of a failed WRITE that NEED_GET_DATA copied never reaches a zero READ', async () => {
  const t = zeroTarget();
  const { stand } = start({ depth: 1, mode: 'get-data', getDataBytes: (_tag, len) => (len === 64 * KiB ? 16 * KiB : len) }, t);
  await stand.settle();
  stand.deliver(0, { op: U.UBLK_IO_OP_WRITE, off: 0, len: 64 * KiB, data: pattern(6, 64 * KiB) });
  await stand.settle();
  const data = new Uint8Array(64 * KiB).fill(0xaa);
  stand.deliver(0, { op: U.UBLK_IO_OP_READ, off: 0, len: 64 * KiB, data });
  await stand.settle();
  assert.deepEqual(stand.commits.map((c) => c.result), [-5, 64 * KiB]);
  assert.ok(isZero(data), 'the READ got zeroes');
  stand.dispose();
});
