// Zero copy: each request's pages become fixed buffer s of this ring, read or written by the
// target's extents directly. Registered by hand (REGISTER_IO_BUF, unregistered before the commit),
// or, with automatic buffer registration, by the kernel unless it flags UBLK_IO_F_NEED_REG_BUF.
import * as U from '../../uapi/ublk.js';
import type { DataPath, Loop } from './core.js';
import type { ExtentIo } from './extent-io.js';

export class ZeroCopyPath implements DataPath {
  private readonly loop: Loop;
  private readonly x: ExtentIo;
  /** Automatic buffer registration: the kernel registered the pages unless it says otherwise. */
  private readonly autoReg: boolean;

  constructor(loop: Loop, x: ExtentIo, autoReg: boolean) {
    this.loop = loop;
    this.x = x;
    this.autoReg = autoReg;
  }

  start(s: number): void {
    this.pass(s, false);
  }

  pass(s: number, regHeld: boolean): void {
    const manual = !this.autoReg || (this.loop.slots.flags[s] & U.UBLK_IO_F_NEED_REG_BUF) !== 0;
    this.x.fixedPass(s, regHeld, manual);
  }

  finish(s: number): void {
    this.loop.commit(s, this.loop.slots.len[s]);
  }

  flush(): void {}
}
