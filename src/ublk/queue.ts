// The per-thread fetch/commit engine: owns tags, buffers and data modes; targets never see them.
import * as fs from 'node:fs';
import { native, addressOf } from '../native.js';
import { Ring, createRing } from '../uring/ring.js';
import * as S from '../uring/sqe.js';
import * as IO from '../uapi/io-uring.js';
import * as U from '../uapi/ublk.js';
import { descMmapOffset, roundUp, userCopyOffset } from '../uapi/structs.js';
import { encodeIoCmd } from '../uapi/io-cmd.js';
import { toNegErrno, errnoName } from '../errors.js';
import { countResult, statusResult } from '../target/result.js';
import type { Extent, Target, TargetContext } from '../target/types.js';
import { FileIo } from '../uring/file-io.js';
import type { DataMode } from './modes.js';
import { BatchTransport, K_PREP, K_FETCH, K_COMMIT } from './batch.js';

// user_data high words of the engine's own SQEs (batch.ts owns 5..7); the low word is the slot index.
const K_CMD = 1;
const K_REG = 2;
const K_ZC_IO = 3;
const K_UNREG = 4;
/** COMMIT_AND_FETCH linked behind a request's single IO (see linkedCommit). */
const K_LCMD = 8;
/** A stand-alone UNREGISTER_IO_BUF after a broken linked chain; its CQE needs no handling. */
const K_UNREG_LATE = 9;

/**
 * CQEs handled between two io_uring_enter calls. Handling a whole burst before one enter holds
 * every commit back until the last request of the burst is dispatched, so the client sits idle
 * while the server works and then the reverse: a ping-pong. Committing every few requests lets the
 * client's next IO overlap the rest of the burst. Measured in the VM (fio, 1 queue): null -z 1 MiB
 * read 4.9-5.5 -> 7.8-8.1 GB/s, null 4 KiB randread 132 -> 143-157 MB/s; 4 to 16 all do as well.
 */
const REAP_BATCH = 8;
const RESOLVED = Promise.resolve();
/** Per-slot SQE templates (see `tpl`), in this order, one 64-byte SQE (16 words) each. */
const TPL_COMMIT = 0;
const TPL_REG = 1;
const TPL_UNREG = 2;
const TPL_OPS = [U.UBLK_U_IO_COMMIT_AND_FETCH_REQ, U.UBLK_U_IO_REGISTER_IO_BUF, U.UBLK_U_IO_UNREGISTER_IO_BUF];
const SQE_WORDS = 16;
const EIO = -5;
const EOPNOTSUPP = -95;
const ENODEV = -19;
const ECANCELED = -125;

// Linked-commit chain state bits (QueueEngine.link).
const LINK_OPEN = 1;
const LINK_MANUAL = 2;
const LINK_GOT_IO = 4;
const LINK_GOT_UNREG = 8;
const LINK_GOT_CANCEL = 16;

export interface EngineConfig {
  ublkcFd: number;
  queueDepth: number;
  maxIoBufBytes: number;
  /** (qid, tag) pairs this thread serves. */
  slots: Array<[number, number]>;
  target: Target;
  mode: DataMode;
  /** Use the raw ublkc fd in SQEs instead of fixed-file index 0. */
  noFixedFd?: boolean;
  /** Auto-buf-reg with FALLBACK and index 0xffff: every request takes the manual zero-copy path. */
  autoBufRegFallback?: boolean;
  /** UBLK_F_INTEGRITY (user copy only): protection interval and metadata bytes per interval. */
  integrity?: { intervalExp: number; metadataSize: number };
  /** UBLK_F_SHMEM_ZC: the shared file registered with REG_BUF; matching requests use it directly. */
  shmem?: { path: string; readOnly?: boolean };
  /** UBLK_F_BATCH_IO device: PREP/FETCH/COMMIT_IO_CMDS instead of per-IO commands. */
  batch?: boolean;
  /** fault_inject's --die_during_fetch: SIGKILL this process just before fetching tag 1. */
  dieDuringFetch?: boolean;
  /** Extra io_uring setup flags. */
  ringFlags?: number;
  /**
   * Bind the serving thread to this CPU before its ring exists (as kublk binds each queue thread
   * to the first CPU of its queue), so the ring's io-wq workers start there too.
   */
  cpu?: number;
  onError?: (err: Error) => void;
  /**
   * For tests and the engine benchmark only: a ring and descriptor arrays standing in for the
   * kernel's (a scripted driver), instead of io_uring and the mmapped /dev/ublkcN descriptors.
   */
  stand?: { ring: Ring; descriptors: Uint32Array[] };
}

/** Slot states. */
const ARMED = 1;
const OWNED = 2;
const DONE = 3;

export class QueueEngine {
  readonly ring: Ring;
  private readonly cfg: EngineConfig;
  private readonly n: number;
  private readonly qid: Uint16Array;
  private readonly tag: Uint16Array;
  private readonly state: Uint8Array;
  private readonly desc: Uint32Array[] = [];
  private readonly descBufs: ArrayBuffer[] = [];
  private readonly slab: ArrayBuffer | undefined;
  private readonly bufAddr: Float64Array;
  private readonly bufs: Uint8Array[] = [];
  private readonly ibufs: Uint8Array[] = [];
  private readonly ibufAddr: Float64Array;
  private islab: ArrayBuffer | undefined;
  private readonly fdRef: number;
  private readonly sqeFdFlags: number;
  private readonly copyAddr: boolean;
  private readonly directCopy: boolean = false;
  // Zero-copy bookkeeping per slot: CQEs still expected, extents and their results.
  private readonly zcLeft: Int32Array;
  private readonly zcErr: Int32Array;
  private readonly zcExtents: Array<Extent[] | undefined>;
  private readonly zcRes: Array<number[] | undefined>;
  // Linked commit per slot: 0 none, else LINK_* bits of what the chain holds and what came back.
  private readonly link: Uint8Array;
  private readonly linkUnreg: Int32Array;
  // Manual zero copy, linked: the IO moved every byte and the slot was re-armed, but the unregister
  // behind it posts a CQE only if it fails (which silently cancels the commit): the length to
  // commit then. 0 once the commit's own CQE (the next request) has come.
  private readonly unregPending: Uint32Array;
  // User copy by pread/pwrite on /dev/ublkcN, run in one native call per batch (runCopies):
  // 8 u32 per op (see native pcopy), the slot of each, and per slot what to do after its copy.
  private readonly copyOps: Uint32Array;
  private readonly copySlot: Int32Array;
  private readonly copySnap: Int32Array;
  private readonly ucAt: Uint32Array;
  private nCopies = 0;
  // The request a slot holds, for the paths that finish it in several passes: its offset, length,
  // op flags, and the bytes already done from its start (see advance()).
  private readonly rqOff: Float64Array;
  private readonly rqLen: Int32Array;
  private readonly rqFlags: Uint32Array;
  private readonly rqDone: Int32Array;
  /** Get-data: the WRITE's nr_sectors and first sector word before NEED_GET_DATA (see dispatch). */
  private readonly gdSectors: Uint32Array;
  private readonly gdStart: Uint32Array;
  /** Slot's direct file IO is a READ (user copy: the copy out must precede the commit). */
  private readonly xRead: Uint8Array;
  /** /dev/zero and /dev/null: the IO of extents with no file (fd -1). */
  private zeroFd = -1;
  private nullFd = -1;
  private readonly batch: BatchTransport | undefined;
  /**
   * Per slot, three pre-encoded 64-byte SQEs (16 words each): COMMIT_AND_FETCH_REQ, REGISTER_IO_BUF
   * and UNREGISTER_IO_BUF. The hot path copies one and patches the result, flags and user_data
   * instead of zeroing an SQE and encoding every field per request.
   */
  private readonly tpl: Int32Array;
  private readonly sqw: Int32Array;
  private shmemView: Uint8Array | undefined;
  private shmemMap: ArrayBuffer | undefined;
  private flushScheduled = false;
  /** Set at the first abort: slots committed from now on are re-armed but never hear back (quiesce). */
  private draining = false;
  private live: number;
  /** Set when the kernel refused an io command and the engine fail-stopped (see onCmd). */
  failure: Error | undefined;
  /** Slots in state OWNED. */
  private owned = 0;
  private resolveDone!: () => void;
  /** Resolves when every slot has been aborted by the kernel and nothing is in flight. */
  readonly done: Promise<void>;

