// SQE encoders: one prepRw funnel, each opcode a few lines on it (SQE must be zeroed by the caller).
import * as IO from '../uapi/io-uring.js';
import { setU64 } from '../uapi/structs.js';

/**
 * The funnel: opcode, fd, addr, len and off (or cmd_op for URING_CMD) into a zeroed SQE at `o`.
 * `addr` and `off` are JS numbers (< 2^53); user_data is split as (hi, lo) u32 to avoid BigInt.
 */
export function prepRw(v: DataView, o: number, opcode: number, fd: number, addr: number, len: number, off: number): void {
  v.setUint8(o + 0, opcode);
  v.setInt32(o + 4, fd, true);
  setU64(v, o + 8, off);
  setU64(v, o + 16, addr);
  v.setUint32(o + 24, len, true);
}

export function setUserData(v: DataView, o: number, hi: number, lo: number): void {
  v.setUint32(o + 32, lo >>> 0, true);
  v.setUint32(o + 36, hi >>> 0, true);
}

export function setFlags(v: DataView, o: number, flags: number): void {
  v.setUint8(o + 1, v.getUint8(o + 1) | flags);
}

export function prepNop(v: DataView, o: number): void {
  prepRw(v, o, IO.IORING_OP_NOP, -1, 0, 0, 0);
}

/** NOP that pins fixed buffer `bufIndex` and completes with `result` (consumes a zero-copy buffer). */
export function prepNopFixed(v: DataView, o: number, bufIndex: number, result: number): void {
  prepRw(v, o, IO.IORING_OP_NOP, -1, 0, result, 0);
  v.setUint32(o + 28, IO.IORING_NOP_FIXED_BUFFER | IO.IORING_NOP_INJECT_RESULT, true);
  v.setUint16(o + 40, bufIndex, true);
}

export function prepRead(v: DataView, o: number, fd: number, addr: number, len: number, off: number): void {
  prepRw(v, o, IO.IORING_OP_READ, fd, addr, len, off);
}

export function prepWrite(v: DataView, o: number, fd: number, addr: number, len: number, off: number): void {
  prepRw(v, o, IO.IORING_OP_WRITE, fd, addr, len, off);
}

/** READ/WRITE whose offset is a full u64 (user-copy offsets on /dev/ublkcN pass 2^53). */
export function prepRwBig(v: DataView, o: number, opcode: number, fd: number, addr: number, len: number, off: bigint): void {
  prepRw(v, o, opcode, fd, addr, len, 0);
  v.setBigUint64(o + 8, off, true);
}

/** READ_FIXED/WRITE_FIXED: `addr` is the offset inside registered buffer `bufIndex` (0 for kernel buffers). */
export function prepReadFixed(v: DataView, o: number, fd: number, addr: number, len: number, off: number, bufIndex: number): void {
  prepRw(v, o, IO.IORING_OP_READ_FIXED, fd, addr, len, off);
  v.setUint16(o + 40, bufIndex, true);
}

export function prepWriteFixed(v: DataView, o: number, fd: number, addr: number, len: number, off: number, bufIndex: number): void {
  prepRw(v, o, IO.IORING_OP_WRITE_FIXED, fd, addr, len, off);
  v.setUint16(o + 40, bufIndex, true);
}

export function prepFsync(v: DataView, o: number, fd: number, datasync: boolean): void {
  prepRw(v, o, IO.IORING_OP_FSYNC, fd, 0, 0, 0);
  if (datasync) v.setUint32(o + 28, IO.IORING_FSYNC_DATASYNC, true);
}

/** fallocate(fd, mode, off, len): io_uring carries `len` in addr and `mode` in len. */
export function prepFallocate(v: DataView, o: number, fd: number, mode: number, off: number, len: number): void {
  prepRw(v, o, IO.IORING_OP_FALLOCATE, fd, len, mode, off);
}

/** TIMEOUT with a relative __kernel_timespec at address `tsAddr`, completing after `count` CQEs (0: time only). */
export function prepTimeout(v: DataView, o: number, tsAddr: number, count: number, flags: number): void {
  prepRw(v, o, IO.IORING_OP_TIMEOUT, -1, tsAddr, 1, count);
  v.setUint32(o + 28, flags, true);
}

/** URING_CMD: cmd_op at offset 8; the caller writes the payload at `o + 48`. */
export function prepUringCmd(v: DataView, o: number, fd: number, cmdOp: number): void {
  prepRw(v, o, IO.IORING_OP_URING_CMD, fd, 0, 0, 0);
  v.setUint32(o + 8, cmdOp >>> 0, true);
}
