// Copy and get-data modes: the kernel copies between the request and a per-slot buffer; the
// target (or, for a pass-through target, this ring's file IO) fills or drains that buffer.
import * as U from '../../uapi/ublk.js';
import { ERRNO } from '../../errors.js';
import type { DataPath, Loop } from './core.js';
import type { ExtentIo } from './extent-io.js';
import type { TargetRw } from './target-rw.js';

const EIO = -ERRNO.EIO;

/**
 * The slot buffers of a target whose reads are zeroes (Target.readsZeroes): a READ needs its
 * buffer zero, and only the bytes a WRITE copied in since the last READ can be anything else. The
 * buffers start zero (a fresh anonymous mapping), so a run of reads clears nothing.
 */
export class ZeroBuffers {
  private readonly bufs: Uint8Array[];
  private readonly dirty: Int32Array;

  constructor(bufs: Uint8Array[]) {
    this.bufs = bufs;
    this.dirty = new Int32Array(bufs.length);
  }

  /** Up to `len` bytes from the start of slot s's buffer may now be non-zero. */
  wrote(s: number, len: number): void {
    if (len > this.dirty[s]) this.dirty[s] = Math.min(len, this.bufs[s].byteLength);
  }

  /** Slot s's buffer is all zero, as a READ from the target would leave it. */
  zero(s: number): void {
    const d = this.dirty[s];
    if (d === 0) return;
    this.bufs[s].fill(0, 0, d);
    this.dirty[s] = 0;
  }
}

export class CopyPath implements DataPath {
  protected readonly loop: Loop;
  private readonly rw: TargetRw;
  private readonly x: ExtentIo;
  private readonly bufs: Uint8Array[];
  /** The target routes to real files: read and write its extents here, no promise round trip. */
  private readonly direct: boolean;

  /** Zero-reading target: per slot, the bytes from its buffer's start a WRITE may have left non-zero. */
  protected readonly dirty: ZeroBuffers | undefined;

  constructor(loop: Loop, rw: TargetRw, x: ExtentIo, bufs: Uint8Array[], direct: boolean, zeroes: boolean) {
    this.loop = loop;
    this.rw = rw;
    this.x = x;
    this.bufs = bufs;
    this.direct = direct;
    this.dirty = zeroes ? new ZeroBuffers(bufs) : undefined;
  }

  start(s: number): void {
    if (this.direct) return this.x.directPass(s);
    const sl = this.loop.slots;
    const isRead = sl.op[s] === U.UBLK_IO_OP_READ;
    if (this.dirty) {
      if (isRead) {
        this.dirty.zero(s);
        return this.finish(s);
      }
      this.dirty.wrote(s, sl.len[s]);
    }
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
      // Whatever part the kernel copied is in the buffer now, even for a write failed here.
      this.dirty?.wrote(s, sl.gdLen[s]);
      sl.gdLen[s] = 0;
      if (short) return this.loop.commit(s, EIO);
    }
    super.start(s);
  }
}
