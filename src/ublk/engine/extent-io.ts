// Extent IO: a pass-through target's extents read or written by this ring, into the slot buffer
// (copy modes) or with the request's own pages as a fixed buffer (zero copy, auto buffer
// registration); short passes resumed, and the commit linked behind a request's single IO.
import * as fs from 'node:fs';
import * as S from '../../uring/sqe.js';
import * as IO from '../../uapi/io-uring.js';
import * as U from '../../uapi/ublk.js';
import { ERRNO, toNegErrno } from '../../errors.js';
import { countResult } from '../../target/result.js';
import type { Extent, Target } from '../../target/types.js';
import { ARMED } from './slots.js';
import type { IoCmds } from './io-cmds.js';
import { K_REG, K_UNREG, K_UNREG_LATE, K_ZC_IO, type DataPath, type Loop } from './core.js';

const EIO = -ERRNO.EIO;
const EOPNOTSUPP = -ERRNO.EOPNOTSUPP;
const ECANCELED = -ERRNO.ECANCELED;

// Linked-commit chain state bits (ExtentIo.link).
const LINK_OPEN = 1;
const LINK_MANUAL = 2;
const LINK_GOT_IO = 4;
const LINK_GOT_UNREG = 8;
const LINK_GOT_CANCEL = 16;

export class ExtentIo {
  private readonly loop: Loop;
  private readonly cmds: IoCmds;
  private readonly target: Target;
  /** Slot buffers (copy modes); unused by the fixed-buffer passes. */
  private readonly bufAddr: Float64Array;
  /** User copy: a READ's data is copied into the request before its commit, so never link it. */
  private readonly copyOutReads: boolean;
  private path!: DataPath;
  /** /dev/zero and /dev/null: the IO of extents with no file (fd -1). */
  private zeroFd = -1;
  private nullFd = -1;
  // Per slot: CQEs still expected, the extents of the pass and their results.
  private readonly left: Int32Array;
  private readonly err: Int32Array;
  private readonly extents: Array<Extent[] | undefined>;
  private readonly res: Array<number[] | undefined>;
  // Linked commit per slot: 0 none, else LINK_* bits of what the chain holds and what came back.
  private readonly link: Uint8Array;
  private readonly linkUnreg: Int32Array;
  // Manual zero copy, linked: the IO moved every byte and the slot was re-armed, but the unregister
  // behind it posts a CQE only if it fails (which silently cancels the commit): the length to
  // commit then. 0 once the commit's own CQE (the next request) has come.
  private readonly unregPending: Uint32Array;

  constructor(loop: Loop, cmds: IoCmds, bufAddr: Float64Array, copyOutReads: boolean) {
    this.loop = loop;
    this.cmds = cmds;
    this.target = loop.target;
    this.bufAddr = bufAddr;
    this.copyOutReads = copyOutReads;
    const n = loop.slots.n;
    this.left = new Int32Array(n);
    this.err = new Int32Array(n);
    this.extents = new Array(n);
    this.res = new Array(n);
    this.link = new Uint8Array(n);
    this.linkUnreg = new Int32Array(n);
    this.unregPending = new Uint32Array(n);
    // Opened now, not half way through queueing a request's linked chain, where a failed open
    // would strand it.
    if (this.target.route) {
      this.zeroFd = fs.openSync('/dev/zero', 'r');
      this.nullFd = fs.openSync('/dev/null', 'w');
    }
  }

  /** The path whose `pass` resumes a short request and whose `finish` ends a whole one. */
  bind(path: DataPath): void {
    this.path = path;
  }

  close(): void {
    if (this.zeroFd >= 0) fs.closeSync(this.zeroFd);
    if (this.nullFd >= 0) fs.closeSync(this.nullFd);
    this.zeroFd = this.nullFd = -1;
  }

