// A scripted ublk driver behind a scripted io_uring, installed under the addon's syscalls, so the
// engine and the real Ring run unchanged over ordinary memory and nothing but their JS is measured.
import * as fs from 'node:fs';
import { native, type NativeAddon, type RingSetup } from '../../src/native.js';
import * as IO from '../../src/uapi/io-uring.js';
import * as U from '../../src/uapi/ublk.js';

// Why not test/helpers/stand-in.ts: it moves every request's data through a scratch file with
// syscalls (to let tests check bytes), whose JS cost would be most of what is counted here. This
// driver moves no data, keeps its own work to a few typed-array reads per SQE, and sits below the
// Ring, so Ring.get/submit/reap are measured too.

// SQE fields (io_uring_sqe) and the ublksrv_io_cmd inside a URING_CMD SQE.
const SQE_OPCODE = 0;
const SQE_FLAGS = 1;
const SQE_CMD_OP = 8;
const SQE_ADDR = 16;
const SQE_LEN = 24;
const SQE_RW_FLAGS = 28;
const SQE_UD = 32;
const SQE_BUF_INDEX = 40;
const CMD_TAG = 48 + 2;
const CMD_RESULT = 48 + 4;
const CMD_ADDR = 48 + 8;

// Our own layout of the shared ring area (any layout works: the Ring reads it from sqOff/cqOff).
const SQ_HEAD = 0;
const SQ_TAIL = 4;
const SQ_MASK = 8;
const SQ_ENTRIES = 12;
const SQ_FLAGS = 16;
const SQ_ARRAY = 64;

const ECANCELED = -125;
const EINVAL = -22;
const EBUSY = -16;
const EFAULT = -14;
/** Any fd number the fake hands out: far above what this process opens. */
const FAKE_FD = 900_000;
const PENDING = 0x7fffffff;

export interface Delivery {
  op: number;
  off: number;
  len: number;
}

export class FakeKernel {
  /** The stand-in for /dev/ublkcN: /dev/zero, so user copy's pread/pwrite really run (and move nothing). */
  readonly ublkcFd: number;
  readonly descriptors: Uint32Array;
  private readonly descBuf: ArrayBuffer;
  private readonly mode: string;
  /** Commits seen, and those whose result was not the request's length (a misconfigured run). */
  commits = 0;
  badCommits = 0;
  /** SQEs run, by opcode, and io commands by the low byte of their ioctl number (0x20 FETCH ...). */
  readonly opCount = new Uint32Array(256);
  readonly cmdCount = new Uint32Array(256);
  enters = 0;
  private u32!: Uint32Array;
  private i32!: Int32Array;
  private sqes!: DataView;
  private sqEntries = 0;
  private cqEntries = 0;
  private cqHead = 0;
  private cqTail = 0;
  private cqFlags = 0;
  private cqes = 0;
  // Per tag: user_data of the armed FETCH/COMMIT (-1: not armed), auto-buf-reg index, request length.
  private readonly armedHi: Int32Array;
  private readonly armedLo: Int32Array;
  private readonly autoIndex: Int32Array;
  private readonly rqLen: Int32Array;
  private readonly registered: Uint8Array;
  /** Armed tags in the order they were armed: deliveries go to the longest armed. */
  private readonly fifo: Int32Array;
  private fifoHead = 0;
  private fifoTail = 0;
  private wake: (() => void) | undefined;
  private wakeQueued = false;
  private want = 0;
  private onDrained: (() => void) | undefined;
  // Batch IO: the multishot FETCH_IO_CMDS (user_data, buffer group), tags waiting to be handed over
  // in its next CQE, and every buffer the engine allocated, by address (element arrays, tag lists).
  private readonly batch: boolean;
  private fetchHi = -1;
  private fetchLo = 0;
  private fetchGroup = -1;
  private readonly ready: number[] = [];
  private readonly allocs = new Map<number, ArrayBuffer>();
  private pbuf: DataView | undefined;
  private pbufEntries = 0;
  private pbufHead = 0;

  constructor(depth: number, mode: string, batch = false) {
    this.mode = mode;
    this.batch = batch;
    this.ublkcFd = fs.openSync('/dev/zero', 'r+');
    this.descBuf = new ArrayBuffer(Math.max(4096, depth * U.SIZEOF_UBLKSRV_IO_DESC));
    this.descriptors = new Uint32Array(this.descBuf);
    this.armedHi = new Int32Array(depth).fill(-1);
    this.armedLo = new Int32Array(depth);
    this.autoIndex = new Int32Array(depth);
    this.rqLen = new Int32Array(depth);
    this.registered = new Uint8Array(0x10000);
    this.fifo = new Int32Array(depth + 1);
  }

