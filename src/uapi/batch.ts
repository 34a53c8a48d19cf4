// UBLK_F_BATCH_IO layouts: struct ublk_batch_io (the SQE command) and the element array it points to.
import { setU64 } from './u64.js';

/** struct ublk_batch_io, 16 bytes in the SQE's command area. */
export const BATCH_IO = { q_id: 0, flags: 2, nr_elem: 4, elem_bytes: 6, size: 16 } as const;
/** struct ublk_elem_header, 8 bytes; `buf_addr` (u64) follows it when UBLK_BATCH_F_HAS_BUF_ADDR. */
export const ELEM_HEADER = { tag: 0, buf_index: 2, result: 4, size: 8 } as const;
export const ELEM_BUF_ADDR = 8;

export function encodeBatchIo(v: DataView, o: number, qid: number, flags: number, nrElem: number, elemBytes: number): void {
  v.setUint16(o + BATCH_IO.q_id, qid, true);
  v.setUint16(o + BATCH_IO.flags, flags, true);
  v.setUint16(o + BATCH_IO.nr_elem, nrElem, true);
  v.setUint8(o + BATCH_IO.elem_bytes, elemBytes);
}

/** One element at `o`; `bufAddr` is written only when given (elements of 16 bytes). */
export function encodeElem(v: DataView, o: number, tag: number, bufIndex: number, result: number, bufAddr?: number): void {
  v.setUint16(o + ELEM_HEADER.tag, tag, true);
  v.setUint16(o + ELEM_HEADER.buf_index, bufIndex, true);
  v.setInt32(o + ELEM_HEADER.result, result, true);
  if (bufAddr !== undefined) setU64(v, o + ELEM_BUF_ADDR, bufAddr);
}

export interface Elem {
  tag: number;
  bufIndex: number;
  result: number;
}

export function decodeElem(v: DataView, o: number): Elem {
  return {
    tag: v.getUint16(o + ELEM_HEADER.tag, true),
    bufIndex: v.getUint16(o + ELEM_HEADER.buf_index, true),
    result: v.getInt32(o + ELEM_HEADER.result, true),
  };
}
