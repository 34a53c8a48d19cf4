// The per-thread fetch/commit loop: arms slots, reaps CQEs, decodes each request once, hands it
// to the data path chosen for the device, commits, and drains when the kernel aborts.
import * as os from 'node:os';
import { native } from '../../native.js';
import { type Ring, createRing } from '../../uring/ring.js';
import * as IO from '../../uapi/io-uring.js';
import * as U from '../../uapi/ublk.js';
import { decodeIoDesc, ioDescWords, IO_DESC } from '../../uapi/io-desc.js';
import { ERRNO, toNegErrno, errnoName } from '../../errors.js';
import type { Target, TargetContext } from '../../target/types.js';
import { FileIo } from '../../uring/file-io.js';
import type { EngineConfig } from './config.js';
import { SlotTable, ARMED, OWNED, DONE } from './slots.js';
import { SlotBuffers, mapDescriptors } from './buffers.js';
import { K_CMD, K_LCMD, K_REG, K_UNREG, K_UNREG_LATE, K_ZC_IO, type DataPath, type Loop, type Transport } from './core.js';
import { IoCmds } from './io-cmds.js';
import { BatchTransport } from './batch.js';
import { ExtentIo, maxExtents } from './extent-io.js';
import { TargetRw } from './target-rw.js';
import { ShmemZc } from './shmem.js';
import { choosePath } from './paths.js';
import { autoBufIndex, autoBufRegField } from './auto-buf-reg.js';
import { Pump } from './pump.js';
import { kernelCopiesCmdSqe } from './sqe-copy.js';
import { IoStats } from './stats.js';
import { ZonedOps, isZoneOp } from './zoned.js';

const EOPNOTSUPP = -ERRNO.EOPNOTSUPP;
const ENODEV = -ERRNO.ENODEV;
const ECANCELED = -ERRNO.ECANCELED;

export class QueueEngine implements Loop {
  readonly ring: Ring;
  readonly cfg: EngineConfig;
  readonly target: Target;
  readonly slots: SlotTable;
  readonly fdRef: number;
  readonly sqeFdFlags: number;
  private readonly desc: Uint32Array[] = [];
  /** u32 words from one tag's descriptor to the next (the negotiated slot size). */
  private readonly descWords: number;
  /** Auto-buf-reg indices alternate per slot between s and s + n (batch IO only). */
  private readonly rotating: boolean;
  /** COMMITs may be linked behind file IO (see kernelCopiesCmdSqe). */
  private readonly linkCommit: boolean;
  private descMaps: ArrayBuffer[] = [];
  private bufs: SlotBuffers | undefined;
  private shmem: ShmemZc | undefined;
  private zoned: ZonedOps | undefined;
  private extents: ExtentIo | undefined;
  private readonly cmds!: IoCmds;
  private readonly transport!: Transport;
  private readonly path!: DataPath;
  private readonly rw!: TargetRw;
  private readonly pump!: Pump;
  /** Counters shared with the device's thread; absent with stats off. */
  private readonly stats: IoStats | undefined;
  /** Set at the first abort: slots committed from now on are re-armed but never hear back (quiesce). */
  private draining = false;
  private live: number;
  /** Slots in state OWNED. */
  private owned = 0;
  /** Set when the kernel refused an io command and the engine fail-stopped (see onCmd). */
  failure: Error | undefined;
  private resolveDone!: () => void;
  /** Resolves when every slot has been aborted by the kernel and nothing is in flight. */
  readonly done: Promise<void>;
  private released = false;