  /** Replaces the addon's ring, eventfd and descriptor-mapping calls with this driver. */
  install(n: NativeAddon = native()): void {
    const orig = { mmap: n.mmap, munmap: n.munmap, close: n.close, alloc: n.alloc };
    n.setupRing = (entries, flags, cqEntries) => this.setup(entries, flags, cqEntries);
    n.enter = (_fd, toSubmit, _min, flags) => this.enter(toSubmit, flags);
    n.register = (_fd, opcode, arg) => (opcode === IO.IORING_REGISTER_PBUF_RING ? this.registerPbuf(arg as DataView) : 0);
    // Batch IO hands the kernel raw addresses of native buffers: remember which buffer each is.
    n.alloc = (size, align) => {
      const ab = orig.alloc(size, align);
      if (this.batch) this.allocs.set(Number(n.addressOf(ab)), ab);
      return ab;
    };
    n.closeRing = () => {};
    n.eventfd = () => FAKE_FD;
    n.watch = (_fd, cb) => ((this.wake = cb), FAKE_FD);
    n.watchRef = () => {};
    n.unwatch = () => {};
    n.close = (fd) => (fd >= FAKE_FD ? 0 : orig.close(fd));
    n.mmap = (fd, length, prot, flags, offset) => (fd === this.ublkcFd ? this.descBuf : orig.mmap(fd, length, prot, flags, offset));
    n.munmap = (buf) => (buf === this.descBuf ? undefined : orig.munmap(buf));
  }

  /** How many tags are armed and can take a request. */
  get armed(): number {
    return this.fifoTail - this.fifoHead;
  }

  /** Hands one request to the longest-armed tag: writes its descriptor and completes its FETCH/COMMIT. */
  deliver(r: Delivery): void {
    if (this.fifoHead === this.fifoTail) throw new Error('no tag is armed');
    const tag = this.fifo[this.fifoHead++ % this.fifo.length];
    const d = this.descriptors;
    const w = tag * 6;
    d[w] = r.op;
    d[w + 1] = r.len / 512;
    d[w + 2] = (r.off / 512) >>> 0;
    d[w + 3] = Math.floor(r.off / 512 / 0x100000000);
    this.rqLen[tag] = r.len;
    if (this.mode === 'auto-buf-reg') this.registered[this.autoIndex[tag]] = 1;
    if (this.batch) {
      this.want++;
      this.ready.push(tag);
      return;
    }
    const res = r.op === U.UBLK_IO_OP_WRITE && this.mode === 'get-data' ? U.UBLK_IO_RES_NEED_GET_DATA : 0;
    const hi = this.armedHi[tag];
    this.armedHi[tag] = -1;
    this.want++;
    this.post(hi, this.armedLo[tag], res, 0);
  }

  /** Resolves once every delivered request has been committed. */
  drained(): Promise<void> {
    if (this.commits >= this.want) return Promise.resolve();
    return new Promise((r) => (this.onDrained = r));
  }

  /** Signals the eventfd as the kernel would after posting: the engine's watch callback runs. */
  signal(): void {
    if (!this.wake) throw new Error('the engine is not watching its ring');
    if (this.ready.length) this.postTags();
    if (this.u32[this.cqFlags] & IO.IORING_CQ_EVENTFD_DISABLED) return;
    this.wake();
  }

  private setup(entries: number, flags: number, cqEntries: number): RingSetup {
    this.sqEntries = entries;
    this.cqEntries = cqEntries || entries * 2;
    const cqBase = SQ_ARRAY + entries * 4;
    const ring = new ArrayBuffer(cqBase + 64 + this.cqEntries * 16);
    this.u32 = new Uint32Array(ring);
    this.i32 = new Int32Array(ring);
    this.sqes = new DataView(new ArrayBuffer(entries * 64));
    this.u32[SQ_MASK >> 2] = entries - 1;
    this.u32[SQ_ENTRIES >> 2] = entries;
    this.cqHead = cqBase >> 2;
    this.cqTail = this.cqHead + 1;
    this.u32[this.cqHead + 2] = this.cqEntries - 1;
    this.u32[this.cqHead + 3] = this.cqEntries;
    this.cqFlags = this.cqHead + 5;
    this.cqes = (cqBase + 64) >> 2;
    return {
      fd: FAKE_FD + 1, flags, features: 0, sqEntries: entries, cqEntries: this.cqEntries, ring, sqes: this.sqes.buffer as ArrayBuffer,
      sqOff: { head: SQ_HEAD, tail: SQ_TAIL, ringMask: SQ_MASK, ringEntries: SQ_ENTRIES, flags: SQ_FLAGS, dropped: 20, array: SQ_ARRAY },
      cqOff: { head: cqBase, tail: cqBase + 4, ringMask: cqBase + 8, ringEntries: cqBase + 12, overflow: cqBase + 16, cqes: cqBase + 64, flags: cqBase + 20 },
    };
  }

