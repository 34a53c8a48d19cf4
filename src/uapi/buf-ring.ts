// Provided-buffer rings: struct io_uring_buf (one entry) and struct io_uring_buf_reg (registration).
import { setU64, getU64 } from './u64.js';

/** struct io_uring_buf, 16 bytes; the ring's u16 tail overlays `resv` of entry 0. */
export const IO_URING_BUF = { addr: 0, len: 8, bid: 12, resv: 14, size: 16 } as const;
/** struct io_uring_buf_reg, 40 bytes. */
export const IO_URING_BUF_REG = { ring_addr: 0, ring_entries: 8, bgid: 12, size: 40 } as const;

export function encodeBuf(v: DataView, o: number, addr: number, len: number, bid: number): void {
  setU64(v, o + IO_URING_BUF.addr, addr);
  v.setUint32(o + IO_URING_BUF.len, len, true);
  v.setUint16(o + IO_URING_BUF.bid, bid, true);
}

export function decodeBuf(v: DataView, o: number): { addr: number; len: number; bid: number } {
  return { addr: getU64(v, o + IO_URING_BUF.addr), len: v.getUint32(o + IO_URING_BUF.len, true), bid: v.getUint16(o + IO_URING_BUF.bid, true) };
}

/** A view of the ring's tail (published with Atomics after the entry it makes visible). */
export function bufRingTail(ring: ArrayBuffer): Uint16Array {
  return new Uint16Array(ring, IO_URING_BUF.resv, 1);
}

export function encodeBufReg(v: DataView, o: number, ringAddr: number, entries: number, bgid: number): void {
  setU64(v, o + IO_URING_BUF_REG.ring_addr, ringAddr);
  v.setUint32(o + IO_URING_BUF_REG.ring_entries, entries, true);
  v.setUint16(o + IO_URING_BUF_REG.bgid, bgid, true);
}
