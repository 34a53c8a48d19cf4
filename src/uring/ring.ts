// An io_uring over shared memory: SQEs written and CQEs read from TypeScript, one enter per batch.
import { native, type RingSetup } from '../native.js';
import * as IO from '../uapi/io-uring.js';
import { UblkError } from '../errors.js';
import { setUserData, userDataHi, userDataLo } from './sqe.js';

/** user_data high word reserved for the ring's own promise-based ops. */
export const UD_OP = 0xffffffff;

export interface RingOptions {
  entries: number;
  flags?: number;
  cqEntries?: number;
}

export type CqeHandler = (hi: number, lo: number, res: number, flags: number) => void;

/**
 * What rings closed with SQEs in flight still had referenced: closing the fd does not wait for the
 * kernel to finish with them, so they are never released (a rare leak instead of a write into freed
 * memory).
 */
const orphaned: object[] = [];

export class Ring {
  readonly fd: number;
  readonly entries: number;
  readonly sqe128: boolean;
  readonly sqeSize: number;
  /** SQE array; callers write SQEs at the byte offsets `get()` hands out. */
  readonly sqes: DataView;
  private readonly sqeWords: Int32Array;
  private readonly u32: Uint32Array;
  private readonly i32: Int32Array;
  private readonly sqHead: number;
  private readonly sqTail: number;
  private readonly sqMask: number;
  private readonly cqHead: number;
  private readonly cqTail: number;
  private readonly cqMask: number;
  private readonly cqes: number;
  private readonly cqeWords: number;
  private tail: number;
  private pending = 0;
  private readonly ops: Array<((res: number) => void) | undefined> = [];
  /** What each ring op's SQE points at (a buffer), referenced until its CQE. */
  private readonly keeps: Array<object | undefined> = [];
  /** The same for SQEs completed through the reap handler, by user_data (see hold). */
  private readonly held = new Map<number, object>();
  /** held.size, as a plain field: reap() checks it per CQE. */
  private nHeld = 0;
  private readonly freeOps: number[] = [];
  private readonly cqFlags: number;
  private readonly sqFlags: number;
  /** The setup flags the ring was created with (after createRing dropped unsupported ones). */
  readonly flags: number;
  private opsInFlight = 0;
  private efd = -1;
  private watchHandle = -1;
  private closed = false;

  constructor(opts: RingOptions) {
    const flags = opts.flags ?? 0;
    const setup: RingSetup = native().setupRing(opts.entries, flags, opts.cqEntries ?? 0);
    this.fd = setup.fd;
    this.flags = setup.flags;
    this.entries = setup.sqEntries;
    this.sqe128 = (setup.flags & IO.IORING_SETUP_SQE128) !== 0;
    this.sqeSize = this.sqe128 ? IO.SIZEOF_SQE128 : IO.SIZEOF_SQE;
    this.sqes = new DataView(setup.sqes);
    this.sqeWords = new Int32Array(setup.sqes);
    this.u32 = new Uint32Array(setup.ring);
    this.i32 = new Int32Array(setup.ring);
    const s = setup.sqOff;
    const c = setup.cqOff;
    this.sqHead = s.head >> 2;
    this.sqTail = s.tail >> 2;
    this.sqMask = this.u32[s.ringMask >> 2];
    this.cqHead = c.head >> 2;
    this.cqTail = c.tail >> 2;
    this.cqMask = this.u32[c.ringMask >> 2];
    this.cqes = c.cqes >> 2;
    this.cqFlags = c.flags >> 2;
    this.sqFlags = s.flags >> 2;
    this.cqeWords = (setup.flags & IO.IORING_SETUP_CQE32) !== 0 ? 8 : 4;
    // Identity SQ array: SQE slot i is always array entry i, so only the tail moves.
    const arr = s.array >> 2;
    for (let i = 0; i < this.entries; i++) this.u32[arr + i] = i;
    this.tail = this.u32[this.sqTail];
  }

  /** Byte offset of a zeroed SQE; submits first when the SQ is full. */
  get(): number {
    const o = this.getRaw();
    // Plain word stores: TypedArray.fill is a builtin call, a measurable share of the per-IO cost.
    const a = this.sqeWords;
    const end = (o + this.sqeSize) >> 2;
    for (let w = o >> 2; w < end; w++) a[w] = 0;
    return o;
  }

  /** Byte offset of the next SQE, not zeroed: the caller writes every word of it. */
  getRaw(): number {
    if (this.tail - Atomics.load(this.u32, this.sqHead) >= this.entries) {
      this.submit(0);
      if (this.tail - Atomics.load(this.u32, this.sqHead) >= this.entries) {
        throw new UblkError('EBUSY', 'io_uring submission queue is full');
      }
    }
    const o = (this.tail & this.sqMask) * this.sqeSize;
    this.tail = (this.tail + 1) >>> 0;
    this.pending++;
    return o;
  }

