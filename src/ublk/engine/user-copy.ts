// User copy: the server moves a request's bytes itself, by pread/pwrite on /dev/ublkcN at the
// tag's offset, batched into one native call per io_uring_enter; with integrity, the metadata too.
import { native } from '../../native.js';
import * as S from '../../uring/sqe.js';
import * as IO from '../../uapi/io-uring.js';
import * as U from '../../uapi/ublk.js';
import { userCopyOffset } from '../../uapi/structs.js';
import { toNegErrno } from '../../errors.js';
import { statusResult, wholeResult } from '../../target/result.js';
import type { DataPath, Loop } from './core.js';
import type { ExtentIo } from './extent-io.js';
import type { TargetRw } from './target-rw.js';
import type { SlotBuffers } from './buffers.js';
import { ZeroBuffers } from './copy.js';

/** A copy's direction: a WRITE request's data into our buffer, or our buffer into a READ request. */
const IN = 0;
const OUT = 1;

export class UserCopyPath implements DataPath {
  private readonly loop: Loop;
  private readonly rw: TargetRw;
  private readonly x: ExtentIo;
  private readonly bufs: SlotBuffers;
  private readonly direct: boolean;
  private readonly integrity: boolean;
  // 8 u32 per queued copy (see native pcopy), the slot of each, and a snapshot for runCopies.
  private readonly ops: Uint32Array;
  private readonly copySlot: Int32Array;
  private readonly snap: Int32Array;
  private nCopies = 0;
  /** Each slot's position on /dev/ublkcN (offset 0 of its request), as lo/hi words. */
  private readonly at: Uint32Array;

  /** Zero-reading target: which buffer bytes a WRITE's copy may have left non-zero. */
  private readonly dirty: ZeroBuffers | undefined;

  constructor(loop: Loop, rw: TargetRw, x: ExtentIo, bufs: SlotBuffers, direct: boolean, integrity: boolean, zeroes: boolean) {
    this.dirty = zeroes ? new ZeroBuffers(bufs.data) : undefined;
    this.loop = loop;
    this.rw = rw;
    this.x = x;
    this.bufs = bufs;
    this.direct = direct;
    this.integrity = integrity;
    const sl = loop.slots;
    this.ops = new Uint32Array(sl.n * 8);
    this.copySlot = new Int32Array(sl.n);
    this.snap = new Int32Array(sl.n * 3);
    this.at = new Uint32Array(sl.n * 2);
    for (let s = 0; s < sl.n; s++) {
      const at = userCopyOffset(sl.qid[s], sl.tag[s], 0, false);
      this.at[s * 2] = Number(at & 0xffffffffn);
      this.at[s * 2 + 1] = Number(at >> 32n);
    }
  }

  start(s: number): void {
    const sl = this.loop.slots;
    const isRead = sl.op[s] === U.UBLK_IO_OP_READ;
    if (this.integrity) return void (isRead ? this.readIntegrity(s) : this.writeIntegrity(s));
    if (!isRead) {
      this.dirty?.wrote(s, sl.len[s]);
      return this.queue(s, IN, sl.len[s]);
    }
    if (this.direct) return this.x.directPass(s);
    if (this.dirty) {
      this.dirty.zero(s);
      return this.finish(s);
    }
    this.rw.run(s, true, this.bufs.data[s].subarray(0, sl.len[s]), sl.off[s], false, this, 0);
  }

  pass(s: number): void {
    this.x.directPass(s);
  }

  /** A READ's data is copied into the request before the commit; a WRITE is stored: commit. */
  finish(s: number): void {
    const sl = this.loop.slots;
    if (sl.op[s] === U.UBLK_IO_OP_READ) return this.queue(s, OUT, sl.len[s]);
    this.loop.commit(s, sl.len[s]);
  }

  /** Runs the queued copies, then what each request does next (all before this batch's enter). */
  flush(): void {
    const ops = this.ops;
    const snap = this.snap;
    while (this.nCopies > 0) {
      const n = this.nCopies;
      native().pcopy(this.loop.cfg.ublkcFd, ops, n);
      // Snapshot first: what runs next may queue new copies into the same arrays.
      for (let i = 0; i < n; i++) {
        snap[i * 3] = this.copySlot[i];
        snap[i * 3 + 1] = ops[i * 8];
        snap[i * 3 + 2] = ops[i * 8 + 6] | 0;
      }
      this.nCopies = 0;
      for (let i = 0; i < n; i++) this.afterCopy(snap[i * 3], snap[i * 3 + 1], snap[i * 3 + 2]);
    }
  }