  constructor(cfg: EngineConfig) {
    this.cfg = cfg;
    const n = (this.n = cfg.slots.length);
    this.qid = new Uint16Array(n);
    this.tag = new Uint16Array(n);
    this.state = new Uint8Array(n);
    this.bufAddr = new Float64Array(n);
    this.ibufAddr = new Float64Array(n);
    this.zcLeft = new Int32Array(n);
    this.zcErr = new Int32Array(n);
    this.zcExtents = new Array(n);
    this.zcRes = new Array(n);
    this.link = new Uint8Array(n);
    this.linkUnreg = new Int32Array(n);
    this.unregPending = new Uint32Array(n);
    this.copyOps = new Uint32Array(n * 8);
    this.copySlot = new Int32Array(n);
    this.copySnap = new Int32Array(n * 3);
    // Each slot's user-copy position on /dev/ublkcN (offset 0 of its request), as lo/hi words.
    this.ucAt = new Uint32Array(n * 2);
    this.rqOff = new Float64Array(n);
    this.rqLen = new Int32Array(n);
    this.rqFlags = new Uint32Array(n);
    this.rqDone = new Int32Array(n);
    this.gdSectors = new Uint32Array(n);
    this.gdStart = new Uint32Array(n);
    this.xRead = new Uint8Array(n);
    this.live = n;
    this.done = new Promise((r) => (this.resolveDone = r));
    if (cfg.cpu !== undefined) {
      const r = native().pinThread(cfg.cpu);
      if (r < 0) cfg.onError?.(new Error(`cannot bind the serving thread to CPU ${cfg.cpu} (errno ${-r}); it runs unbound`));
    }
    cfg.slots.forEach(([q, t], i) => {
      this.qid[i] = q;
      this.tag[i] = t;
      if (cfg.mode === 'user-copy') {
        const at = userCopyOffset(q, t, 0, false);
        this.ucAt[i * 2] = Number(at & 0xffffffffn);
        this.ucAt[i * 2 + 1] = Number(at >> 32n);
      }
    });
    // Manual zero copy costs REGISTER + IO + UNREGISTER + COMMIT per request (the fallback too).
    // A request's chain is queued whole (Ring.reserve), so even at depth 1 the ring must hold the
    // longest one: a request split into as many extents as the target makes of the largest IO.
    const perIo = cfg.mode === 'zero-copy' || cfg.autoBufRegFallback ? 4 : 2;
    const chain = maxExtents(cfg.target, cfg.maxIoBufBytes) + 3;
    const entries = Math.min(4096, 1 << Math.ceil(Math.log2(Math.max(8, n * perIo, chain))));
    // COOP_TASKRUN, not DEFER_TASKRUN: measured in the VM, deferred task work (which then needs an
    // extra io_uring_enter(GETEVENTS) per wake-up) was no faster for null and slower for loop.
    // Deferred task run is only safe with the TASKRUN flag: pump() checks it before going idle.
    const extra = cfg.ringFlags ?? 0;
    const taskrunFlag = extra & IO.IORING_SETUP_DEFER_TASKRUN ? IO.IORING_SETUP_TASKRUN_FLAG : 0;
    this.ring = cfg.stand?.ring ?? createRing(entries, IO.IORING_SETUP_COOP_TASKRUN | IO.IORING_SETUP_SINGLE_ISSUER | extra | taskrunFlag, entries * 2);
    this.deferTaskrun = (this.ring.flags & IO.IORING_SETUP_DEFER_TASKRUN) !== 0;
    try {
      if (cfg.noFixedFd) {
        this.fdRef = cfg.ublkcFd;
        this.sqeFdFlags = 0;
      } else {
        this.ring.registerFiles([cfg.ublkcFd]);
        this.fdRef = 0;
        this.sqeFdFlags = IO.IOSQE_FIXED_FILE;
      }
      if (cfg.mode === 'zero-copy' || cfg.mode === 'auto-buf-reg') this.ring.registerSparseBuffers(n);
      this.mapDescriptors();
      this.copyAddr = !cfg.batch && (cfg.mode === 'copy' || cfg.mode === 'get-data');
      // Copy and user-copy modes need one stable buffer per slot: one lazily backed anonymous
      // mapping, so untouched pages of a 1 MiB-per-tag slab cost nothing.
      if (cfg.mode !== 'zero-copy' && cfg.mode !== 'auto-buf-reg') {
        const size = roundUp(cfg.maxIoBufBytes, 4096);
        const c = native().constants;
        this.slab = native().mmap(-1, size * n, c.PROT_READ | c.PROT_WRITE, c.MAP_PRIVATE | c.MAP_ANONYMOUS, 0);
        const base = addressOf(this.slab);
        for (let i = 0; i < n; i++) {
          this.bufs.push(new Uint8Array(this.slab, i * size, size));
          this.bufAddr[i] = base + i * size;
        }
      }
      if (cfg.shmem) this.mapShmem(cfg.shmem);
      this.sqw = new Int32Array(this.ring.sqes.buffer, this.ring.sqes.byteOffset, this.ring.sqes.byteLength >> 2);
      this.tpl = this.encodeTemplates();
      if (cfg.integrity) this.allocIntegrity(cfg.maxIoBufBytes, n);
      // Copy modes with a pass-through target whose extents are real files: the engine reads and
      // writes the extents into the slot buffer itself (one SQE per extent, completion handled in
      // the CQE handler) instead of a promise round trip through target.read()/write().
      // User copy too (without integrity): the copy to or from the request is a pread/pwrite.
      // Holes (fd -1) are read from /dev/zero and written to /dev/null: opened now, not half way
      // through queueing a request's linked chain, where a failed open would strand it.
      if (cfg.target.route) {
        this.zeroFd = fs.openSync('/dev/zero', 'r');
        this.nullFd = fs.openSync('/dev/null', 'w');
      }
      const direct = cfg.mode === 'copy' || cfg.mode === 'get-data' || (cfg.mode === 'user-copy' && !cfg.integrity);
      const probe = cfg.target.route && direct ? cfg.target.route(0, 512) : [];
      this.directCopy = probe.length > 0 && probe.every((e) => e.fd >= 0);
      if (cfg.batch) {
        this.batch = new BatchTransport({
          ring: this.ring, fdRef: this.fdRef, sqeFdFlags: this.sqeFdFlags,
          copyMode: cfg.mode === 'copy', autoBufReg: cfg.mode === 'auto-buf-reg', fallback: !!cfg.autoBufRegFallback,
          bufAddr: (s) => this.bufAddr[s], tag: (s) => this.tag[s],
          deliver: (s) => {
            this.own(s);
            this.dispatch(s);
          },
          aborted: (slots) => {
            this.draining = true;
            for (const s of slots) if (this.state[s] !== OWNED) this.retire(s);
          },
          error: (e) => this.cfg.onError?.(e),
          kick: () => this.scheduleFlush(),
        }, cfg.slots, cfg.queueDepth);
      }
    } catch (err) {
      this.release();
      throw err;
    }
  }