  /**
   * Makes room for `k` consecutive SQEs, submitting what is queued first if they would not fit.
   * A linked chain must be reserved as a whole: io_uring ends a link at the end of each submission,
   * so a chain split by get() flushing a full SQ would run its tail unlinked.
   */
  reserve(k: number): void {
    if (k > this.entries) throw new UblkError('E2BIG', `a chain of ${k} SQEs does not fit a ring of ${this.entries}`);
    if (this.tail - Atomics.load(this.u32, this.sqHead) + k > this.entries) {
      this.submit(0);
      if (this.tail - Atomics.load(this.u32, this.sqHead) + k > this.entries) {
        throw new UblkError('EBUSY', 'io_uring submission queue is full');
      }
    }
  }

  /** SQEs written but not yet submitted. */
  get unsubmitted(): number {
    return this.pending;
  }

  /**
   * Publishes the tail and enters the kernel once: submits what is pending and, with `minComplete`,
   * waits. Returns the number submitted or a negative errno (EINTR/EAGAIN/EBUSY are left to callers).
   */
  submit(minComplete = 0, getEvents = minComplete > 0): number {
    // Atomics.store is sequentially consistent: SQE writes are visible before the new tail.
    Atomics.store(this.u32, this.sqTail, this.tail);
    const n = this.pending;
    if (n === 0 && !getEvents) return 0;
    const flags = getEvents ? IO.IORING_ENTER_GETEVENTS : 0;
    const res = native().enter(this.fd, n, minComplete, flags);
    if (res >= 0) this.pending -= Math.min(res, n);
    return res;
  }

  /** CQEs posted and not yet reaped. */
  get ready(): number {
    return (Atomics.load(this.u32, this.cqTail) - this.u32[this.cqHead]) >>> 0;
  }

  /** Completions are waiting in the kernel's overflow list (the CQ was full when they came). */
  get cqOverflow(): boolean {
    return (Atomics.load(this.u32, this.sqFlags) & IO.IORING_SQ_CQ_OVERFLOW) !== 0;
  }

  /** Task work is waiting to post completions (needs IORING_SETUP_TASKRUN_FLAG). */
  get taskrunPending(): boolean {
    return (Atomics.load(this.u32, this.sqFlags) & IO.IORING_SQ_TASKRUN) !== 0;
  }

  /**
   * Turns eventfd notifications off (while the owner is reaping anyway, so completions it will see
   * do not queue a spurious wake-up) or back on. After turning them on, check `ready`: a CQE posted
   * in between did not signal.
   */
  notify(on: boolean): void {
    const f = Atomics.load(this.u32, this.cqFlags);
    Atomics.store(this.u32, this.cqFlags, on ? f & ~IO.IORING_CQ_EVENTFD_DISABLED : f | IO.IORING_CQ_EVENTFD_DISABLED);
  }

  /** Reaps up to `max` available CQEs in one pass; returns how many. Ring-owned ops resolve here. */
  reap(handler: CqeHandler, max = 0xffffffff): number {
    let head = this.u32[this.cqHead];
    const tail = Atomics.load(this.u32, this.cqTail);
    let count = 0;
    while (head !== tail && count < max) {
      const w = this.cqes + (head & this.cqMask) * this.cqeWords;
      const lo = this.u32[w];
      const hi = this.u32[w + 1];
      const res = this.i32[w + 2];
      const flags = this.u32[w + 3];
      head = (head + 1) >>> 0;
      count++;
      if (hi === UD_OP) this.completeOp(lo, res);
      else {
        if (this.nHeld !== 0 && !(flags & IO.IORING_CQE_F_MORE) && this.held.delete(hi * 0x100000000 + lo)) this.nHeld--;
        handler(hi, lo, res, flags);
      }
    }
    // Release the slots only after reading them (seq-cst store).
    if (count) Atomics.store(this.u32, this.cqHead, head);
    return count;
  }

  /** Called whenever op() queues an SQE, so the owner can schedule one submit for the batch. */
  onQueue: (() => void) | undefined;

  /**
   * Queues one SQE prepared by `prep` and resolves with its CQE result. Submitted at the next
   * submit(). `keep`: what the SQE points at, referenced by the ring until the CQE.
   */
  op(prep: (v: DataView, o: number) => void, keep?: object): Promise<number> {
    const o = this.get();
    prep(this.sqes, o);
    const p = this.track(o, keep);
    this.onQueue?.();
    return p;
  }