  constructor(cfg: EngineConfig) {
    this.cfg = cfg;
    this.target = cfg.target;
    const n = cfg.slots.length;
    this.slots = new SlotTable(cfg.slots);
    this.stats = cfg.stats ? new IoStats(cfg.stats, this.slots) : undefined;
    this.live = n;
    this.descWords = ioDescWords(cfg.ioDescSize ?? IO_DESC.size);
    this.rotating = !!cfg.rotateAutoBuf && !!cfg.batch && cfg.mode === 'auto-buf-reg' && !cfg.autoBufRegFallback;
    this.linkCommit = cfg.linkCommit ?? (cfg.stand ? true : kernelCopiesCmdSqe(os.release()));
    this.done = new Promise((r) => (this.resolveDone = r));
    if (cfg.cpu !== undefined) {
      const r = native().pinThread(cfg.cpu);
      if (r < 0) cfg.onError?.(new Error(`cannot bind the serving thread to CPU ${cfg.cpu} (errno ${-r}); it runs unbound`));
    }
    const fixedBufs = cfg.mode === 'zero-copy' || cfg.mode === 'auto-buf-reg';
    // Manual zero copy costs REGISTER + IO + UNREGISTER + COMMIT per request (the fallback too).
    // A request's chain is queued whole (Ring.reserve), so even at depth 1 the ring must hold the
    // longest one: a request split into as many extents as the target makes of the largest IO.
    const perIo = cfg.mode === 'zero-copy' || cfg.autoBufRegFallback ? 4 : 2;
    const chain = maxExtents(cfg.target, cfg.maxIoBufBytes) + 3;
    const entries = Math.min(4096, 1 << Math.ceil(Math.log2(Math.max(8, n * perIo, chain))));
    // COOP_TASKRUN, not DEFER_TASKRUN: measured in the VM, deferred task work (which then needs an
    // extra io_uring_enter(GETEVENTS) per wake-up) was no faster for null and slower for loop.
    // Deferred task run is only safe with the TASKRUN flag: the pump checks it before going idle.
    const extra = cfg.ringFlags ?? 0;
    const taskrunFlag = extra & IO.IORING_SETUP_DEFER_TASKRUN ? IO.IORING_SETUP_TASKRUN_FLAG : 0;
    this.ring = cfg.stand?.ring ?? createRing(entries, IO.IORING_SETUP_COOP_TASKRUN | IO.IORING_SETUP_SINGLE_ISSUER | extra | taskrunFlag, entries * 2);
    this.fdRef = cfg.noFixedFd ? cfg.ublkcFd : 0;
    this.sqeFdFlags = cfg.noFixedFd ? 0 : IO.IOSQE_FIXED_FILE;
    try {
      if (!cfg.noFixedFd) this.ring.registerFiles([cfg.ublkcFd]);
      if (fixedBufs) this.ring.registerSparseBuffers(this.rotating ? 2 * n : n);
      if (cfg.stand) cfg.stand.descriptors.forEach((d, q) => (this.desc[q] = d));
      else this.descMaps = mapDescriptors(cfg.ublkcFd, cfg.queueDepth, this.slots.qid, this.desc, cfg.ioDescSize);
      const bufs = (this.bufs = new SlotBuffers(n, cfg.maxIoBufBytes, !fixedBufs, cfg.integrity));
      const fallback = !!cfg.autoBufRegFallback;
      const abr = cfg.mode === 'auto-buf-reg';
      this.cmds = new IoCmds(this, {
        bufAddr: !cfg.batch && (cfg.mode === 'copy' || cfg.mode === 'get-data') ? bufs.dataAddr : undefined,
        autoField: abr ? (s) => autoBufRegField(s, fallback) : undefined,
      });
      this.extents = new ExtentIo(this, this.cmds, bufs.dataAddr, cfg.mode === 'user-copy');
      this.rw = new TargetRw(this);
      if (cfg.shmem) this.shmem = new ShmemZc(this, this.rw, cfg.shmem);
      if (cfg.target.limits?.zoned && cfg.mode === 'user-copy' && !cfg.batch) {
        this.zoned = new ZonedOps(this, this.rw, bufs, (s, r, lba) => this.commitLba(s, r, lba));
      }
      this.path = choosePath(this, this.rw, this.extents, bufs);
      this.extents.bind(this.path);
      this.transport = cfg.batch ? this.batchTransport(bufs, fallback) : this.cmds;
      this.pump = new Pump(this.ring, this.path, this.transport, (e) => this.cfg.onError?.(e), () => this.live > 0);
    } catch (err) {
      this.release();
      throw err;
    }
  }