  /** The auto-buf-reg index of slot s (0xffff forces the fallback path). */
  private readonly autoIndex = (s: number): number => (this.cfg.autoBufRegFallback ? 0xffff : s);

  private allocIntegrity(maxIo: number, n: number): void {
    const size = roundUp(Math.max(64, this.metaLen(maxIo)), 64);
    const c = native().constants;
    this.islab = native().mmap(-1, roundUp(size * n, 4096), c.PROT_READ | c.PROT_WRITE, c.MAP_PRIVATE | c.MAP_ANONYMOUS, 0);
    const base = addressOf(this.islab);
    for (let i = 0; i < n; i++) {
      this.ibufs.push(new Uint8Array(this.islab, i * size, size));
      this.ibufAddr[i] = base + i * size;
    }
  }

  /** Maps the same shared file the device registered; request offsets are relative to its start. */
  private mapShmem(sh: { path: string; readOnly?: boolean }): void {
    const c = native().constants;
    const fd = fs.openSync(sh.path, sh.readOnly ? fs.constants.O_RDONLY : fs.constants.O_RDWR);
    try {
      const size = fs.fstatSync(fd).size;
      this.shmemMap = native().mmap(fd, size, sh.readOnly ? c.PROT_READ : c.PROT_READ | c.PROT_WRITE, c.MAP_SHARED, 0);
      this.shmemView = new Uint8Array(this.shmemMap);
    } finally {
      fs.closeSync(fd);
    }
  }

  private mapDescriptors(): void {
    if (this.cfg.stand) {
      this.cfg.stand.descriptors.forEach((d, q) => (this.desc[q] = d));
      return;
    }
    const c = native().constants;
    const len = roundUp(this.cfg.queueDepth * U.SIZEOF_UBLKSRV_IO_DESC, c.PAGE_SIZE);
    for (const q of new Set(this.qid)) {
      const ab = native().mmap(this.cfg.ublkcFd, len, c.PROT_READ, c.MAP_SHARED, descMmapOffset(q, c.PAGE_SIZE));
      this.descBufs.push(ab);
      this.desc[q] = new Uint32Array(ab);
    }
  }

  /** The context handed to the target's open(): this thread's ring and file IO on it. */
  context(queues: number[], thread: number): TargetContext {
    return { ring: this.ring, io: new FileIo(this.ring), queues, thread };
  }

  /** Arms every slot with FETCH_REQ and submits them in one enter; IO then flows from the event loop. */
  start(): void {
    this.ring.onQueue = () => this.scheduleFlush();
    this.ring.watch(() => this.onWake());
    if (this.batch) {
      this.state.fill(ARMED);
      this.batch.start(this.autoIndex);
      return this.flush();
    }
    for (let s = 0; s < this.n; s++) {
      if (this.cfg.dieDuringFetch && this.tag[s] === 1) {
        this.flush();
        process.kill(process.pid, 'SIGKILL');
      }
      this.ioCmd(s, U.UBLK_U_IO_FETCH_REQ, 0);
      this.state[s] = ARMED;
    }
    this.flush();
  }

  private readonly deferTaskrun: boolean;

  private onWake(): void {
    // Deferred task work runs only inside io_uring_enter(GETEVENTS) on this thread.
    if (this.deferTaskrun && this.ring.unsubmitted === 0) this.ring.submit(0, true);
    this.pump();
  }

  /**
   * Reap, dispatch and submit until the ring is quiet. Completions that the kernel posts inline
   * during our own io_uring_enter (fixed-buffer IO, register/unregister, user copy) are handled
   * in the same turn instead of costing another eventfd wake-up and event-loop round trip; the
   * bound keeps a busy ring from starving the rest of the event loop.
   */
  private pump(): void {
    // No eventfd signals while we reap anyway: each would queue a spurious wake-up (epoll, read,
    // an empty pump) for completions this loop has already handled.
    this.ring.notify(false);
    // While pumping, the loop's own submits cover every SQE queued: no flush microtask per commit.
    this.pumping = true;
    for (let i = 0; i < 64; i++) {
      const reaped = this.ring.reap(this.onCqe, REAP_BATCH);
      this.flushWanted = false;
      const submitted = this.submitBatch();
      if (reaped === 0 && submitted === 0) break;
    }
    this.pumping = false;
    if (this.flushWanted) this.scheduleFlush();
    this.ring.notify(true);
    // Completions posted (or, with deferred task run, waiting to be posted) while signals were off:
    // pump again after the event loop has had its turn (a microtask here could starve it).
    if (this.ring.ready > 0 || this.ring.cqOverflow || (this.deferTaskrun && this.ring.taskrunPending)) this.pumpSoon();
  }