  private post(hi: number, lo: number, res: number, flags: number): void {
    const tail = this.u32[this.cqTail];
    if (tail - this.u32[this.cqHead] >= this.cqEntries) throw new Error('CQ overflow: the benchmark keeps fewer requests in flight than the CQ holds');
    const w = this.cqes + (tail & (this.cqEntries - 1)) * 4;
    this.u32[w] = lo;
    this.u32[w + 1] = hi;
    this.i32[w + 2] = res;
    this.u32[w + 3] = flags;
    this.u32[this.cqTail] = tail + 1;
    // A CQE posted while notifications are on signals the eventfd; libuv runs the callback later.
    if (!(this.u32[this.cqFlags] & IO.IORING_CQ_EVENTFD_DISABLED) && !this.wakeQueued && this.wake) {
      this.wakeQueued = true;
      setImmediate(() => {
        this.wakeQueued = false;
        this.wake!();
      });
    }
  }

  /** io_uring_enter: runs every submitted SQE in order with io_uring's link rules. */
  private enter(toSubmit: number, _flags: number): number {
    this.enters++;
    const u = this.u32;
    let head = u[SQ_HEAD >> 2];
    const tail = u[SQ_TAIL >> 2];
    let n = 0;
    let broken = false;
    while (head !== tail && n < toSubmit) {
      const o = u[(SQ_ARRAY >> 2) + (head & (this.sqEntries - 1))] * 64;
      head = (head + 1) >>> 0;
      n++;
      const v = this.sqes;
      const flags = v.getUint8(o + SQE_FLAGS);
      const lo = v.getUint32(o + SQE_UD, true);
      const hi = v.getUint32(o + SQE_UD + 4, true);
      const linked = (flags & (IO.IOSQE_IO_LINK | IO.IOSQE_IO_HARDLINK)) !== 0;
      if (broken) {
        this.post(hi, lo, ECANCELED, 0);
      } else {
        const want = v.getUint8(o + SQE_OPCODE) === IO.IORING_OP_URING_CMD ? -1 : v.getUint32(o + SQE_LEN, true);
        const res = this.exec(o);
        if (res !== PENDING) {
          const failed = res < 0 || (want >= 0 && res !== want);
          if (!(flags & IO.IOSQE_CQE_SKIP_SUCCESS) || failed) this.post(hi, lo, res, 0);
          if (failed && flags & IO.IOSQE_IO_LINK) broken = true;
        }
      }
      if (!linked) broken = false;
    }
    u[SQ_HEAD >> 2] = head;
    if (this.onDrained && this.commits >= this.want) {
      const r = this.onDrained;
      this.onDrained = undefined;
      r();
    }
    return n;
  }

  /** One SQE's result, or PENDING for a FETCH/COMMIT that completes when a request is delivered. */
  private exec(o: number): number {
    const v = this.sqes;
    const len = v.getUint32(o + SQE_LEN, true);
    const opcode = v.getUint8(o + SQE_OPCODE);
    this.opCount[opcode]++;
    switch (opcode) {
      case IO.IORING_OP_URING_CMD:
        return this.cmd(o);
      case IO.IORING_OP_READ:
      case IO.IORING_OP_WRITE:
        return len;
      case IO.IORING_OP_READ_FIXED:
      case IO.IORING_OP_WRITE_FIXED:
        return this.registered[v.getUint16(o + SQE_BUF_INDEX, true)] ? len : EFAULT;
      case IO.IORING_OP_NOP: {
        const f = v.getUint32(o + SQE_RW_FLAGS, true);
        if (f & IO.IORING_NOP_FIXED_BUFFER && !this.registered[v.getUint16(o + SQE_BUF_INDEX, true)]) return EFAULT;
        return f & IO.IORING_NOP_INJECT_RESULT ? len : 0;
      }
      default:
        return EINVAL;
    }
  }

