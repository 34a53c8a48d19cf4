// Struct encoders and SQE funnel on plain buffers: offsets from spec/ublk-uapi.md.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as S from '../../src/uapi/structs.js';
import * as U from '../../src/uapi/ublk.js';
import * as Q from '../../src/uring/sqe.js';
import * as IO from '../../src/uapi/io-uring.js';
import { prefixDone } from '../../src/ublk/queue.js';
import { IO_DESC, IO_DESC_WORDS, decodeIoDesc, encodeIoDesc, ioDescWords } from '../../src/uapi/io-desc.js';
import { IO_CMD, IO_CMD_RESULT_WORD, encodeIoCmd, decodeIoCmd } from '../../src/uapi/io-cmd.js';
import * as B from '../../src/uapi/batch.js';
import * as R from '../../src/uapi/buf-ring.js';

test('ublksrv_ctrl_cmd layout', () => {
  const v = new DataView(new ArrayBuffer(32));
  S.encodeCtrlCmd(v, 0, { devId: 7, len: 64, addr: 0x123456789a, data0: 42, devPathLen: 12 });
  assert.equal(v.getUint32(0, true), 7);
  assert.equal(v.getUint16(4, true), 0xffff);
  assert.equal(v.getUint16(6, true), 64);
  assert.equal(v.getBigUint64(8, true), 0x123456789an);
  assert.equal(v.getBigUint64(16, true), 42n);
  assert.equal(v.getUint16(24, true), 12);
});

test('dev_info round trip and -1 dev id', () => {
  const v = new DataView(new ArrayBuffer(64));
  S.encodeDevInfo(v, 0, { nrHwQueues: 2, queueDepth: 128, maxIoBufBytes: 1 << 20, flags: U.UBLK_F_USER_COPY | U.UBLK_F_SHMEM_ZC, ublksrvFlags: 5n });
  assert.equal(v.getUint32(12, true), 0xffffffff);
  const d = S.decodeDevInfo(v, 0);
  assert.equal(d.nrHwQueues, 2);
  assert.equal(d.queueDepth, 128);
  assert.equal(d.maxIoBufBytes, 1 << 20);
  assert.equal(d.flags, 0x80080);
  assert.equal(d.ublksrvFlags, 5n);
});

test('ublk_params: offsets, types and round trip', () => {
  const v = new DataView(new ArrayBuffer(152));
  const p: S.Params = {
    basic: { attrs: 4, logicalBsShift: 9, physicalBsShift: 12, ioOptShift: 12, ioMinShift: 9, maxSectors: 2048, chunkSectors: 0, devSectors: 2 ** 40, virtBoundaryMask: 0 },
    discard: { discardAlignment: 0, discardGranularity: 4096, maxDiscardSectors: 8, maxWriteZeroesSectors: 16, maxDiscardSegments: 1 },
    dma: { alignment: 511 },
    seg: { segBoundaryMask: 4095, maxSegmentSize: 32768, maxSegments: 32 },
  };
  S.encodeParams(v, 0, p);
  assert.equal(v.getUint32(0, true), 152);
  assert.equal(v.getUint32(4, true), U.UBLK_PARAM_TYPE_BASIC | U.UBLK_PARAM_TYPE_DISCARD | U.UBLK_PARAM_TYPE_DMA_ALIGN | U.UBLK_PARAM_TYPE_SEGMENT);
  assert.equal(v.getUint32(108, true), 511);
  assert.equal(v.getBigUint64(120, true), 4095n);
  assert.equal(v.getUint16(132, true), 32);
  assert.equal(v.getBigUint64(24, true), 2n ** 40n);
  assert.deepEqual(S.decodeParams(v, 0), p);
});

test('user-copy offsets and descriptor mmap stride', () => {
  assert.equal(S.userCopyOffset(0, 0, 0), 0x80000000n);
  assert.equal(S.userCopyOffset(3, 5, 100), 0x80000000n + (3n << 41n) + (5n << 25n) + 100n);
  assert.equal(S.userCopyOffset(0, 0, 0, true), 0x80000000n | (1n << 62n));
  assert.equal(S.descMmapOffset(1), 0x18000);
  // A negotiated slot size widens every queue's region: room for 4096 slots of that size.
  assert.equal(S.descMmapOffset(1, 4096, 64), 4096 * 64);
  assert.equal(S.descMmapOffset(3, 4096, 24), 3 * 0x18000);
  assert.equal(S.descMmapOffset(2, 65536, 40), 2 * 0x30000);
});