  private immediate = false;
  private pumpSoon(): void {
    if (this.immediate) return;
    this.immediate = true;
    setImmediate(() => {
      this.immediate = false;
      if (this.live > 0) this.pump();
    });
  }

  private readonly onCqe = (hi: number, s: number, res: number, flags: number): void => {
    switch (hi & 0xff) {
      case K_CMD:
        return this.onCmd(s, res);
      case K_REG:
        // Only failures post (CQE_SKIP_SUCCESS); the linked IO and unregister still complete.
        this.zcErr[s] = res;
        return;
      case K_ZC_IO:
        this.zcRes[s]![hi >>> 8] = res;
        if (this.link[s]) {
          this.link[s] |= LINK_GOT_IO;
          return this.linkStep(s);
        }
        return this.zcStep(s);
      case K_UNREG:
        if (this.link[s]) {
          this.linkUnreg[s] = res;
          this.link[s] |= LINK_GOT_UNREG;
          return this.linkStep(s);
        }
        if (this.unregPending[s]) return this.unregFailed(s);
        return this.zcStep(s);
      case K_LCMD:
        // -ECANCELED while the chain is open: an earlier link failed and the commit never ran.
        if (this.link[s] && res === ECANCELED) {
          this.link[s] |= LINK_GOT_CANCEL;
          return this.linkStep(s);
        }
        this.unregPending[s] = 0;
        return this.onCmd(s, res);
      case K_UNREG_LATE:
        return;
      case K_PREP:
      case K_FETCH:
      case K_COMMIT:
        return this.batch!.onCqe(hi & 0xff, s, res, flags);
    }
  };

  private onCmd(s: number, res: number): void {
    if (res === U.UBLK_IO_RES_OK) {
      this.own(s);
      return this.dispatch(s);
    }
    if (res === U.UBLK_IO_RES_NEED_GET_DATA) {
      // The WRITE is dispatched only when NEED_GET_DATA completes: the kernel may copy part of the
      // data and shrink nr_sectors, so the descriptor is read after the copy, never before.
      this.own(s);
      this.gdSectors[s] = this.desc[this.qid[s]][this.tag[s] * 6 + 1];
      this.gdStart[s] = this.desc[this.qid[s]][this.tag[s] * 6 + 2];
      return this.ioCmd(s, U.UBLK_U_IO_NEED_GET_DATA, 0);
    }
    // -ENODEV / -ECANCELED: the device is stopping, quiescing or the ring is going away. Any other
    // error means the kernel refused a FETCH, COMMIT or NEED_GET_DATA: a refused commit leaves its
    // request owned by us forever, so serving on would hang that client IO. Fail-stop instead, and
    // say so: the other slots drain, the ring closes, and the kernel fails (or, with recovery,
    // requeues) what this thread served.
    if (res !== ENODEV && res !== ECANCELED && !this.failure) {
      this.failure = new Error(`ublk io command on queue ${this.qid[s]} tag ${this.tag[s]} failed: ${errnoName(res)}; this thread stops serving`);
      this.cfg.onError?.(this.failure);
    }
    this.draining = true;
    this.retire(s);
  }

  /** A request arrived on slot s: the server holds work there until it commits. */
  private own(s: number): void {
    if (this.state[s] !== OWNED) this.owned++;
    this.state[s] = OWNED;
  }

  private retire(s: number): void {
    if (this.state[s] === DONE) return;
    if (this.state[s] === OWNED) this.owned--;
    this.state[s] = DONE;
    if (--this.live === 0) queueMicrotask(() => this.finish());
    else if (this.draining) this.drainCheck();
  }

  /**
   * Draining (a slot saw -ENODEV: stop, quiesce or cancel) ends once no slot holds work. An ARMED
   * slot may never complete: a commit the kernel took after QUIESCE_DEV's cancel sweep completes
   * its request but re-arms the command until the ring closes (spec 8.5); a linked commit behind
   * slow file IO makes that likely. So ARMED slots are not waited for; closing the ring ends them.
   */
  private drainCheck(): void {
    if (this.owned > 0 || this.live === 0) return;
    this.state.fill(DONE);
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
    this.state.fill(DONE);
    this.release();
    this.resolveDone();
  }

  private released = false;

  private release(): void {
    if (this.released) return;
    this.released = true;
    this.ring.close();
    if (this.zeroFd >= 0) fs.closeSync(this.zeroFd);
    if (this.nullFd >= 0) fs.closeSync(this.nullFd);
    this.zeroFd = this.nullFd = -1;
    const n = native();
    for (const ab of this.descBufs) n.munmap(ab);
    this.descBufs.length = 0;
    if (this.slab) n.munmap(this.slab);
    if (this.shmemMap) n.munmap(this.shmemMap);
    if (this.islab) n.munmap(this.islab);
  }