  /** Marks an SQE already written at `o` as a ring op and returns the promise of its result. */
  track(o: number, keep?: object): Promise<number> {
    const id = this.freeOps.length ? this.freeOps.pop()! : this.ops.length;
    setUserData(this.sqes, o, UD_OP, id);
    this.keeps[id] = keep;
    this.opsInFlight++;
    if (this.opsInFlight === 1 && this.watchHandle >= 0 && this.refWhileOps) native().watchRef(this.watchHandle, true);
    return new Promise<number>((resolve) => {
      this.ops[id] = resolve;
    });
  }

  private completeOp(id: number, res: number): void {
    const resolve = this.ops[id];
    this.ops[id] = undefined;
    this.keeps[id] = undefined;
    this.freeOps.push(id);
    this.opsInFlight--;
    if (this.opsInFlight === 0 && this.watchHandle >= 0 && this.refWhileOps) native().watchRef(this.watchHandle, false);
    resolve?.(res);
  }

  private refWhileOps = false;

  /**
   * Keeps `ref` (what the SQE at `o` points at) referenced until the CQE of its user_data is
   * reaped (the last one, for multishot). For SQEs whose completions go to the reap handler;
   * user_data must be written first, with a high word below 2^21.
   */
  hold(o: number, ref: object): void {
    const hi = userDataHi(this.sqes, o);
    if (hi >= 0x200000) throw new RangeError(`user_data high word ${hi} is too large to hold by`);
    this.held.set(hi * 0x100000000 + userDataLo(this.sqes, o), ref);
    this.nHeld = this.held.size;
  }

  /**
   * Wakes `onWake` from the event loop whenever a CQE is posted (eventfd + libuv poll), so the
   * thread sleeps in libuv instead of spinning. With `refOnlyWhileBusy` the poll keeps the
   * process alive only while ring ops are in flight.
   */
  watch(onWake: () => void, refOnlyWhileBusy = false): void {
    const n = native();
    this.efd = n.eventfd(0);
    const r = n.register(this.fd, IO.IORING_REGISTER_EVENTFD, Int32Array.of(this.efd), 1);
    if (r < 0) throw UblkError.fromResult(r, 'io_uring register eventfd');
    this.watchHandle = n.watch(this.efd, onWake);
    this.refWhileOps = refOnlyWhileBusy;
    if (refOnlyWhileBusy && this.opsInFlight === 0) n.watchRef(this.watchHandle, false);
  }

  /** Registers files (fixed-file table); index i in SQEs with IOSQE_FIXED_FILE means fds[i]. */
  registerFiles(fds: number[]): void {
    const r = native().register(this.fd, IO.IORING_REGISTER_FILES, Int32Array.from(fds), fds.length);
    if (r < 0) throw UblkError.fromResult(r, 'io_uring register files');
  }

  /** A sparse fixed-buffer table of `nr` entries, for kernel (zero-copy) buffers. */
  registerSparseBuffers(nr: number): void {
    const arg = new DataView(new ArrayBuffer(IO.RSRC_REGISTER.size));
    IO.encodeRsrcRegister(arg, nr, IO.IORING_RSRC_REGISTER_SPARSE);
    const r = native().register(this.fd, IO.IORING_REGISTER_BUFFERS2, arg, IO.RSRC_REGISTER.size);
    if (r < 0) throw UblkError.fromResult(r, 'io_uring register sparse buffers');
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const k of this.keeps) if (k) orphaned.push(k);
    for (const k of this.held.values()) orphaned.push(k);
    this.held.clear();
    this.nHeld = 0;
    const n = native();
    if (this.watchHandle >= 0) n.unwatch(this.watchHandle);
    if (this.efd >= 0) n.close(this.efd);
    n.closeRing(this.fd);
  }
}

/** Creates a ring, dropping setup flags an older kernel rejects (EINVAL) one at a time. */
export function createRing(entries: number, flags: number, cqEntries = 0): Ring {
  const optional = [IO.IORING_SETUP_DEFER_TASKRUN, IO.IORING_SETUP_SINGLE_ISSUER, IO.IORING_SETUP_COOP_TASKRUN];
  let f = flags;
  for (;;) {
    try {
      return new Ring({ entries, flags: f, cqEntries });
    } catch (err) {
      const drop = optional.find((bit) => f & bit);
      if ((err as { code?: string }).code !== 'EINVAL' || drop === undefined) throw err;
      f &= ~drop;
      if (drop === IO.IORING_SETUP_SINGLE_ISSUER) f &= ~IO.IORING_SETUP_DEFER_TASKRUN;
    }
  }
}