test('dev_info io_desc_size: the 16-bit field after state, in force only with UBLK_F_IO_DESC_SIZE', () => {
  const v = new DataView(new ArrayBuffer(64));
  S.encodeDevInfo(v, 0, { state: 1, ioDescSize: 64, flags: U.UBLK_F_IO_DESC_SIZE });
  assert.equal(v.getUint16(6, true), 64);
  const d = S.decodeDevInfo(v, 0);
  assert.equal(d.ioDescSize, 64);
  assert.equal(S.ioDescSizeOf(d), 64);
  assert.equal(S.ioDescSizeOf({ flags: 0, ioDescSize: 64 }), 24, 'without the flag the field is the old pad');
  assert.equal(S.ioDescSizeOf({ flags: U.UBLK_F_IO_DESC_SIZE, ioDescSize: 0 }), 24);
  S.encodeDevInfo(v, 0, {});
  assert.equal(v.getUint16(6, true), 0, 'unset: zero, as the pad always was');
});

test('io_desc_size: the kernel\'s ADD_DEV rules', () => {
  for (const n of [24, 32, 64, 248, 256]) assert.equal(S.ioDescSizeProblem(n), undefined, String(n));
  for (const n of [0, 16, 23, 25, 60, 257, 264, 65535]) assert.match(S.ioDescSizeProblem(n)!, /multiple of 8 from 24 to 256/, String(n));
});

test('ioctl opcodes encode _IOWR/_IOR(u, nr, size)', () => {
  const ioc = (dir: number, nr: number, size: number) => ((dir << 30) | (size << 16) | (0x75 << 8) | nr) >>> 0;
  assert.equal(U.UBLK_U_CMD_ADD_DEV, ioc(3, 4, 32));
  assert.equal(U.UBLK_U_CMD_GET_FEATURES, ioc(2, 0x13, 32));
  assert.equal(U.UBLK_U_CMD_DEL_DEV_ASYNC, ioc(2, 0x14, 32));
  assert.equal(U.UBLK_U_IO_FETCH_REQ, ioc(3, 0x20, 16));
  assert.equal(U.UBLK_U_IO_UNREGISTER_IO_BUF, ioc(3, 0x24, 16));
  assert.equal(U.UBLK_F_NAMES.length, 21);
  assert.equal(U.UBLK_F_NAMES[20], 'UBLK_F_IO_DESC_SIZE');
  assert.equal(U.UBLK_F_IO_DESC_SIZE, 2 ** 20);
});

test('SQE funnel writes opcode, fd, off, addr, len, buf_index and user_data', () => {
  const v = new DataView(new ArrayBuffer(64));
  Q.prepReadFixed(v, 0, 9, 512, 4096, 2 ** 33, 7);
  Q.setUserData(v, 0, 3, 0x10002);
  assert.equal(v.getUint8(0), IO.IORING_OP_READ_FIXED);
  assert.equal(v.getInt32(4, true), 9);
  assert.equal(v.getBigUint64(8, true), 2n ** 33n);
  assert.equal(v.getBigUint64(16, true), 512n);
  assert.equal(v.getUint32(24, true), 4096);
  assert.equal(v.getUint16(40, true), 7);
  assert.equal(v.getBigUint64(32, true), (3n << 32n) | 0x10002n);
  const c = new DataView(new ArrayBuffer(64));
  Q.prepUringCmd(c, 0, 0, U.UBLK_U_IO_COMMIT_AND_FETCH_REQ);
  assert.equal(c.getUint8(0), IO.IORING_OP_URING_CMD);
  assert.equal(c.getUint32(8, true), U.UBLK_U_IO_COMMIT_AND_FETCH_REQ);
  const f = new DataView(new ArrayBuffer(64));
  Q.prepFallocate(f, 0, 3, IO.FALLOC_FL_PUNCH_HOLE, 4096, 8192);
  assert.equal(f.getBigUint64(16, true), 8192n, 'fallocate length rides in addr');
  assert.equal(f.getUint32(24, true), IO.FALLOC_FL_PUNCH_HOLE, 'mode rides in len');
});