  /**
   * Copy modes: READ/WRITE each extent between the file and the slot buffer (the kernel copies
   * between that buffer and the request around it). One pass covers what is left of the request.
   */
  directPass(s: number): void {
    const sl = this.loop.slots;
    const shift = sl.done[s];
    const len = sl.len[s] - shift;
    const isRead = sl.op[s] === U.UBLK_IO_OP_READ;
    const extents = this.target.route!(sl.off[s] + shift, len);
    if (extents.length === 0) return this.loop.commit(s, EIO);
    this.begin(s, extents, extents.length);
    const rwFlags = !isRead && sl.flags[s] & U.UBLK_IO_F_FUA ? IO.RWF_DSYNC : 0;
    const linked = this.canLink(extents, len) && !(isRead && this.copyOutReads);
    const ring = this.loop.ring;
    ring.reserve(extents.length + (linked ? 1 : 0));
    const v = ring.sqes;
    const base = this.bufAddr[s] + shift;
    for (let i = 0; i < extents.length; i++) {
      const e = extents[i];
      const o = ring.get();
      if (isRead) S.prepRead(v, o, e.fd < 0 ? this.zeroFd : e.fd, base + e.bufOffset, e.length, e.fd < 0 ? 0 : e.offset);
      else S.prepWrite(v, o, e.fd < 0 ? this.nullFd : e.fd, base + e.bufOffset, e.length, e.fd < 0 ? 0 : e.offset);
      if (rwFlags && e.fd >= 0) S.setOpFlags(v, o, rwFlags);
      if (linked) S.setSqeFlags(v, o, IO.IOSQE_IO_LINK);
      S.setUserData(v, o, K_ZC_IO + (i << 8), s);
    }
    if (linked) return this.linkedCommit(s, sl.len[s], false);
    this.loop.scheduleFlush();
  }

  /**
   * Zero copy: the request's pages are fixed buffer `s` of this ring (registered here when
   * `manual`, else by the kernel) and the extents are read/written with them directly. One pass
   * covers what is left; `regHeld`: the buffer is still registered from the pass before.
   */
  fixedPass(s: number, regHeld: boolean, manual: boolean): void {
    if (!this.target.route) return this.loop.commit(s, EOPNOTSUPP);
    const sl = this.loop.slots;
    const shift = sl.done[s];
    const len = sl.len[s] - shift;
    const isRead = sl.op[s] === U.UBLK_IO_OP_READ;
    const extents = this.target.route(sl.off[s] + shift, len);
    if (extents.length === 0) {
      if (regHeld) this.cmds.unregister(s, 0, K_UNREG_LATE);
      return this.loop.commit(s, EIO);
    }
    const linked = this.canLink(extents, len);
    // FUA: the write reaches stable storage before it completes (RWF_DSYNC), as the client asked.
    const rwFlags = !isRead && sl.flags[s] & U.UBLK_IO_F_FUA ? IO.RWF_DSYNC : 0;
    this.begin(s, extents, extents.length + (manual ? 1 : 0));
    const ring = this.loop.ring;
    ring.reserve(extents.length + (manual ? 2 : 0) + (linked ? 1 : 0));
    if (manual && !regHeld) this.cmds.register(s, IO.IOSQE_IO_HARDLINK | IO.IOSQE_CQE_SKIP_SUCCESS, K_REG);
    // Linked: a short or failed IO breaks a soft link, so the unregister and commit behind it are
    // cancelled and linkStep decides what comes next. Unlinked: hard links keep the unregister.
    const ioLink = linked ? IO.IOSQE_IO_LINK : manual ? IO.IOSQE_IO_HARDLINK : 0;
    const v = ring.sqes;
    // Registered by hand: index s (the buffer commands' own); by the kernel: where the slot's last command named.
    const bi = manual ? s : sl.bufIndex[s];
    for (let i = 0; i < extents.length; i++) {
      const e = extents[i];
      const o = ring.get();
      // An extent with no file is a hole: a READ gets zeroes (never whatever the client's pages
      // held), a WRITE is consumed by a fixed-buffer NOP.
      if (e.fd < 0 && !isRead) S.prepNopFixed(v, o, bi, e.length);
      else if (isRead) S.prepReadFixed(v, o, e.fd < 0 ? this.zeroFd : e.fd, e.bufOffset + shift, e.length, e.fd < 0 ? 0 : e.offset, bi);
      else S.prepWriteFixed(v, o, e.fd, e.bufOffset + shift, e.length, e.offset, bi);
      if (rwFlags && e.fd >= 0) S.setOpFlags(v, o, rwFlags);
      if (ioLink) S.setSqeFlags(v, o, ioLink);
      S.setUserData(v, o, K_ZC_IO + (i << 8), s);
    }
    // Linked, the unregister posts a CQE only on failure (see linkStep and unregFailed).
    if (manual) this.cmds.unregister(s, linked ? IO.IOSQE_IO_LINK | IO.IOSQE_CQE_SKIP_SUCCESS : 0, K_UNREG);
    if (linked) return this.linkedCommit(s, sl.len[s], manual);
    this.loop.scheduleFlush();
  }

