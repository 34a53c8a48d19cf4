// Automatic buffer registration: the kernel registers each request's pages at the index the FETCH
// or COMMIT named, and the extents are read or written with them (the fallback registers by hand).
import * as U from '../../uapi/ublk.js';
import type { DataPath, Loop } from './core.js';
import type { ExtentIo } from './extent-io.js';

/** The buffer index of slot s; 0xffff forces the fallback path on every request. */
export function autoBufIndex(s: number, fallback: boolean): number {
  return fallback ? 0xffff : s;
}

/** struct ublk_auto_buf_reg as the low word of sqe->addr: index, then flags at bit 16. */
export function autoBufRegField(s: number, fallback: boolean): number {
  return autoBufIndex(s, fallback) | (fallback ? U.UBLK_AUTO_BUF_REG_FALLBACK << 16 : 0);
}

export class AutoBufRegPath implements DataPath {
  private readonly loop: Loop;
  private readonly x: ExtentIo;

  constructor(loop: Loop, x: ExtentIo) {
    this.loop = loop;
    this.x = x;
  }

  start(s: number): void {
    this.pass(s, false);
  }

  /** The kernel could not register the pages (or was told not to): UBLK_IO_F_NEED_REG_BUF. */
  pass(s: number, regHeld: boolean): void {
    this.x.fixedPass(s, regHeld, (this.loop.slots.flags[s] & U.UBLK_IO_F_NEED_REG_BUF) !== 0);
  }

  finish(s: number): void {
    this.loop.commit(s, this.loop.slots.len[s]);
  }

  flush(): void {}
}
