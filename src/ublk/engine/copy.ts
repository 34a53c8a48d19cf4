// Copy and get-data modes: the kernel copies between the request and a per-slot buffer; the
// target (or, for a pass-through target, this ring's file IO) fills or drains that buffer.
import * as U from '../../uapi/ublk.js';
import { ERRNO } from '../../errors.js';
import type { DataPath, Loop } from './core.js';
import type { ExtentIo } from './extent-io.js';
import type { TargetRw } from './target-rw.js';

const EIO = -ERRNO.EIO;

export class CopyPath implements DataPath {
  protected readonly loop: Loop;
  private readonly rw: TargetRw;
  private readonly x: ExtentIo;
  private readonly bufs: Uint8Array[];
  /** The target routes to real files: read and write its extents here, no promise round trip. */
  private readonly direct: boolean;

  constructor(loop: Loop, rw: TargetRw, x: ExtentIo, bufs: Uint8Array[], direct: boolean) {
    this.loop = loop;
    this.rw = rw;
    this.x = x;
    this.bufs = bufs;
    this.direct = direct;
  }

  start(s: number): void {
    if (this.direct) return this.x.directPass(s);
    const sl = this.loop.slots;
    const isRead = sl.op[s] === U.UBLK_IO_OP_READ;
    this.rw.run(s, isRead, this.bufs[s].subarray(0, sl.len[s]), sl.off[s], (sl.flags[s] & U.UBLK_IO_F_FUA) !== 0, this, 0);
  }

  pass(s: number): void {
    this.x.directPass(s);
  }

  finish(s: number): void {
    this.loop.commit(s, this.loop.slots.len[s]);
  }

  flush(): void {}
}

/**
 * Get-data: a WRITE's data is copied by NEED_GET_DATA, after which the loop decodes its descriptor
 * again (the kernel may have copied only part and shrunk nr_sectors).
 */
export class GetDataPath extends CopyPath {
  override start(s: number): void {
    const sl = this.loop.slots;
    if (sl.gdLen[s]) {
      // NEED_GET_DATA copied only part of the WRITE. Committing that part would have 7.2 re-send
      // the rest, but 7.3 would end the whole write as done: fail it instead. (The same WRITE
      // only: after a copy of nothing the kernel requeues it and this slot may get another
      // request first.)
      const short = sl.op[s] === U.UBLK_IO_OP_WRITE && sl.off[s] === sl.gdOff[s] && sl.len[s] < sl.gdLen[s];
      sl.gdLen[s] = 0;
      if (short) return this.loop.commit(s, EIO);
    }
    super.start(s);
  }
}