  /** A CQE of the extent kinds (K_REG, K_ZC_IO, K_UNREG, K_UNREG_LATE); `i` the extent index. */
  onCqe(kind: number, i: number, s: number, res: number): void {
    switch (kind) {
      case K_REG:
        // Only failures post (CQE_SKIP_SUCCESS); the linked IO and unregister still complete.
        this.err[s] = res;
        return;
      case K_ZC_IO:
        this.res[s]![i] = res;
        if (this.link[s]) {
          this.link[s] |= LINK_GOT_IO;
          return this.linkStep(s);
        }
        return this.step(s);
      case K_UNREG:
        if (this.link[s]) {
          this.linkUnreg[s] = res;
          this.link[s] |= LINK_GOT_UNREG;
          return this.linkStep(s);
        }
        if (this.unregPending[s]) return this.unregFailed(s);
        return this.step(s);
    }
  }

  /**
   * The CQE of a linked commit: true if it was cancelled with its chain (-ECANCELED while the chain
   * is open: an earlier link failed and the commit never ran), else the loop handles it as a commit.
   */
  onLinkedCommit(s: number, res: number): boolean {
    if (this.link[s] && res === ECANCELED) {
      this.link[s] |= LINK_GOT_CANCEL;
      this.linkStep(s);
      return true;
    }
    this.unregPending[s] = 0;
    return false;
  }

  /** Marks slot s's pass as begun: no allocation per request (results past `extents.length` are stale). */
  private begin(s: number, extents: Extent[], cqes: number): void {
    this.extents[s] = extents;
    let r = this.res[s];
    if (!r) r = this.res[s] = [];
    for (let i = 0; i < extents.length; i++) r[i] = EIO;
    this.err[s] = 0;
    this.left[s] = cqes;
  }

  /**
   * Whether the request is one extent covering the whole buffer, so its COMMIT can be linked behind
   * the IO and go down in the same io_uring_enter (see linkStep). Batch IO commits in bulk instead.
   */
  private canLink(extents: Extent[], len: number): boolean {
    return extents.length === 1 && extents[0].length === len && extents[0].bufOffset === 0 && this.loop.linkable;
  }

  /**
   * The file IO of one pass moved `n` bytes (or failed): finish the request, or start another pass
   * for the rest. Linux 7.3 ends a request committed short as if it were whole (every WRITE, and
   * READs outside copy mode), so a short count is never committed: the rest is re-issued here, and
   * a pass that moves nothing ends the request with -EIO (which also bounds the passes).
   */
  private advance(s: number, n: number, regHeld: boolean): void {
    const sl = this.loop.slots;
    const r = countResult(n, sl.len[s] - sl.done[s]);
    if (r < 0) {
      if (regHeld) this.cmds.unregister(s, 0, K_UNREG_LATE);
      return this.loop.commit(s, r);
    }
    if ((sl.done[s] += r) < sl.len[s]) {
      try {
        return this.path.pass(s, regHeld);
      } catch (err) {
        // route() threw or the chain cannot be queued: nothing of this pass was submitted.
        if (regHeld) this.cmds.unregister(s, 0, K_UNREG_LATE);
        return this.loop.commit(s, toNegErrno(err));
      }
    }
    this.path.finish(s);
  }

