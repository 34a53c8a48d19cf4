// A scripted stand-in for ublk_drv behind an io_uring, for engine unit tests without a kernel.
// It models what the engine relies on: FETCH/COMMIT, NEED_GET_DATA, buffer registration, file IO
// with links (a short or failed IO breaks a soft link; the rest is cancelled), CQE_SKIP_SUCCESS and
// a bounded CQ with an overflow list. It is no proof that IO works: only the kernel tests are.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { native } from '../../src/native.js';
import * as IO from '../../src/uapi/io-uring.js';
import * as U from '../../src/uapi/ublk.js';
import type { Ring } from '../../src/uring/ring.js';
import { encodeIoDesc, IO_DESC_WORDS } from '../../src/uapi/io-desc.js';
import type { DataMode } from '../../src/ublk/modes.js';

const UD_OP = 0xffffffff;
const PENDING = Symbol('pending');
const ECANCELED = -125;
const EINVAL = -22;
const EBUSY = -16;

export interface StandOptions {
  depth: number;
  mode: DataMode;
  /** CQ capacity; completions beyond it wait in the overflow list until an enter with GETEVENTS. */
  cqSize?: number;
  /** The count a file READ/WRITE (fixed or not) really moves: smaller is a short IO, negative an errno. */
  fileIo?: (op: 'read' | 'write', fd: number, off: number, len: number) => number;
  /** The bytes NEED_GET_DATA manages to copy (a partial copy shrinks the descriptor's nr_sectors). */
  getDataBytes?: (tag: number, len: number) => number;
  /** An errno for this io command, or undefined to run it. */
  failCmd?: (cmdOp: number, tag: number) => number | undefined;
}

export interface Request {
  op: number;
  off: number;
  len: number;
  flags?: number;
  /** The client's pages: a WRITE's data, where a READ's data lands. */
  data: Uint8Array;
}

export interface Commit {
  tag: number;
  result: number;
}

interface Slot {
  armed: number;
  autoIndex: number;
  addr: number;
  req?: Request;
}

/** The kernel side; `ring` and `descriptors` go into EngineConfig.stand. */
export class StandIn {
  readonly ring: Ring;
  readonly descriptors: Uint32Array[];
  readonly commits: Commit[] = [];
  /** Every SQE the engine submitted, as [opcode, cmd op or 0, tag or fd]. */
  readonly log: Array<[number, number, number]> = [];
  private readonly opts: StandOptions;
  private readonly slots: Slot[];
  private readonly registered = new Map<number, Uint8Array>();
  private readonly cq: Array<[number, number, number]> = [];
  private readonly overflow: Array<[number, number, number]> = [];
  private readonly sqBuf: ArrayBuffer;
  private readonly sqes: DataView;
  private readonly entries = 512;
  private head = 0;
  private tail = 0;
  private wake: (() => void) | undefined;
  private readonly ops: Array<((res: number) => void) | undefined> = [];
  private readonly scratch: number;
  private readonly scratchPath: string;

  constructor(opts: StandOptions) {
    this.opts = opts;
    this.slots = Array.from({ length: opts.depth }, () => ({ armed: -1, autoIndex: -1, addr: 0 }));
    this.descriptors = [new Uint32Array(opts.depth * IO_DESC_WORDS)];
    this.sqBuf = new ArrayBuffer(this.entries * 64);
    this.sqes = new DataView(this.sqBuf);
    this.scratchPath = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ublkit-stand-')), 'scratch');
    this.scratch = fs.openSync(this.scratchPath, 'w+');
    this.ring = this.makeRing();
  }

  dispose(): void {
    fs.closeSync(this.scratch);
    fs.rmSync(path.dirname(this.scratchPath), { recursive: true, force: true });
  }

  /** Hands a request to slot `tag` (its FETCH or COMMIT must be armed) and wakes the engine. */
  deliver(tag: number, req: Request): void {
    const slot = this.slots[tag];
    if (slot.armed < 0) throw new Error(`tag ${tag} is not armed`);
    encodeIoDesc(this.descriptors[0], tag, { opFlags: req.op | (req.flags ?? 0), nrSectors: req.len / 512, startSector: req.off / 512 });
    slot.req = req;
    if (this.opts.mode === 'auto-buf-reg') this.registered.set(slot.autoIndex, req.data);
    let res = 0;
    if (req.op === U.UBLK_IO_OP_WRITE && this.opts.mode === 'get-data') res = U.UBLK_IO_RES_NEED_GET_DATA;
    else if (req.op === U.UBLK_IO_OP_WRITE && this.opts.mode === 'copy') this.toAddr(slot.addr, req.data);
    const ud = slot.armed;
    slot.armed = -1;
    this.post(ud, res);
  }