  private batchTransport(bufs: SlotBuffers, fallback: boolean): BatchTransport {
    return new BatchTransport({
      ring: this.ring, fdRef: this.fdRef, sqeFdFlags: this.sqeFdFlags,
      bufAddr: this.cfg.mode === 'copy' ? bufs.dataAddr : undefined, tag: this.slots.tag,
      autoIndex: (s) => autoBufIndex(s, fallback, this.slots.bufIndex[s]), fallback,
      rotate: this.rotating ? (s) => this.slots.rotate(s) : undefined,
      deliver: (s) => {
        this.own(s);
        this.dispatch(s);
      },
      aborted: (slots) => {
        this.draining = true;
        for (const s of slots) if (this.slots.state[s] !== OWNED) this.retire(s);
      },
      error: (e) => this.cfg.onError?.(e),
      kick: () => this.scheduleFlush(),
    }, this.cfg.slots, this.cfg.queueDepth);
  }

  get linkable(): boolean {
    return this.linkCommit && !this.cfg.batch && !this.draining;
  }

  /** The context handed to the target's open(): this thread's ring and file IO on it. */
  context(queues: number[], thread: number): TargetContext {
    return { ring: this.ring, io: new FileIo(this.ring), queues, thread };
  }

  /** Arms every slot and submits them in one enter; IO then flows from the event loop. */
  start(): void {
    this.ring.onQueue = () => this.scheduleFlush();
    this.pump.watch(this.onCqe);
    this.slots.state.fill(ARMED);
    this.transport.start();
    this.flush();
  }

  scheduleFlush(): void {
    this.pump.schedule();
  }

  /** One io_uring_enter for everything queued in this turn of the event loop. */
  flush(): void {
    if (!this.released) this.pump.submit();
  }

  private readonly onCqe = (hi: number, s: number, res: number, flags: number): void => {
    const kind = hi & 0xff;
    switch (kind) {
      case K_CMD:
        return this.onCmd(s, res);
      case K_REG:
      case K_ZC_IO:
      case K_UNREG:
      case K_UNREG_LATE:
        return this.extents!.onCqe(kind, hi >>> 8, s, res);
      case K_LCMD:
        if (this.extents!.onLinkedCommit(s, res)) return;
        return this.onCmd(s, res);
      default:
        return this.transport.onCqe(kind, s, res, flags);
    }
  };

  private onCmd(s: number, res: number): void {
    if (res === U.UBLK_IO_RES_OK) {
      this.own(s);
      return this.dispatch(s);
    }
    const sl = this.slots;
    if (res === U.UBLK_IO_RES_NEED_GET_DATA) {
      // The WRITE is dispatched only when NEED_GET_DATA completes: the kernel may copy part of the
      // data and shrink nr_sectors, so the descriptor is decoded again after the copy.
      this.own(s);
      decodeIoDesc(this.desc[sl.qid[s]], sl.tag[s], sl, s, this.descWords);
      sl.gdLen[s] = sl.len[s];
      sl.gdOff[s] = sl.off[s];
      return this.cmds.needGetData(s);
    }
    // -ENODEV / -ECANCELED: the device is stopping, quiescing or the ring is going away. Any other
    // error means the kernel refused a FETCH, COMMIT or NEED_GET_DATA: a refused commit leaves its
    // request owned by us forever, so serving on would hang that client IO. Fail-stop instead, and
    // say so: the other slots drain, the ring closes, and the kernel fails (or, with recovery,
    // requeues) what this thread served.
    if (res !== ENODEV && res !== ECANCELED && !this.failure) {
      this.failure = new Error(`ublk io command on queue ${sl.qid[s]} tag ${sl.tag[s]} failed: ${errnoName(res)}; this thread stops serving`);
      this.cfg.onError?.(this.failure);
    }
    this.draining = true;
    this.retire(s);
  }

