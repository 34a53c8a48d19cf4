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
  /** The target routes, to holes at least in part: a READ of holes only is zeroes, never a call. */
  private readonly holes: boolean;
  /**
   * Per slot, how many bytes at the start of its buffer the last hole READ left zero, and that
   * READ's slot generation (SlotTable.seq). They hold only for the very next request of the slot:
   * anything in between (a WRITE's data copied in, even one failed before it reached a path; a
   * target read; NEED_GET_DATA) bumps the generation more than once. So a run of hole READs (a
   * null disk) fills once instead of clearing up to a megabyte for every request.
   */
  private readonly zeroLen: Uint32Array;
  private readonly zeroSeq: Uint32Array;

  constructor(loop: Loop, rw: TargetRw, x: ExtentIo, bufs: Uint8Array[], direct: boolean) {
    this.loop = loop;
    this.rw = rw;
    this.x = x;
    this.bufs = bufs;
    this.direct = direct;
    this.holes = !direct && loop.target.route !== undefined;
    this.zeroLen = new Uint32Array(bufs.length);
    this.zeroSeq = new Uint32Array(bufs.length);
  }

  start(s: number): void {
    if (this.direct) return this.x.directPass(s);
    const sl = this.loop.slots;
    const isRead = sl.op[s] === U.UBLK_IO_OP_READ;
    const len = sl.len[s];
    if (this.holes && isRead && this.onlyHoles(sl.off[s], len)) {
      const next = ((sl.seq[s] - this.zeroSeq[s]) >>> 0) === 1;
      if (!next || this.zeroLen[s] < len) {
        this.bufs[s].fill(0, 0, len);
        this.zeroLen[s] = len;
      }
      this.zeroSeq[s] = sl.seq[s];
      return this.finish(s);
    }
    this.rw.run(s, isRead, this.bufs[s].subarray(0, len), sl.off[s], (sl.flags[s] & U.UBLK_IO_F_FUA) !== 0, this, 0);
  }

  /** Whether route() maps all of [off, off + len) to holes; anything else (or a throw) is the target's to read. */
  private onlyHoles(off: number, len: number): boolean {
    let extents;
    try {
      extents = this.loop.target.route!(off, len);
    } catch {
      return false;
    }
    let sum = 0;
    for (const e of extents) {
      if (e.fd >= 0 || e.length <= 0 || e.bufOffset < 0 || e.bufOffset + e.length > len) return false;
      sum += e.length;
    }
    return sum === len;
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
