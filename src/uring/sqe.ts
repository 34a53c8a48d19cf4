// SQE encoders: one prepRw funnel, each opcode a few lines on it (SQE must be zeroed by the caller).
import * as IO from '../uapi/io-uring.js';
import { setU64 } from '../uapi/u64.js';

const F = IO.SQE;

/**
 * The funnel: opcode, fd, addr, len and off (or cmd_op for URING_CMD) into a zeroed SQE at `o`.
 * `addr` and `off` are JS numbers (< 2^53); user_data is split as (hi, lo) u32 to avoid BigInt.
 */
export function prepRw(v: DataView, o: number, opcode: number, fd: number, addr: number, len: number, off: number): void {
  v.setUint8(o + F.opcode, opcode);
  v.setInt32(o + F.fd, fd, true);
  setU64(v, o + F.off, off);
  setU64(v, o + F.addr, addr);
  v.setUint32(o + F.len, len, true);
}

export function setUserData(v: DataView, o: number, hi: number, lo: number): void {
  v.setUint32(o + F.user_data, lo >>> 0, true);
  v.setUint32(o + F.user_data + 4, hi >>> 0, true);
}

/** The SQE's user_data as (hi, lo). */
export function userDataHi(v: DataView, o: number): number {
  return v.getUint32(o + F.user_data + 4, true);
}
export function userDataLo(v: DataView, o: number): number {
  return v.getUint32(o + F.user_data, true);
}

/** IOSQE_* flags (replacing what is there). */
export function setSqeFlags(v: DataView, o: number, flags: number): void {
  v.setUint8(o + F.flags, flags);
}

/** READ/WRITE rw_flags (RWF_*), uring_cmd flags, NOP flags: the one u32 at byte 28. */
export function setOpFlags(v: DataView, o: number, flags: number): void {
  v.setUint32(o + F.rw_flags, flags, true);
}

export function setBufGroup(v: DataView, o: number, bgid: number): void {
  v.setUint16(o + F.buf_group, bgid, true);
}

export function prepNop(v: DataView, o: number): void {
  prepRw(v, o, IO.IORING_OP_NOP, -1, 0, 0, 0);
}

/** NOP that pins fixed buffer `bufIndex` and completes with `result` (consumes a zero-copy buffer). */
export function prepNopFixed(v: DataView, o: number, bufIndex: number, result: number): void {
  prepRw(v, o, IO.IORING_OP_NOP, -1, 0, result, 0);
  setOpFlags(v, o, IO.IORING_NOP_FIXED_BUFFER | IO.IORING_NOP_INJECT_RESULT);
  v.setUint16(o + F.buf_index, bufIndex, true);
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
  v.setBigUint64(o + F.off, off, true);
}

/** READ_FIXED/WRITE_FIXED: `addr` is the offset inside registered buffer `bufIndex` (0 for kernel buffers). */
export function prepReadFixed(v: DataView, o: number, fd: number, addr: number, len: number, off: number, bufIndex: number): void {
  prepRw(v, o, IO.IORING_OP_READ_FIXED, fd, addr, len, off);
  v.setUint16(o + F.buf_index, bufIndex, true);
}

export function prepWriteFixed(v: DataView, o: number, fd: number, addr: number, len: number, off: number, bufIndex: number): void {
  prepRw(v, o, IO.IORING_OP_WRITE_FIXED, fd, addr, len, off);
  v.setUint16(o + F.buf_index, bufIndex, true);
}

export function prepFsync(v: DataView, o: number, fd: number, datasync: boolean): void {
  prepRw(v, o, IO.IORING_OP_FSYNC, fd, 0, 0, 0);
  if (datasync) setOpFlags(v, o, IO.IORING_FSYNC_DATASYNC);
}

/** fallocate(fd, mode, off, len): io_uring carries `len` in addr and `mode` in len. */
export function prepFallocate(v: DataView, o: number, fd: number, mode: number, off: number, len: number): void {
  prepRw(v, o, IO.IORING_OP_FALLOCATE, fd, len, mode, off);
}

/** TIMEOUT with a relative __kernel_timespec at address `tsAddr`, completing after `count` CQEs (0: time only). */
export function prepTimeout(v: DataView, o: number, tsAddr: number, count: number, flags: number): void {
  prepRw(v, o, IO.IORING_OP_TIMEOUT, -1, tsAddr, 1, count);
  setOpFlags(v, o, flags);
}

/** URING_CMD: cmd_op at offset 8; the caller writes the payload at `o + SQE.cmd`. */
export function prepUringCmd(v: DataView, o: number, fd: number, cmdOp: number): void {
  prepRw(v, o, IO.IORING_OP_URING_CMD, fd, 0, 0, 0);
  v.setUint32(o + F.cmd_op, cmdOp >>> 0, true);
}

/** URING_CMD whose SQE addr carries a buffer (batch element arrays, auto-buf-reg data). */
export function setCmdAddr(v: DataView, o: number, addr: number, len: number): void {
  setU64(v, o + F.addr, addr);
  v.setUint32(o + F.len, len, true);
}