  /** Lets the engine run (wake-ups, promise jobs, immediates) until nothing moves any more. */
  async settle(): Promise<void> {
    for (let quiet = 0; quiet < 3;) {
      const before = this.commits.length + this.cq.length + this.log.length;
      this.wake?.();
      await new Promise((r) => setImmediate(r));
      quiet = this.commits.length + this.cq.length + this.log.length === before ? quiet + 1 : 0;
    }
  }

  private post(ud: number, res: number): void {
    const e: [number, number, number] = [Math.floor(ud / 0x100000000), ud >>> 0, res];
    if (this.cq.length < (this.opts.cqSize ?? 1 << 20)) this.cq.push(e);
    else this.overflow.push(e);
  }

  private toAddr(addr: number, data: Uint8Array): void {
    fs.writeSync(this.scratch, data, 0, data.byteLength, 0);
    this.pcopy(0, addr, data.byteLength);
  }

  private fromAddr(addr: number, into: Uint8Array, n: number): void {
    this.pcopy(1, addr, n);
    fs.readSync(this.scratch, into, 0, n, 0);
  }

  /** pread (dir 0) or pwrite (dir 1) between the scratch file at 0 and a raw address. */
  private pcopy(dir: number, addr: number, n: number, fd = this.scratch, off = 0): number {
    const op = Uint32Array.of(dir, n, addr % 0x100000000, Math.floor(addr / 0x100000000), off % 0x100000000, Math.floor(off / 0x100000000), 0, 0);
    native().pcopy(fd, op, 1);
    return op[6] | 0;
  }

  private makeRing(): Ring {
    const self = this;
    const ring = {
      entries: this.entries,
      sqeSize: 64,
      flags: 0,
      sqes: this.sqes,
      onQueue: undefined as (() => void) | undefined,
      get(): number {
        const o = ring.getRaw();
        new Uint8Array(self.sqBuf, o, 64).fill(0);
        return o;
      },
      getRaw(): number {
        if (self.tail - self.head >= self.entries) ring.submit(0, false);
        const o = (self.tail % self.entries) * 64;
        self.tail++;
        return o;
      },
      reserve(k: number): void {
        if (k > self.entries) throw new Error('chain too long');
        if (self.tail - self.head + k > self.entries) ring.submit(0, false);
      },
      get unsubmitted(): number {
        return self.tail - self.head;
      },
      get ready(): number {
        return self.cq.length;
      },
      get taskrunPending(): boolean {
        return false;
      },
      get cqOverflow(): boolean {
        return self.overflow.length > 0;
      },
      submit(_min = 0, getEvents = false): number {
        const n = self.tail - self.head;
        self.run();
        if (getEvents) while (self.overflow.length && self.cq.length < (self.opts.cqSize ?? 1 << 20)) self.cq.push(self.overflow.shift()!);
        return n;
      },
      reap(handler: (hi: number, lo: number, res: number, flags: number) => void, max = 0xffffffff): number {
        let n = 0;
        while (self.cq.length && n < max) {
          const [hi, lo, res] = self.cq.shift()!;
          n++;
          if (hi === UD_OP) {
            const r = self.ops[lo];
            self.ops[lo] = undefined;
            r?.(res);
          } else handler(hi, lo, res, 0);
        }
        return n;
      },
      notify(): void {},
      watch(onWake: () => void): void {
        self.wake = onWake;
      },
      op(prep: (v: DataView, o: number) => void): Promise<number> {
        const o = ring.get();
        prep(self.sqes, o);
        const p = ring.track(o);
        ring.onQueue?.();
        return p;
      },
      hold(): void {},
      track(o: number): Promise<number> {
        const id = self.ops.length;
        self.sqes.setUint32(o + 32, id, true);
        self.sqes.setUint32(o + 36, UD_OP, true);
        return new Promise<number>((resolve) => (self.ops[id] = resolve));
      },
      registerFiles(): void {},
      registerSparseBuffers(): void {},
      close(): void {},
    };
    return ring as unknown as Ring;
  }

  /** Runs the submitted SQEs in order, with io_uring's link rules. */
  private run(): void {
    let inChain = false;
    let broken = false;
    while (this.head < this.tail) {
      const o = (this.head % this.entries) * 64;
      this.head++;
      const v = this.sqes;
      const flags = v.getUint8(o + 1);
      const ud = v.getUint32(o + 36, true) * 0x100000000 + v.getUint32(o + 32, true);
      if (inChain && broken) {
        this.post(ud, ECANCELED);
      } else {
        const [res, want] = this.exec(o);
        if (res !== PENDING) {
          const failed = res < 0 || (want >= 0 && res !== want);
          if (!(flags & IO.IOSQE_CQE_SKIP_SUCCESS && !failed)) this.post(ud, res);
          if (failed && flags & IO.IOSQE_IO_LINK && !(flags & IO.IOSQE_IO_HARDLINK)) broken = true;
        }
      }
      inChain = (flags & (IO.IOSQE_IO_LINK | IO.IOSQE_IO_HARDLINK)) !== 0;
      if (!inChain) broken = false;
    }
  }