  /**
   * /dev/ublkcN is not FMODE_NOWAIT, so io_uring would hand every copy to an io-wq thread. Copies
   * are queued here and run by flush() as pread (IN) or pwrite (OUT) in one native call per batch,
   * like kublk's synchronous copies but batched.
   */
  private queue(s: number, dir: number, len: number): void {
    const i = this.nCopies++;
    const w = i * 8;
    const addr = this.bufs.dataAddr[s];
    const ops = this.ops;
    ops[w] = dir;
    ops[w + 1] = len;
    ops[w + 2] = addr % 0x100000000;
    ops[w + 3] = Math.floor(addr / 0x100000000);
    ops[w + 4] = this.at[s * 2];
    ops[w + 5] = this.at[s * 2 + 1];
    ops[w + 6] = 0;
    this.copySlot[i] = s;
    this.loop.scheduleFlush();
  }

  /** A copy moves the whole request or the request fails: a short copy is -EIO, never a short commit. */
  private afterCopy(s: number, dir: number, r: number): void {
    const sl = this.loop.slots;
    const len = sl.len[s];
    const n = wholeResult(r, len);
    if (n !== len || dir === OUT) return this.loop.commit(s, n);
    if (this.direct) return this.x.directPass(s);
    this.rw.run(s, false, this.bufs.data[s].subarray(0, len), sl.off[s], (sl.flags[s] & U.UBLK_IO_F_FUA) !== 0, this, 0);
  }

  /** One transfer between our buffer and the request (or its integrity data), on this ring. */
  private ucopy(opcode: number, s: number, addr: number, len: number, integrity: boolean): Promise<number> {
    const sl = this.loop.slots;
    const fd = this.loop.fdRef;
    const flags = this.loop.sqeFdFlags;
    return this.loop.ring.op((v, o) => {
      S.prepRwBig(v, o, opcode, fd, addr, len, userCopyOffset(sl.qid[s], sl.tag[s], 0, integrity));
      S.setSqeFlags(v, o, flags);
    });
  }

  /**
   * READ with integrity: the target fills our buffer, we copy it (and its integrity data) into the
   * request, and only then commit (the copy must precede COMMIT). Whole or error: a short copy into
   * the request is -EIO, never a short commit.
   */
  private async readIntegrity(s: number): Promise<void> {
    const t = this.loop.target;
    const sl = this.loop.slots;
    const off = sl.off[s];
    const len = sl.len[s];
    try {
      const n = await this.rw.whole(true, this.bufs.data[s].subarray(0, len), off, false);
      if (n < 0) return this.loop.commit(s, n);
      const c = wholeResult(await this.ucopy(IO.IORING_OP_WRITE, s, this.bufs.dataAddr[s], len, false), len);
      if (c !== len) return this.loop.commit(s, c);
      if (sl.flags[s] & U.UBLK_IO_F_INTEGRITY && t.readIntegrity) {
        const ilen = this.bufs.metaLen(len);
        const r = statusResult(await t.readIntegrity(this.bufs.meta[s].subarray(0, ilen), off));
        if (r < 0) return this.loop.commit(s, r);
        const ic = wholeResult(await this.ucopy(IO.IORING_OP_WRITE, s, this.bufs.metaAddr[s], ilen, true), ilen);
        if (ic !== ilen) return this.loop.commit(s, ic);
      }
      this.loop.commit(s, len);
    } catch (err) {
      this.loop.commit(s, toNegErrno(err));
    }
  }

  /** WRITE with integrity: copy the request and its integrity data out, then store both. */
  private async writeIntegrity(s: number): Promise<void> {
    const t = this.loop.target;
    const sl = this.loop.slots;
    const off = sl.off[s];
    const len = sl.len[s];
    const fua = (sl.flags[s] & U.UBLK_IO_F_FUA) !== 0;
    try {
      const got = wholeResult(await this.ucopy(IO.IORING_OP_READ, s, this.bufs.dataAddr[s], len, false), len);
      if (got !== len) return this.loop.commit(s, got);
      if (sl.flags[s] & U.UBLK_IO_F_INTEGRITY && t.writeIntegrity) {
        const ilen = this.bufs.metaLen(len);
        const ig = wholeResult(await this.ucopy(IO.IORING_OP_READ, s, this.bufs.metaAddr[s], ilen, true), ilen);
        if (ig !== ilen) return this.loop.commit(s, ig);
        const r = statusResult(await t.writeIntegrity(this.bufs.meta[s].subarray(0, ilen), off));
        if (r < 0) return this.loop.commit(s, r);
      }
      const n = await this.rw.whole(false, this.bufs.data[s].subarray(0, len), off, fua);
      this.loop.commit(s, n < 0 ? n : len);
    } catch (err) {
      this.loop.commit(s, toNegErrno(err));
    }
  }
}