  /**
   * Queues COMMIT_AND_FETCH(len) soft-linked behind the request's only IO: when that IO moves every
   * byte, the commit runs in the same io_uring_enter, with no CQE round trip through this thread.
   * The result is claimed only when proven: io_uring fails a READ/WRITE link on any result other
   * than the full length, which cancels the commit, and linkStep then commits the real outcome.
   */
  private linkedCommit(s: number, len: number, manual: boolean): void {
    this.link[s] = LINK_OPEN | (manual ? LINK_MANUAL : 0);
    this.cmds.commitLinked(s, len);
    this.loop.scheduleFlush();
  }

  /**
   * A CQE of a linked chain: decide once what happened to the commit behind it. The IO always
   * posts. If it moved every byte, the rest of the chain runs: the slot is re-armed now, and the
   * next CQE of the commit is a new request (manual zero copy: unless the unregister fails, see
   * unregFailed). If not, io_uring cancels the rest with a CQE each (-ECANCELED, as the failed IO
   * did not skip its own CQE); once those are in, the real outcome is committed.
   */
  private linkStep(s: number): void {
    const st = this.link[s];
    if (!(st & LINK_GOT_IO)) return;
    const manual = (st & LINK_MANUAL) !== 0;
    const e = this.extents[s]![0];
    const r = this.res[s]![0];
    const ran = this.err[s] >= 0 && r === e.length;
    if (!ran && ((manual && !(st & LINK_GOT_UNREG)) || !(st & LINK_GOT_CANCEL))) return;
    this.link[s] = 0;
    this.extents[s] = undefined;
    if (ran) {
      if (manual) this.unregPending[s] = this.loop.slots.len[s];
      return void this.loop.rearm(s);
    }
    // The unregister was cancelled with the commit: the buffer is still in the table.
    const held = manual && this.linkUnreg[s] === ECANCELED && this.err[s] >= 0;
    if (this.err[s] < 0) return this.loop.commit(s, this.err[s]);
    this.advance(s, r > 0 ? Math.min(r, e.length) : r, held);
  }

  /**
   * The unregister behind a fully done IO failed: it posted (CQE_SKIP_SUCCESS posts failures) and
   * io_uring cancelled the commit behind it without a CQE. The slot was re-armed too early: take it
   * back and commit the bytes the IO moved. (A slot already retired by draining is left to the
   * ring's teardown.)
   */
  private unregFailed(s: number): void {
    const len = this.unregPending[s];
    this.unregPending[s] = 0;
    if (this.loop.slots.state[s] !== ARMED) return;
    this.loop.own(s);
    this.loop.commit(s, len);
  }

  private step(s: number): void {
    if (--this.left[s] > 0) return;
    const extents = this.extents[s]!;
    const res = this.res[s]!;
    this.extents[s] = undefined;
    if (this.err[s] < 0) return this.loop.commit(s, this.err[s]);
    this.advance(s, prefixDone(extents, res), false);
  }
}

/**
 * The most extents the target makes of one request up to `maxIo` bytes, probed at an aligned and a
 * misaligned offset (a chunked layout splits one more time when the start is not on a boundary).
 */
export function maxExtents(t: Target, maxIo: number): number {
  if (!t.route) return 1;
  let most = 1;
  for (const off of [0, 512]) {
    const len = Math.min(maxIo, t.size - off);
    if (len <= 0) continue;
    try {
      most = Math.max(most, t.route(off, len - (len % 512)).length);
    } catch {
      // A target that cannot route a probe is refused per request instead.
    }
  }
  return most + 1;
}

/** Bytes done from the start of the buffer: a short or failed extent ends the prefix. */
export function prefixDone(extents: Extent[], res: number[]): number {
  if (extents.length === 1) {
    const r = res[0] ?? EIO;
    return r < 0 ? r : Math.min(r, extents[0].length);
  }
  const order = extents.map((e, i) => i).sort((a, b) => extents[a].bufOffset - extents[b].bufOffset);
  let total = 0;
  for (const i of order) {
    const r = res[i] ?? EIO;
    if (r < 0) return total > 0 ? total : r;
    total += Math.min(r, extents[i].length);
    if (r < extents[i].length) break;
  }
  return total;
}