test('zero-copy results: a short or failed extent ends the prefix', () => {
  const ex = [{ fd: 3, offset: 0, length: 4096, bufOffset: 0 }, { fd: 4, offset: 0, length: 4096, bufOffset: 4096 }];
  assert.equal(prefixDone(ex, [4096, 4096]), 8192);
  assert.equal(prefixDone(ex, [4096, 100]), 4196);
  assert.equal(prefixDone(ex, [100, 4096]), 100);
  assert.equal(prefixDone(ex, [-5, 4096]), -5);
  assert.equal(prefixDone(ex, [4096, -5]), 4096);
});

test('ublksrv_io_desc: decoded once into per-slot arrays, offsets as the kernel writes them', () => {
  const d = new Uint32Array(3 * IO_DESC_WORDS);
  const x = { opFlags: U.UBLK_IO_OP_WRITE | U.UBLK_IO_F_FUA, nrSectors: 256, startSector: 2 ** 33 + 8, addr: (1 * 2 ** 32) + 4096 };
  encodeIoDesc(d, 2, x);
  const v = new DataView(d.buffer, 2 * IO_DESC.size);
  assert.equal(v.getUint32(IO_DESC.op_flags, true), x.opFlags);
  assert.equal(v.getUint32(IO_DESC.nr_sectors, true), 256);
  assert.equal(v.getBigUint64(IO_DESC.start_sector, true), 2n ** 33n + 8n);
  assert.equal(v.getBigUint64(IO_DESC.addr, true), (1n << 32n) + 4096n);
  const to = { op: new Uint8Array(4), flags: new Uint32Array(4), len: new Int32Array(4), off: new Float64Array(4), addr: new Float64Array(4) };
  decodeIoDesc(d, 2, to, 3);
  assert.equal(to.op[3], U.UBLK_IO_OP_WRITE);
  assert.equal(to.flags[3] & U.UBLK_IO_F_FUA, U.UBLK_IO_F_FUA);
  assert.equal(to.len[3], 256 * 512);
  assert.equal(to.off[3], (2 ** 33 + 8) * 512);
  assert.equal(to.addr[3], x.addr);
  assert.equal(to.len[0], 0, 'other slots untouched');
});

test('ublksrv_io_desc at a negotiated stride: tag t starts at byte t * io_desc_size', () => {
  for (const size of [24, 32, 64, 256]) {
    const words = ioDescWords(size);
    const d = new Uint32Array(4 * words);
    const to = { op: new Uint8Array(4), flags: new Uint32Array(4), len: new Int32Array(4), off: new Float64Array(4), addr: new Float64Array(4) };
    for (let t = 0; t < 4; t++) encodeIoDesc(d, t, { opFlags: U.UBLK_IO_OP_READ + (t & 1), nrSectors: 8 * (t + 1), startSector: 1000 * t, addr: 0 }, words);
    // The kernel's view: fields at the start of each slot, the rest of the slot unused.
    const v = new DataView(d.buffer);
    assert.equal(v.getUint32(3 * size + IO_DESC.nr_sectors, true), 32, `size ${size}`);
    assert.equal(v.getBigUint64(2 * size + IO_DESC.start_sector, true), 2000n, `size ${size}`);
    for (let t = 0; t < 4; t++) {
      decodeIoDesc(d, t, to, t, words);
      assert.equal(to.op[t], t & 1);
      assert.equal(to.len[t], 8 * (t + 1) * 512);
      assert.equal(to.off[t], 1000 * t * 512);
    }
  }
  // Read at the old stride, a 64-byte array gives tag 1 the wrong request.
  const d = new Uint32Array(2 * ioDescWords(64));
  encodeIoDesc(d, 1, { opFlags: U.UBLK_IO_OP_WRITE, nrSectors: 8, startSector: 5 }, ioDescWords(64));
  const to = { op: new Uint8Array(1), flags: new Uint32Array(1), len: new Int32Array(1), off: new Float64Array(1), addr: new Float64Array(1) };
  decodeIoDesc(d, 1, to, 0);
  assert.notEqual(to.len[0], 8 * 512);
});