  /** One SQE: its result (or PENDING) and, for READ/WRITE, the length a link expects. */
  private exec(o: number): [number | typeof PENDING, number] {
    const v = this.sqes;
    const opcode = v.getUint8(o);
    const fd = v.getInt32(o + 4, true);
    const off = v.getUint32(o + 8, true) + v.getUint32(o + 12, true) * 0x100000000;
    const addr = v.getUint32(o + 16, true) + v.getUint32(o + 20, true) * 0x100000000;
    const len = v.getUint32(o + 24, true);
    switch (opcode) {
      case IO.IORING_OP_URING_CMD:
        return [this.cmd(o), -1];
      case IO.IORING_OP_READ:
      case IO.IORING_OP_WRITE: {
        const isRead = opcode === IO.IORING_OP_READ;
        this.log.push([opcode, 0, fd]);
        const n = this.opts.fileIo ? this.opts.fileIo(isRead ? 'read' : 'write', fd, off, len) : len;
        if (n < 0) return [n, len];
        return [this.pcopy(isRead ? 0 : 1, addr, Math.min(n, len), fd, off), len];
      }
      case IO.IORING_OP_READ_FIXED:
      case IO.IORING_OP_WRITE_FIXED: {
        const isRead = opcode === IO.IORING_OP_READ_FIXED;
        this.log.push([opcode, 0, fd]);
        const buf = this.registered.get(v.getUint16(o + 40, true));
        if (!buf) return [-14, len];
        const n = Math.min(len, this.opts.fileIo ? this.opts.fileIo(isRead ? 'read' : 'write', fd, off, len) : len);
        if (n < 0) return [n, len];
        return [isRead ? fs.readSync(fd, buf, addr, n, off) : fs.writeSync(fd, buf, addr, n, off), len];
      }
      case IO.IORING_OP_NOP:
        return [v.getUint32(o + 28, true) & IO.IORING_NOP_INJECT_RESULT ? len : 0, -1];
      default:
        return [EINVAL, -1];
    }
  }

  private cmd(o: number): number | typeof PENDING {
    const v = this.sqes;
    const op = v.getUint32(o + 8, true);
    const tag = v.getUint16(o + 50, true);
    const result = v.getInt32(o + 52, true);
    const addr = v.getUint32(o + 56, true) + v.getUint32(o + 60, true) * 0x100000000;
    const ud = v.getUint32(o + 36, true) * 0x100000000 + v.getUint32(o + 32, true);
    this.log.push([IO.IORING_OP_URING_CMD, op, tag]);
    const fail = this.opts.failCmd?.(op, tag);
    if (fail !== undefined) return fail;
    const slot = this.slots[tag];
    switch (op) {
      case U.UBLK_U_IO_FETCH_REQ:
      case U.UBLK_U_IO_COMMIT_AND_FETCH_REQ: {
        if (op === U.UBLK_U_IO_COMMIT_AND_FETCH_REQ) {
          const req = slot.req;
          if (!req) return EINVAL;
          if (req.op === U.UBLK_IO_OP_READ && result > 0 && (this.opts.mode === 'copy' || this.opts.mode === 'get-data')) {
            this.fromAddr(addr, req.data, Math.min(result, req.len));
          }
          if (this.opts.mode === 'auto-buf-reg') this.registered.delete(slot.autoIndex);
          this.commits.push({ tag, result });
          slot.req = undefined;
        }
        slot.armed = ud;
        slot.addr = addr;
        slot.autoIndex = v.getUint16(o + 16, true);
        return PENDING;
      }
      case U.UBLK_U_IO_NEED_GET_DATA: {
        const req = slot.req!;
        const n = this.opts.getDataBytes ? this.opts.getDataBytes(tag, req.len) : req.len;
        this.toAddr(addr, req.data.subarray(0, n));
        encodeIoDesc(this.descriptors[0], tag, { opFlags: req.op | (req.flags ?? 0), nrSectors: n / 512, startSector: req.off / 512 });
        return 0;
      }
      case U.UBLK_U_IO_REGISTER_IO_BUF:
        if (this.registered.has(addr)) return EBUSY;
        this.registered.set(addr, slot.req!.data);
        return 0;
      case U.UBLK_U_IO_UNREGISTER_IO_BUF:
        return this.registered.delete(addr) ? 0 : EINVAL;
      default:
        return EINVAL;
    }
  }
}
