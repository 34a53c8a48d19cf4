// Zoned requests (user copy): zone management ops, ZONE_APPEND committed with the LBA it landed
// at, and REPORT_ZONES filled with struct blk_zone records.
import * as S from '../../uring/sqe.js';
import * as IO from '../../uapi/io-uring.js';
import * as U from '../../uapi/ublk.js';
import { BLK_ZONE } from '../../uapi/blkzoned.js';
import { userCopyOffset } from '../../uapi/structs.js';
import { ERRNO, toNegErrno } from '../../errors.js';
import { wholeResult } from '../../target/result.js';
import type { ZoneAppendResult } from '../../target/types.js';
import type { Loop } from './core.js';
import type { TargetRw } from './target-rw.js';
import type { SlotBuffers } from './buffers.js';

const EIO = -ERRNO.EIO;
const EOPNOTSUPP = -ERRNO.EOPNOTSUPP;

export function isZoneOp(op: number): boolean {
  return (op >= U.UBLK_IO_OP_ZONE_OPEN && op <= U.UBLK_IO_OP_ZONE_RESET) || op === U.UBLK_IO_OP_REPORT_ZONES;
}

export class ZonedOps {
  private readonly loop: Loop;
  private readonly rw: TargetRw;
  private readonly bufs: SlotBuffers;
  /** COMMIT_AND_FETCH carrying the zone append's LBA in the command's addr. */
  private readonly commitLba: (s: number, result: number, lba: number) => void;

  constructor(loop: Loop, rw: TargetRw, bufs: SlotBuffers, commitLba: (s: number, result: number, lba: number) => void) {
    this.loop = loop;
    this.rw = rw;
    this.bufs = bufs;
    this.commitLba = commitLba;
  }

  start(s: number): void {
    const sl = this.loop.slots;
    const t = this.loop.target;
    const sector = sl.off[s] / 512;
    const call = (f: ((sector: number) => unknown) | undefined): void => this.rw.settle(s, f ? f.call(t, sector) : EOPNOTSUPP);
    switch (sl.op[s]) {
      case U.UBLK_IO_OP_ZONE_OPEN: return call(t.zoneOpen);
      case U.UBLK_IO_OP_ZONE_CLOSE: return call(t.zoneClose);
      case U.UBLK_IO_OP_ZONE_FINISH: return call(t.zoneFinish);
      case U.UBLK_IO_OP_ZONE_RESET: return call(t.zoneReset);
      case U.UBLK_IO_OP_ZONE_RESET_ALL: return this.rw.settle(s, t.zoneResetAll ? t.zoneResetAll() : EOPNOTSUPP);
      case U.UBLK_IO_OP_ZONE_APPEND: return void this.append(s, sector);
      case U.UBLK_IO_OP_REPORT_ZONES: return void this.report(s, sector);
      default: return this.loop.commit(s, EOPNOTSUPP);
    }
  }

  /** The data comes in like a WRITE's; the target picks the sector, which goes back in the COMMIT. */
  private async append(s: number, sector: number): Promise<void> {
    const t = this.loop.target;
    const len = this.loop.slots.len[s];
    try {
      if (!t.zoneAppend) return this.loop.commit(s, EOPNOTSUPP);
      const got = wholeResult(await this.ucopy(IO.IORING_OP_READ, s, len), len);
      if (got !== len) return this.loop.commit(s, got);
      const r: ZoneAppendResult = await t.zoneAppend(this.bufs.data[s].subarray(0, len), sector);
      if (!r || r.bytes !== len || !Number.isSafeInteger(r.sector) || r.sector < 0) return this.loop.commit(s, EIO);
      this.commitLba(s, len, r.sector);
    } catch (err) {
      this.loop.commit(s, toNegErrno(err));
    }
  }

  /**
   * The descriptor's nr_sectors is the zone count. The kernel's report buffer may be longer than
   * the zones it asks for, and a result short of the request's length would have it requeue the
   * rest to us: so the records are followed by zeroes (a zero-length zone ends the list) up to
   * the slot buffer's size, and the commit says how much of that the request took.
   */
  private async report(s: number, sector: number): Promise<void> {
    const t = this.loop.target;
    const buf = this.bufs.data[s];
    const nr = Math.min(this.loop.slots.len[s] / 512, Math.floor(buf.byteLength / BLK_ZONE.size));
    try {
      if (!t.reportZones) return this.loop.commit(s, EOPNOTSUPP);
      buf.fill(0);
      const n = await t.reportZones(sector, nr, buf.subarray(0, nr * BLK_ZONE.size));
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > nr) return this.loop.commit(s, EIO);
      const r = await this.ucopy(IO.IORING_OP_WRITE, s, buf.byteLength);
      this.loop.commit(s, r < 0 ? r : r < Math.max(n, 1) * BLK_ZONE.size ? EIO : r);
    } catch (err) {
      this.loop.commit(s, toNegErrno(err));
    }
  }

  /** One transfer between the slot buffer and the request, from its start (short at the request's end). */
  private ucopy(opcode: number, s: number, len: number): Promise<number> {
    const sl = this.loop.slots;
    const { fdRef, sqeFdFlags } = this.loop;
    return this.loop.ring.op((v, o) => {
      S.prepRwBig(v, o, opcode, fdRef, this.bufs.dataAddr[s], len, userCopyOffset(sl.qid[s], sl.tag[s], 0, false));
      S.setSqeFlags(v, o, sqeFdFlags);
    });
  }
}