  /** Reads the descriptor of slot `s` and hands the request to the target (or the zero-copy path). */
  private dispatch(s: number): void {
    const d = this.desc[this.qid[s]];
    const w = this.tag[s] * 6;
    const opFlags = d[w];
    const len = d[w + 1] * 512;
    const off = (d[w + 2] + d[w + 3] * 0x100000000) * 512;
    const op = opFlags & 0xff;
    const t = this.cfg.target;
    const mode = this.cfg.mode;
    const fua = (opFlags & U.UBLK_IO_F_FUA) !== 0;
    try {
      // Shared-memory zero copy: the client's pages are our own mapping; no copy either way.
      if (opFlags & U.UBLK_IO_F_SHMEM_ZC && this.shmemView && (op === U.UBLK_IO_OP_READ || op === U.UBLK_IO_OP_WRITE)) {
        const at = d[w + 4];
        return this.targetRw(s, op === U.UBLK_IO_OP_READ, this.shmemView.subarray(at, at + len), off, fua, false, 0);
      }
      switch (op) {
        case U.UBLK_IO_OP_READ:
        case U.UBLK_IO_OP_WRITE: {
          const isRead = op === U.UBLK_IO_OP_READ;
          if (this.gdSectors[s]) {
            // NEED_GET_DATA copied only part of the WRITE. Committing that part would have 7.2
            // re-send the rest, but 7.3 would end the whole write as done: fail it instead. (The
            // same WRITE only: after a copy of nothing the kernel requeues it and this slot may
            // get another request first.)
            const short = !isRead && d[w + 2] === this.gdStart[s] && d[w + 1] < this.gdSectors[s];
            this.gdSectors[s] = 0;
            if (short) return this.commit(s, EIO);
          }
          this.rqOff[s] = off;
          this.rqLen[s] = len;
          this.rqFlags[s] = opFlags;
          this.rqDone[s] = 0;
          this.xRead[s] = isRead ? 1 : 0;
          if (mode === 'zero-copy' || mode === 'auto-buf-reg') return this.zcStart(s, false);
          if (mode === 'user-copy' && this.cfg.integrity) return void (isRead ? this.userCopyRead(s, off, len, opFlags) : this.userCopyWrite(s, off, len, opFlags));
          if (mode === 'user-copy' && !isRead) return this.queueCopy(s, 0, len);
          if (this.directCopy) return this.directStart(s);
          return this.targetRw(s, isRead, this.bufs[s].subarray(0, len), off, fua, isRead && mode === 'user-copy', 0);
        }
        case U.UBLK_IO_OP_FLUSH:
          return this.settle(s, t.flush ? t.flush() : 0);
        case U.UBLK_IO_OP_DISCARD:
          return this.settle(s, t.discard ? t.discard(off, len) : EOPNOTSUPP);
        case U.UBLK_IO_OP_WRITE_ZEROES:
          return this.settle(s, t.writeZeroes ? t.writeZeroes(off, len, (opFlags & U.UBLK_IO_F_NOUNMAP) !== 0) : EOPNOTSUPP);
        default:
          return this.commit(s, EOPNOTSUPP);
      }
    } catch (err) {
      this.commit(s, toNegErrno(err));
    }
  }

  /** FLUSH, DISCARD, WRITE_ZEROES: any non-negative result is success. */
  private settle(s: number, r: unknown): void {
    if (r instanceof Promise) r.then((v) => this.commit(s, this.check(v, 0, false)), (e) => this.commit(s, toNegErrno(e)));
    else this.commit(s, this.check(r, 0, false));
  }

  /**
   * READ/WRITE through the target, finished here: a short count re-asks the target for the rest,
   * and only the whole length (or an error) is committed. Never leave the rest to the kernel:
   * Linux 7.3 ends a request committed short as if it were whole (every WRITE, and READs in user
   * copy, zero copy and auto buffer registration), so its tail would be silently lost or stale.
   * `copyOut`: a user-copy READ, whose data is copied into the request before the commit.
   */
  private targetRw(s: number, isRead: boolean, buf: Uint8Array, off: number, fua: boolean, copyOut: boolean, done: number): void {
    const t = this.cfg.target;
    const len = buf.byteLength;
    for (;;) {
      let r: unknown;
      try {
        const part = done === 0 ? buf : buf.subarray(done);
        r = isRead ? t.read(part, off + done) : t.write(part, off + done, { fua });
      } catch (err) {
        return this.commit(s, toNegErrno(err));
      }
      if (r instanceof Promise) {
        r.then((v) => {
          const n = this.check(v, len - done, true);
          if (n < 0) return this.commit(s, n);
          if (done + n === len) return this.rwDone(s, len, copyOut);
          this.targetRw(s, isRead, buf, off, fua, copyOut, done + n);
        }, (e) => this.commit(s, toNegErrno(e)));
        return;
      }
      const n = this.check(r, len - done, true);
      if (n < 0) return this.commit(s, n);
      done += n;
      if (done === len) return this.rwDone(s, len, copyOut);
    }
  }

  private rwDone(s: number, len: number, copyOut: boolean): void {
    if (copyOut) this.queueCopy(s, 1, len);
    else this.commit(s, len);
  }

  /**
   * Loops a target call until `buf` is whole, for the async integrity paths; resolves with the
   * length or a negative errno (a short count is re-asked, 0 is no progress: -EIO).
   */
  private async fullRw(isRead: boolean, buf: Uint8Array, off: number, fua: boolean): Promise<number> {
    const t = this.cfg.target;
    let done = 0;
    while (done < buf.byteLength) {
      const part = buf.subarray(done);
      const n = this.check(await (isRead ? t.read(part, off + done) : t.write(part, off + done, { fua })), part.byteLength, true);
      if (n < 0) return n;
      done += n;
    }
    return done;
  }

  /**
   * The contract on results, in one place. READ/WRITE must report an integer 0..len of bytes done:
   * reporting more than was filled would hand the client uninitialised memory, so it becomes -EIO,
   * as does 0. Other ops succeed with any non-negative result.
   */
  private check(v: unknown, len: number, counted: boolean): number {
    return counted ? countResult(v, len) : statusResult(v);
  }

  /** One user-copy transfer between our buffer and the request (or its integrity data) on /dev/ublkcN. */
  private ucopy(opcode: number, s: number, addr: number, len: number, integrity: boolean): Promise<number> {
    const p = this.ring.op((v, o) => {
      S.prepRwBig(v, o, opcode, this.fdRef, addr, len, userCopyOffset(this.qid[s], this.tag[s], 0, integrity));
      v.setUint8(o + 1, this.sqeFdFlags);
    });
    return p;
  }

  /** Integrity bytes that go with `bytes` of data: one metadata tuple per protection interval. */
  private metaLen(bytes: number): number {
    const m = this.cfg.integrity!;
    return Math.floor(bytes / 2 ** m.intervalExp) * m.metadataSize;
  }

  /**
   * User copy READ with integrity: the target fills our buffer, we copy it (and its integrity data)
   * into the request, and only then commit (spec 7.4: the copy must precede COMMIT). Whole or error:
   * a short copy into the request is -EIO, never a short commit.
   */
  private async userCopyRead(s: number, off: number, len: number, opFlags: number): Promise<void> {
    const t = this.cfg.target;
    try {
      const n = await this.fullRw(true, this.bufs[s].subarray(0, len), off, false);
      if (n < 0) return this.commit(s, n);
      const c = await this.ucopy(IO.IORING_OP_WRITE, s, this.bufAddr[s], len, false);
      if (c !== len) return this.commit(s, c < 0 ? c : EIO);
      if (opFlags & U.UBLK_IO_F_INTEGRITY && t.readIntegrity) {
        const ilen = this.metaLen(len);
        const r = await t.readIntegrity(this.ibufs[s].subarray(0, ilen), off);
        if (typeof r === 'number' && r < 0) return this.commit(s, r);
        const ic = await this.ucopy(IO.IORING_OP_WRITE, s, this.ibufAddr[s], ilen, true);
        if (ic !== ilen) return this.commit(s, ic < 0 ? ic : EIO);
      }
      this.commit(s, len);
    } catch (err) {
      this.commit(s, toNegErrno(err));
    }
  }