test('ublksrv_io_cmd: encode, offsets, decode', () => {
  const v = new DataView(new ArrayBuffer(64));
  encodeIoCmd(v, 48, 3, 17, -5, 2 ** 40 + 12);
  assert.equal(v.getUint16(48 + IO_CMD.q_id, true), 3);
  assert.equal(v.getUint16(48 + IO_CMD.tag, true), 17);
  assert.equal(v.getInt32(48 + IO_CMD.result, true), -5);
  assert.equal(v.getBigUint64(48 + IO_CMD.addr, true), 2n ** 40n + 12n);
  assert.equal(IO_CMD.size, U.SIZEOF_UBLKSRV_IO_CMD);
  assert.deepEqual(decodeIoCmd(v, 48), { qid: 3, tag: 17, result: -5, addr: 2 ** 40 + 12 });
  // The SQE templates patch result as an Int32 word: the word index must match the byte offset.
  assert.equal(IO.SQE_WORDS.cmd * 4, IO.SQE.cmd);
  assert.equal((IO.SQE_WORDS.cmd + IO_CMD_RESULT_WORD) * 4, IO.SQE.cmd + IO_CMD.result);
  assert.equal(IO.SQE_WORDS.userDataHi * 4, IO.SQE.user_data + 4);
});

test('batch: ublk_batch_io and element layouts, with and without buf_addr', () => {
  const c = new DataView(new ArrayBuffer(16));
  B.encodeBatchIo(c, 0, 5, U.UBLK_BATCH_F_HAS_BUF_ADDR, 3, 16);
  assert.equal(c.getUint16(B.BATCH_IO.q_id, true), 5);
  assert.equal(c.getUint16(B.BATCH_IO.flags, true), U.UBLK_BATCH_F_HAS_BUF_ADDR);
  assert.equal(c.getUint16(B.BATCH_IO.nr_elem, true), 3);
  assert.equal(c.getUint8(B.BATCH_IO.elem_bytes), 16);
  const e = new DataView(new ArrayBuffer(32));
  B.encodeElem(e, 0, 7, 0xffff, -28, 0x7f0012345000);
  B.encodeElem(e, 16, 8, 2, 4096);
  assert.deepEqual(B.decodeElem(e, 0), { tag: 7, bufIndex: 0xffff, result: -28 });
  assert.deepEqual(B.decodeElem(e, 16), { tag: 8, bufIndex: 2, result: 4096 });
  assert.equal(e.getBigUint64(B.ELEM_BUF_ADDR, true), 0x7f0012345000n);
  assert.equal(e.getBigUint64(16 + B.ELEM_BUF_ADDR, true), 0n, 'no buf_addr written when not given');
  assert.equal(B.ELEM_HEADER.size, U.SIZEOF_UBLK_ELEM_HEADER);
});

test('provided-buffer ring: entry, tail overlay and registration', () => {
  const ring = new ArrayBuffer(4 * R.IO_URING_BUF.size);
  const v = new DataView(ring);
  R.encodeBuf(v, R.IO_URING_BUF.size, 0x1234_5678_9000, 256, 9);
  assert.deepEqual(R.decodeBuf(v, R.IO_URING_BUF.size), { addr: 0x1234_5678_9000, len: 256, bid: 9 });
  const tail = R.bufRingTail(ring);
  Atomics.store(tail, 0, 3);
  assert.equal(v.getUint16(14, true), 3, 'the tail is the u16 at byte 14 of entry 0');
  assert.equal(v.getUint16(R.IO_URING_BUF.size + 14, true), 0);
  const reg = new DataView(new ArrayBuffer(R.IO_URING_BUF_REG.size));
  R.encodeBufReg(reg, 0, 0xabc000, 16, 2);
  assert.equal(reg.getBigUint64(R.IO_URING_BUF_REG.ring_addr, true), 0xabc000n);
  assert.equal(reg.getUint32(R.IO_URING_BUF_REG.ring_entries, true), 16);
  assert.equal(reg.getUint16(R.IO_URING_BUF_REG.bgid, true), 2);
  assert.equal(R.IO_URING_BUF_REG.size, IO.SIZEOF_IO_URING_BUF_REG);
});

test('ublk_shmem_buf_reg layout', () => {
  const v = new DataView(new ArrayBuffer(24));
  new Uint8Array(v.buffer).fill(0xff);
  S.encodeShmemBufReg(v, 0, 0x7f0000200000, 2 ** 32, U.UBLK_SHMEM_BUF_READ_ONLY);
  assert.equal(v.getBigUint64(S.SHMEM_BUF_REG.addr, true), 0x7f0000200000n);
  assert.equal(v.getBigUint64(S.SHMEM_BUF_REG.len, true), 2n ** 32n);
  assert.equal(v.getUint32(S.SHMEM_BUF_REG.flags, true), 1);
  assert.equal(v.getUint32(20, true), 0, 'reserved is zeroed');
});
