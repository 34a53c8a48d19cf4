// struct ublksrv_io_cmd (16 bytes in the SQE's command area): the per-IO command of one tag.
import { setU64 } from './u64.js';

/** Byte offsets of its fields. */
export const IO_CMD = { q_id: 0, tag: 2, result: 4, addr: 8, size: 16 } as const;
/** Word index of `result` in the command, for patching a pre-encoded SQE as Int32 words. */
export const IO_CMD_RESULT_WORD = IO_CMD.result / 4;

/** Writes the command at `off`. `addr` is a JS number (< 2^53). */
export function encodeIoCmd(v: DataView, off: number, qid: number, tag: number, result: number, addr: number): void {
  v.setUint16(off + IO_CMD.q_id, qid, true);
  v.setUint16(off + IO_CMD.tag, tag, true);
  v.setInt32(off + IO_CMD.result, result, true);
  setU64(v, off + IO_CMD.addr, addr);
}

export interface IoCmd {
  qid: number;
  tag: number;
  result: number;
  addr: number;
}

export function decodeIoCmd(v: DataView, off: number): IoCmd {
  return {
    qid: v.getUint16(off + IO_CMD.q_id, true),
    tag: v.getUint16(off + IO_CMD.tag, true),
    result: v.getInt32(off + IO_CMD.result, true),
    addr: v.getUint32(off + IO_CMD.addr, true) + v.getUint32(off + IO_CMD.addr + 4, true) * 0x100000000,
  };
}