  /** User copy WRITE with integrity: copy the request and its integrity data out, then store both. */
  private async userCopyWrite(s: number, off: number, len: number, opFlags: number): Promise<void> {
    const t = this.cfg.target;
    try {
      const got = await this.ucopy(IO.IORING_OP_READ, s, this.bufAddr[s], len, false);
      if (got !== len) return this.commit(s, got < 0 ? got : EIO);
      if (opFlags & U.UBLK_IO_F_INTEGRITY && t.writeIntegrity) {
        const ilen = this.metaLen(len);
        const ig = await this.ucopy(IO.IORING_OP_READ, s, this.ibufAddr[s], ilen, true);
        if (ig !== ilen) return this.commit(s, ig < 0 ? ig : EIO);
        const r = await t.writeIntegrity(this.ibufs[s].subarray(0, ig), off);
        if (typeof r === 'number' && r < 0) return this.commit(s, r);
      }
      const n = await this.fullRw(false, this.bufs[s].subarray(0, len), off, (opFlags & U.UBLK_IO_F_FUA) !== 0);
      this.commit(s, n < 0 ? n : len);
    } catch (err) {
      this.commit(s, toNegErrno(err));
    }
  }

  /**
   * User copy without io_uring: /dev/ublkcN is not FMODE_NOWAIT, so io_uring would hand every copy
   * to an io-wq thread. Copies are queued here and run by runCopies() as pread (dir 0: a WRITE
   * request's data into our buffer) or pwrite (dir 1: our buffer into a READ request) in one
   * native call per batch, like kublk's synchronous copies but batched.
   */
  private queueCopy(s: number, dir: 0 | 1, len: number): void {
    const i = this.nCopies++;
    const w = i * 8;
    const addr = this.bufAddr[s];
    const ops = this.copyOps;
    ops[w] = dir;
    ops[w + 1] = len;
    ops[w + 2] = addr % 0x100000000;
    ops[w + 3] = Math.floor(addr / 0x100000000);
    ops[w + 4] = this.ucAt[s * 2];
    ops[w + 5] = this.ucAt[s * 2 + 1];
    ops[w + 6] = 0;
    this.copySlot[i] = s;
    this.scheduleFlush();
  }

