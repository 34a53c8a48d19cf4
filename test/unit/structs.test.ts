// Struct encoders and SQE funnel on plain buffers: offsets from spec/ublk-uapi.md.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as S from '../../src/uapi/structs.js';
import * as U from '../../src/uapi/ublk.js';
import * as Q from '../../src/uring/sqe.js';
import * as IO from '../../src/uapi/io-uring.js';
import { prefixDone } from '../../src/ublk/queue.js';

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
});

test('ioctl opcodes encode _IOWR/_IOR(u, nr, size)', () => {
  const ioc = (dir: number, nr: number, size: number) => ((dir << 30) | (size << 16) | (0x75 << 8) | nr) >>> 0;
  assert.equal(U.UBLK_U_CMD_ADD_DEV, ioc(3, 4, 32));
  assert.equal(U.UBLK_U_CMD_GET_FEATURES, ioc(2, 0x13, 32));
  assert.equal(U.UBLK_U_CMD_DEL_DEV_ASYNC, ioc(2, 0x14, 32));
  assert.equal(U.UBLK_U_IO_FETCH_REQ, ioc(3, 0x20, 16));
  assert.equal(U.UBLK_U_IO_UNREGISTER_IO_BUF, ioc(3, 0x24, 16));
  assert.equal(U.UBLK_F_NAMES.length, 20);
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
