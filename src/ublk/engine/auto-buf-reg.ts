// Automatic buffer registration: the index the FETCH or COMMIT names, where the kernel registers
// each request's pages (the data path is ZeroCopyPath; the fallback registers by hand).
import * as U from '../../uapi/ublk.js';

/** The buffer index of slot s (`index`, s unless rotating); 0xffff forces the fallback path on every request. */
export function autoBufIndex(s: number, fallback: boolean, index = s): number {
  return fallback ? 0xffff : index;
}

/** struct ublk_auto_buf_reg as the low word of sqe->addr: index, then flags at bit 16. */
export function autoBufRegField(s: number, fallback: boolean): number {
  return autoBufIndex(s, fallback) | (fallback ? U.UBLK_AUTO_BUF_REG_FALLBACK << 16 : 0);
}