  /** Runs the queued copies, then what each request does next (all before this batch's enter). */
  private runCopies(): void {
    const ops = this.copyOps;
    const snap = this.copySnap;
    while (this.nCopies > 0) {
      const n = this.nCopies;
      native().pcopy(this.cfg.ublkcFd, ops, n);
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

  /** A copy moves the whole request or the request fails: a short copy is -EIO, never a short commit. */
  private afterCopy(s: number, dir: number, r: number): void {
    const len = this.rqLen[s];
    if (r !== len) return this.commit(s, r < 0 ? r : EIO);
    if (dir === 1) return this.commit(s, len);
    if (this.directCopy) return this.directStart(s);
    this.targetRw(s, false, this.bufs[s].subarray(0, len), this.rqOff[s], (this.rqFlags[s] & U.UBLK_IO_F_FUA) !== 0, false, 0);
  }

  /**
   * Whether the request is one extent covering the whole buffer, so its COMMIT can be linked behind
   * the IO and go down in the same io_uring_enter (see linkStep). Batch IO commits in bulk instead.
   */
  private canLink(extents: Extent[], len: number): boolean {
    return extents.length === 1 && extents[0].length === len && extents[0].bufOffset === 0 && !this.batch && !this.draining;
  }

  /**
   * Zero copy: the request's pages become fixed buffer `s` of this ring (registered by us, or by
   * the kernel in auto-buf-reg mode) and the target's extents are read/written with them directly.
   * One pass covers what is left of the request (rqOff/rqLen/rqDone); `regHeld`: a resumed pass
   * whose buffer is still registered from the pass before (see linkStep).
   */
  private zcStart(s: number, regHeld: boolean): void {
    const route = this.cfg.target.route;
    if (!route) return this.commit(s, EOPNOTSUPP);
    const shift = this.rqDone[s];
    const len = this.rqLen[s] - shift;
    const opFlags = this.rqFlags[s];
    const isRead = this.xRead[s] === 1;
    const extents = route.call(this.cfg.target, this.rqOff[s] + shift, len);
    if (extents.length === 0) {
      if (regHeld) this.bufCmd(s, U.UBLK_U_IO_UNREGISTER_IO_BUF, 0, K_UNREG_LATE);
      return this.commit(s, EIO);
    }
    const v = this.ring.sqes;
    const manual = this.cfg.mode === 'zero-copy' || (opFlags & U.UBLK_IO_F_NEED_REG_BUF) !== 0;
    const linked = this.canLink(extents, len);
    // FUA: the write reaches stable storage before it completes (RWF_DSYNC), as the client asked.
    const rwFlags = !isRead && opFlags & U.UBLK_IO_F_FUA ? IO.RWF_DSYNC : 0;
    this.zcExtents[s] = extents;
    this.resetRes(s, extents.length);
    this.zcErr[s] = 0;
    this.zcLeft[s] = extents.length + (manual ? 1 : 0);
    this.ring.reserve(extents.length + (manual ? 2 : 0) + (linked ? 1 : 0));
    if (manual && !regHeld) this.bufCmd(s, U.UBLK_U_IO_REGISTER_IO_BUF, IO.IOSQE_IO_HARDLINK | IO.IOSQE_CQE_SKIP_SUCCESS, K_REG);
    // Linked: a short or failed IO breaks a soft link, so the unregister and commit behind it are
    // cancelled and linkStep decides what comes next. Unlinked: hard links keep the unregister.
    const ioLink = linked ? IO.IOSQE_IO_LINK : manual ? IO.IOSQE_IO_HARDLINK : 0;
    for (let i = 0; i < extents.length; i++) {
      const e = extents[i];
      const o = this.ring.get();
      // An extent with no file is a hole: a READ gets zeroes (never whatever the client's pages
      // held), a WRITE is consumed by a fixed-buffer NOP.
      if (e.fd < 0 && !isRead) S.prepNopFixed(v, o, s, e.length);
      else if (isRead) S.prepReadFixed(v, o, e.fd < 0 ? this.zeroFd : e.fd, e.bufOffset + shift, e.length, e.fd < 0 ? 0 : e.offset, s);
      else S.prepWriteFixed(v, o, e.fd, e.bufOffset + shift, e.length, e.offset, s);
      if (rwFlags && e.fd >= 0) v.setUint32(o + 28, rwFlags, true);
      if (ioLink) v.setUint8(o + 1, ioLink);
      S.setUserData(v, o, K_ZC_IO + (i << 8), s);
    }
    // Linked, the unregister posts a CQE only on failure (see linkStep and unregFailed).
    if (manual) this.bufCmd(s, U.UBLK_U_IO_UNREGISTER_IO_BUF, linked ? IO.IOSQE_IO_LINK | IO.IOSQE_CQE_SKIP_SUCCESS : 0, K_UNREG);
    if (linked) return this.linkedCommit(s, this.rqLen[s], manual);
    this.scheduleFlush();
  }

  /**
   * Marks slot s's first `k` extent results as not yet in, reusing its array: no allocation per
   * request, and no `length = 0` (a runtime call). Results past `k` are stale and never read.
   */
  private resetRes(s: number, k: number): void {
    let r = this.zcRes[s];
    if (!r) r = this.zcRes[s] = [];
    for (let i = 0; i < k; i++) r[i] = EIO;
  }

  /**
   * Copy modes, pass-through target: READ/WRITE each extent between the file and the slot buffer
   * (the kernel copies between that buffer and the request around it). Completions come back as
   * K_ZC_IO; like zcStart, one pass covers what is left of the request.
   */
  private directStart(s: number): void {
    const shift = this.rqDone[s];
    const len = this.rqLen[s] - shift;
    const isRead = this.xRead[s] === 1;
    const extents = this.cfg.target.route!.call(this.cfg.target, this.rqOff[s] + shift, len);
    if (extents.length === 0) return this.commit(s, EIO);
    this.zcExtents[s] = extents;
    this.resetRes(s, extents.length);
    this.zcErr[s] = 0;
    this.zcLeft[s] = extents.length;
    const rwFlags = !isRead && this.rqFlags[s] & U.UBLK_IO_F_FUA ? IO.RWF_DSYNC : 0;
    // A user-copy READ must copy out before committing: never link its commit.
    const linked = this.canLink(extents, len) && !(isRead && this.cfg.mode === 'user-copy');
    this.ring.reserve(extents.length + (linked ? 1 : 0));
    const v = this.ring.sqes;
    const base = this.bufAddr[s] + shift;
    for (let i = 0; i < extents.length; i++) {
      const e = extents[i];
      const o = this.ring.get();
      if (isRead) S.prepRead(v, o, e.fd < 0 ? this.zeroFd : e.fd, base + e.bufOffset, e.length, e.fd < 0 ? 0 : e.offset);
      else S.prepWrite(v, o, e.fd < 0 ? this.nullFd : e.fd, base + e.bufOffset, e.length, e.fd < 0 ? 0 : e.offset);
      if (rwFlags && e.fd >= 0) v.setUint32(o + 28, rwFlags, true);
      if (linked) v.setUint8(o + 1, IO.IOSQE_IO_LINK);
      S.setUserData(v, o, K_ZC_IO + (i << 8), s);
    }
    if (linked) return this.linkedCommit(s, this.rqLen[s], false);
    this.scheduleFlush();
  }

  /**
   * The file IO of one pass moved `n` bytes (or failed): finish the request, or start another pass
   * for the rest. Linux 7.3 ends a request committed short as if it were whole (every WRITE, and
   * READs outside copy mode), so a short count is never committed: the rest is re-issued here, and
   * a pass that moves nothing ends the request with -EIO (which also bounds the passes).
   */
  private advance(s: number, n: number, regHeld: boolean): void {
    if (n <= 0) {
      if (regHeld) this.bufCmd(s, U.UBLK_U_IO_UNREGISTER_IO_BUF, 0, K_UNREG_LATE);
      return this.commit(s, n < 0 ? n : EIO);
    }
    const done = (this.rqDone[s] += n);
    const len = this.rqLen[s];
    if (done < len) {
      try {
        if (this.cfg.mode === 'zero-copy' || this.cfg.mode === 'auto-buf-reg') return this.zcStart(s, regHeld);
        return this.directStart(s);
      } catch (err) {
        // route() threw or the chain cannot be queued: nothing of this pass was submitted.
        if (regHeld) this.bufCmd(s, U.UBLK_U_IO_UNREGISTER_IO_BUF, 0, K_UNREG_LATE);
        return this.commit(s, toNegErrno(err));
      }
    }
    if (this.xRead[s] && this.cfg.mode === 'user-copy') return this.queueCopy(s, 1, len);
    this.commit(s, len);
  }

  /**
   * Queues COMMIT_AND_FETCH(len) soft-linked behind the request's only IO: when that IO moves every
   * byte, the commit runs in the same io_uring_enter, with no CQE round trip through this thread.
   * The result is claimed only when proven: io_uring fails a READ/WRITE link on any result other
   * than the full length, which cancels the commit, and linkStep then commits the real outcome.
   */
  private linkedCommit(s: number, len: number, manual: boolean): void {
    this.link[s] = LINK_OPEN | (manual ? LINK_MANUAL : 0);
    this.ioCmd(s, U.UBLK_U_IO_COMMIT_AND_FETCH_REQ, len, K_LCMD);
    this.scheduleFlush();
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
    const e = this.zcExtents[s]![0];
    const r = this.zcRes[s]![0];
    const ran = this.zcErr[s] >= 0 && r === e.length;
    if (!ran && ((manual && !(st & LINK_GOT_UNREG)) || !(st & LINK_GOT_CANCEL))) return;
    this.link[s] = 0;
    this.zcExtents[s] = undefined;
    if (ran) {
      if (manual) this.unregPending[s] = this.rqLen[s];
      return void this.rearm(s);
    }
    // The unregister was cancelled with the commit: the buffer is still in the table.
    const held = manual && this.linkUnreg[s] === ECANCELED && this.zcErr[s] >= 0;
    if (this.zcErr[s] < 0) return this.commit(s, this.zcErr[s]);
    this.advance(s, r > 0 ? Math.min(r, e.length) : r === 0 ? 0 : r, held);
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
    if (this.state[s] !== ARMED) return;
    this.own(s);
    this.commit(s, len);
  }

  private zcStep(s: number): void {
    if (--this.zcLeft[s] > 0) return;
    const extents = this.zcExtents[s]!;
    const res = this.zcRes[s]!;
    this.zcExtents[s] = undefined;
    if (this.zcErr[s] < 0) return this.commit(s, this.zcErr[s]);
    this.advance(s, prefixDone(extents, res), false);
  }

  /** COMMIT_AND_FETCH_REQ with `result`; re-arms the slot. Submitted with the batch. */
  private commit(s: number, result: number): void {
    if (!this.rearm(s)) return;
    if (this.batch) this.batch.commit(s, result);
    else this.ioCmd(s, U.UBLK_U_IO_COMMIT_AND_FETCH_REQ, result);
    this.scheduleFlush();
  }

  /** An OWNED slot whose commit is (or is being) sent becomes ARMED; false if it was not OWNED. */
  private rearm(s: number): boolean {
    if (this.state[s] !== OWNED) return false;
    this.state[s] = ARMED;
    this.owned--;
    // After QUIESCE_DEV the kernel completes this request but keeps the re-armed command until
    // the ring closes: do not wait for it (spec 8.5).
    if (this.draining) this.retire(s);
    return true;
  }

  /** Encodes each slot's COMMIT_AND_FETCH, REGISTER and UNREGISTER SQEs once (see `tpl`). */
  private encodeTemplates(): Int32Array {
    const tpl = new Int32Array(this.n * TPL_OPS.length * SQE_WORDS);
    const v = new DataView(tpl.buffer);
    for (let s = 0; s < this.n; s++) {
      for (let t = 0; t < TPL_OPS.length; t++) {
        // Kind 0: queueTemplate patches the user_data kind in on every use.
        this.encodeCmd(v, (s * TPL_OPS.length + t) * SQE_WORDS * 4, s, TPL_OPS[t], 0, 0);
      }
    }
    return tpl;
  }

  /**
   * Queues template `which` (TPL_COMMIT, TPL_REG, TPL_UNREG) of slot s with its SQE flags,
   * user_data kind and (commit) result patched in. Word 0 holds opcode | flags << 8, words 8-9
   * user_data (slot, kind), word 13 the ublksrv_io_cmd result.
   */
  private queueTemplate(s: number, which: number, sqeFlags: number, kind: number, result: number): void {
    const o = (this.ring.sqeSize === 64 ? this.ring.getRaw() : this.ring.get()) >> 2;
    const w = this.sqw;
    const t = this.tpl;
    const b = (s * TPL_OPS.length + which) * SQE_WORDS;
    for (let i = 0; i < SQE_WORDS; i++) w[o + i] = t[b + i];
    w[o] = (t[b] & ~0xff00) | ((this.sqeFdFlags | sqeFlags) << 8);
    w[o + 9] = kind;
    w[o + 13] = result;
  }

  /** REGISTER_IO_BUF / UNREGISTER_IO_BUF of slot s at buffer index s. */
  private bufCmd(s: number, op: number, flags: number, kind: number): void {
    this.queueTemplate(s, op === U.UBLK_U_IO_REGISTER_IO_BUF ? TPL_REG : TPL_UNREG, flags, kind, 0);
  }

  private ioCmd(s: number, op: number, result: number, kind = K_CMD): void {
    if (op === U.UBLK_U_IO_COMMIT_AND_FETCH_REQ) return this.queueTemplate(s, TPL_COMMIT, 0, kind, result);
    this.encodeCmd(this.ring.sqes, this.ring.get(), s, op, result, kind);
  }

  /**
   * One ublk io command of slot s. The io_cmd's addr is the buffer index for REGISTER/UNREGISTER
   * (index s) and the slot buffer in the copy modes; with auto buffer registration the index rides
   * in sqe->addr on every FETCH and COMMIT (not NEED_GET_DATA, not the buffer commands).
   */
  private encodeCmd(v: DataView, o: number, s: number, op: number, result: number, kind: number): void {
    const bufOp = op === U.UBLK_U_IO_REGISTER_IO_BUF || op === U.UBLK_U_IO_UNREGISTER_IO_BUF;
    S.prepUringCmd(v, o, this.fdRef, op);
    v.setUint8(o + 1, this.sqeFdFlags);
    encodeIoCmd(v, o + 48, this.qid[s], this.tag[s], result, bufOp ? s : this.copyAddr ? this.bufAddr[s] : 0);
    if (this.cfg.mode === 'auto-buf-reg' && !bufOp && op !== U.UBLK_U_IO_NEED_GET_DATA) {
      v.setUint32(o + 16, this.autoIndex(s) | (this.cfg.autoBufRegFallback ? U.UBLK_AUTO_BUF_REG_FALLBACK << 16 : 0), true);
    }
    S.setUserData(v, o, kind, s);
  }

  private pumping = false;
  /** A flush was asked for during pump() after its last submit. */
  private flushWanted = false;

  private scheduleFlush(): void {
    if (this.pumping) {
      this.flushWanted = true;
      return;
    }
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // A promise job, not queueMicrotask(): Node wraps each of those in an AsyncResource.
    RESOLVED.then(this.flushTask);
  }

  private readonly flushTask = (): void => {
    this.flushScheduled = false;
    if (this.live > 0) this.pump();
    else this.flush();
  };

  /** One io_uring_enter for everything queued in this turn of the event loop. */
  flush(): void {
    if (!this.released) this.submitBatch();
  }

  /** Submits what is queued (running deferred completions in the same enter); returns the count. */
  private submitBatch(): number {
    if (this.nCopies > 0) this.runCopies();
    this.batch?.flush(this.autoIndex);
    const n = this.ring.unsubmitted;
    if (n === 0) {
      // Completions that found the CQ full wait in the kernel's overflow list; only an
      // io_uring_enter(GETEVENTS) moves them into the ring (and none signals the eventfd again).
      if (this.ring.cqOverflow) {
        this.ring.submit(0, true);
        return 1;
      }
      // Deferred task work runs only in io_uring_enter(GETEVENTS): run it when some is pending.
      if (!this.deferTaskrun || !this.ring.taskrunPending) return 0;
      this.ring.submit(0, true);
      return 1;
    }
    const r = this.ring.submit(0, true);
    if (r < 0 && r !== -4 && r !== -11 && r !== -16) {
      this.cfg.onError?.(new Error(`io_uring_enter failed: ${r}`));
      return 0;
    }
    if (this.ring.unsubmitted > 0) this.scheduleFlush();
    return n;
  }
}

/**
 * The most extents the target makes of one request up to `maxIo` bytes, probed at an aligned and a
 * misaligned offset (a chunked layout splits one more time when the start is not on a boundary).
 */
function maxExtents(t: Target, maxIo: number): number {
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