  /** Decodes slot s's descriptor once and hands the request to the data path (or the target). */
  private dispatch(s: number): void {
    const sl = this.slots;
    decodeIoDesc(this.desc[sl.qid[s]], sl.tag[s], sl, s, this.descWords);
    const op = sl.op[s];
    const t = this.target;
    try {
      switch (op) {
        case U.UBLK_IO_OP_READ:
        case U.UBLK_IO_OP_WRITE:
          // Shared-memory zero copy: the client's pages are our own mapping; no copy either way.
          if (sl.flags[s] & U.UBLK_IO_F_SHMEM_ZC && this.shmem) return this.shmem.start(s);
          sl.done[s] = 0;
          return this.path.start(s);
        case U.UBLK_IO_OP_FLUSH:
          return this.rw.settle(s, t.flush ? t.flush() : 0);
        case U.UBLK_IO_OP_DISCARD:
          return this.rw.settle(s, t.discard ? t.discard(sl.off[s], sl.len[s]) : EOPNOTSUPP);
        case U.UBLK_IO_OP_WRITE_ZEROES:
          return this.rw.settle(s, t.writeZeroes ? t.writeZeroes(sl.off[s], sl.len[s], (sl.flags[s] & U.UBLK_IO_F_NOUNMAP) !== 0) : EOPNOTSUPP);
        default:
          if (this.zoned && isZoneOp(op)) return this.zoned.start(s);
          return this.commit(s, EOPNOTSUPP);
      }
    } catch (err) {
      this.commit(s, toNegErrno(err));
    }
  }

  /** COMMIT_AND_FETCH_REQ with `result`; re-arms the slot. Submitted with the batch. */
  commit(s: number, result: number): void {
    if (!this.rearm(s, result)) return;
    this.transport.commit(s, result);
    this.scheduleFlush();
  }

  /** A zone append's COMMIT: `lba` (the sector it landed at) rides in the command's addr. */
  private commitLba(s: number, result: number, lba: number): void {
    if (!this.rearm(s, result)) return;
    this.cmds.commit(s, result, lba);
    this.scheduleFlush();
  }

  own(s: number): void {
    if (this.slots.state[s] !== OWNED) {
      this.owned++;
      this.stats?.begin(s);
    }
    this.slots.state[s] = OWNED;
  }

  rearm(s: number, result = this.slots.len[s]): boolean {
    const st = this.slots.state;
    if (st[s] !== OWNED) return false;
    st[s] = ARMED;
    this.owned--;
    this.stats?.end(s, result);
    // After QUIESCE_DEV the kernel completes this request but keeps the re-armed command until
    // the ring closes: do not wait for it.
    if (this.draining) this.retire(s);
    return true;
  }

  private retire(s: number): void {
    const st = this.slots.state;
    if (st[s] === DONE) return;
    if (st[s] === OWNED) {
      this.owned--;
      this.stats?.drop(s);
    }
    st[s] = DONE;
    if (--this.live === 0) queueMicrotask(() => this.finish());
    else if (this.draining) this.drainCheck();
  }

  /**
   * Draining (a slot saw -ENODEV: stop, quiesce or cancel) ends once no slot holds work. An ARMED
   * slot may never complete: a commit the kernel took after QUIESCE_DEV's cancel sweep completes
   * its request but re-arms the command until the ring closes; a linked commit behind slow file
   * IO makes that likely. So ARMED slots are not waited for; closing the ring ends them.
   */
  private drainCheck(): void {
    if (this.owned > 0 || this.live === 0) return;
    this.slots.state.fill(DONE);
    this.live = 0;
    queueMicrotask(() => this.finish());
  }

  private finish(): void {
    if (this.released) return;
    this.flush();
    this.release();
    this.resolveDone();
  }

  /**
   * Ends the engine now, whatever the kernel still holds: closes the ring (the kernel cancels every
   * armed command) and unmaps, so that /dev/ublkcN can be released. For a start-up that failed and
   * for a server giving up; IO this thread owned is then aborted by the kernel's release path.
   */
  abort(): void {
    this.live = 0;
    this.slots.state.fill(DONE);
    this.release();
    this.resolveDone();
  }

  private release(): void {
    if (this.released) return;
    this.released = true;
    this.pump?.close();
    this.ring.close();
    this.extents?.close();
    const n = native();
    for (const ab of this.descMaps) n.munmap(ab);
    this.descMaps = [];
    this.bufs?.release();
    this.shmem?.release();
  }
}