  private cmd(o: number): number {
    const v = this.sqes;
    const op = v.getUint32(o + SQE_CMD_OP, true);
    const tag = v.getUint16(o + CMD_TAG, true);
    const index = v.getUint32(o + CMD_ADDR, true);
    this.cmdCount[op & 0xff]++;
    switch (op) {
      case U.UBLK_U_IO_COMMIT_AND_FETCH_REQ:
        this.commits++;
        if (v.getInt32(o + CMD_RESULT, true) !== this.rqLen[tag]) this.badCommits++;
        if (this.mode === 'auto-buf-reg') this.registered[this.autoIndex[tag]] = 0;
        return this.arm(o, tag);
      case U.UBLK_U_IO_FETCH_REQ:
        return this.arm(o, tag);
      case U.UBLK_U_IO_NEED_GET_DATA:
        return 0;
      case U.UBLK_U_IO_PREP_IO_CMDS:
      case U.UBLK_U_IO_COMMIT_IO_CMDS:
        return this.elements(o, op === U.UBLK_U_IO_COMMIT_IO_CMDS);
      case U.UBLK_U_IO_FETCH_IO_CMDS:
        this.fetchLo = v.getUint32(o + SQE_UD, true);
        this.fetchHi = v.getUint32(o + SQE_UD + 4, true);
        this.fetchGroup = v.getUint16(o + SQE_BUF_INDEX, true);
        return PENDING;
      case U.UBLK_U_IO_REGISTER_IO_BUF:
        if (this.registered[index]) return EBUSY;
        this.registered[index] = 1;
        return 0;
      case U.UBLK_U_IO_UNREGISTER_IO_BUF:
        if (!this.registered[index]) return EINVAL;
        this.registered[index] = 0;
        return 0;
      default:
        return EINVAL;
    }
  }

  /** PREP_IO_CMDS / COMMIT_IO_CMDS: every element's tag is (re-)armed; a commit is counted first. */
  private elements(o: number, commit: boolean): number {
    const v = this.sqes;
    const nr = v.getUint16(o + 48 + 4, true);
    const size = v.getUint8(o + 48 + 6);
    const ab = this.allocs.get(v.getUint32(o + SQE_ADDR, true) + v.getUint32(o + SQE_ADDR + 4, true) * 0x100000000);
    if (!ab) return EFAULT;
    // The engine keeps the array until this command's CQE: forget it now, it is read once.
    this.allocs.delete(v.getUint32(o + SQE_ADDR, true) + v.getUint32(o + SQE_ADDR + 4, true) * 0x100000000);
    const e = new DataView(ab);
    for (let i = 0; i < nr; i++) {
      const tag = e.getUint16(i * size, true);
      if (commit) {
        this.commits++;
        if (e.getInt32(i * size + 4, true) !== this.rqLen[tag]) this.badCommits++;
        if (this.mode === 'auto-buf-reg') this.registered[this.autoIndex[tag]] = 0;
      }
      this.autoIndex[tag] = e.getUint16(i * size + 2, true);
      this.fifo[this.fifoTail++ % this.fifo.length] = tag;
    }
    return nr * size;
  }

  private registerPbuf(reg: DataView): number {
    const ab = this.allocs.get(reg.getUint32(0, true) + reg.getUint32(4, true) * 0x100000000);
    if (!ab) return EINVAL;
    this.pbuf = new DataView(ab);
    this.pbufEntries = reg.getUint32(8, true);
    return 0;
  }

  /** The multishot FETCH_IO_CMDS posts the delivered tags in the next provided buffer. */
  private postTags(): void {
    const p = this.pbuf!;
    if (this.fetchHi < 0 || ((p.getUint16(14, true) - this.pbufHead) & 0xffff) === 0) throw new Error('batch FETCH has no buffer');
    const at = (this.pbufHead & (this.pbufEntries - 1)) * IO.SIZEOF_IO_URING_BUF;
    this.pbufHead = (this.pbufHead + 1) & 0xffff;
    const addr = p.getUint32(at, true) + p.getUint32(at + 4, true) * 0x100000000;
    const bid = p.getUint16(at + 12, true);
    let tags: Uint16Array | undefined;
    for (const [base, ab] of this.allocs) {
      if (addr >= base && addr < base + ab.byteLength) tags = new Uint16Array(ab, addr - base, this.ready.length);
    }
    if (!tags) throw new Error('batch FETCH buffer is not one the engine allocated');
    for (let i = 0; i < this.ready.length; i++) tags[i] = this.ready[i];
    this.post(this.fetchHi, this.fetchLo, this.ready.length * 2, IO.IORING_CQE_F_BUFFER | IO.IORING_CQE_F_MORE | (bid << 16));
    this.ready.length = 0;
  }

  /** A FETCH or COMMIT_AND_FETCH waits for the tag's next request. */
  private arm(o: number, tag: number): number {
    const v = this.sqes;
    this.armedLo[tag] = v.getUint32(o + SQE_UD, true);
    this.armedHi[tag] = v.getUint32(o + SQE_UD + 4, true);
    this.autoIndex[tag] = v.getUint16(o + SQE_ADDR, true);
    this.fifo[this.fifoTail++ % this.fifo.length] = tag;
    return PENDING;
  }
}
