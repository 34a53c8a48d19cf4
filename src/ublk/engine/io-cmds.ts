// Per-IO ublk commands: FETCH, COMMIT_AND_FETCH, NEED_GET_DATA and the buffer (un)registers, from
// SQE templates encoded once per slot; also the transport of devices without batch IO.
import type { Ring } from '../../uring/ring.js';
import * as S from '../../uring/sqe.js';
import * as U from '../../uapi/ublk.js';
import { SQE, SQE_WORDS } from '../../uapi/io-uring.js';
import { encodeIoCmd, IO_CMD, IO_CMD_RESULT_WORD } from '../../uapi/io-cmd.js';
import type { SlotTable } from './slots.js';
import { K_CMD, K_LCMD, type Loop, type Transport } from './core.js';

/** Per-slot SQE templates, in this order. */
const TPL_COMMIT = 0;
const TPL_REG = 1;
const TPL_UNREG = 2;
const TPL_OPS = [U.UBLK_U_IO_COMMIT_AND_FETCH_REQ, U.UBLK_U_IO_REGISTER_IO_BUF, U.UBLK_U_IO_UNREGISTER_IO_BUF];
const W = SQE_WORDS.size;
const W_RESULT = SQE_WORDS.cmd + IO_CMD_RESULT_WORD;
const W_ADDR = SQE_WORDS.cmd + IO_CMD.addr / 4;

export interface IoCmdOptions {
  /** Copy modes with per-IO commands: the slot buffer's address rides in every FETCH and COMMIT. */
  bufAddr?: Float64Array;
  /** Auto buffer registration: the sqe->addr value of slot s's FETCH and COMMIT (see autoBufRegField). */
  autoField?: (s: number) => number;
}

export class IoCmds implements Transport {
  private readonly loop: Loop;
  private readonly ring: Ring;
  private readonly slots: SlotTable;
  private readonly opts: IoCmdOptions;
  private readonly sqeFdFlags: number;
  /**
   * Per slot, three pre-encoded 64-byte SQEs (COMMIT_AND_FETCH_REQ, REGISTER_IO_BUF,
   * UNREGISTER_IO_BUF). The hot path copies one and patches result, flags and user_data instead of
   * zeroing an SQE and encoding every field per request.
   */
  private readonly tpl: Int32Array;
  private readonly sqw: Int32Array;

  constructor(loop: Loop, opts: IoCmdOptions) {
    this.loop = loop;
    this.ring = loop.ring;
    this.slots = loop.slots;
    this.opts = opts;
    this.sqeFdFlags = loop.sqeFdFlags;
    const sq = this.ring.sqes;
    this.sqw = new Int32Array(sq.buffer, sq.byteOffset, sq.byteLength >> 2);
    const n = this.slots.n;
    this.tpl = new Int32Array(n * TPL_OPS.length * W);
    const v = new DataView(this.tpl.buffer);
    for (let s = 0; s < n; s++) {
      // Kind 0: put() patches the user_data kind in on every use.
      for (let t = 0; t < TPL_OPS.length; t++) this.encode(v, (s * TPL_OPS.length + t) * W * 4, s, TPL_OPS[t], 0, 0);
    }
  }

  /** FETCH_REQ on every slot; fault_inject's die-during-fetch dies just before tag 1's. */
  start(): void {
    for (let s = 0; s < this.slots.n; s++) {
      if (this.loop.cfg.dieDuringFetch && this.slots.tag[s] === 1) {
        this.ring.submit(0);
        process.kill(process.pid, 'SIGKILL');
      }
      this.encode(this.ring.sqes, this.ring.get(), s, U.UBLK_U_IO_FETCH_REQ, 0, K_CMD);
    }
  }

  /** `lba`: a zone append's landing sector, sent in the command's addr (0 for every other request). */
  commit(s: number, result: number, lba = 0): void {
    const o = this.put(s, TPL_COMMIT, 0, K_CMD, result);
    if (lba) {
      this.sqw[o + W_ADDR] = lba % 0x100000000;
      this.sqw[o + W_ADDR + 1] = Math.floor(lba / 0x100000000);
    }
  }

  /** COMMIT_AND_FETCH(len) whose CQE is told apart from a plain commit's (a linked chain's tail). */
  commitLinked(s: number, len: number): void {
    this.put(s, TPL_COMMIT, 0, K_LCMD, len);
  }

  register(s: number, sqeFlags: number, kind: number): void {
    this.put(s, TPL_REG, sqeFlags, kind, 0);
  }

  unregister(s: number, sqeFlags: number, kind: number): void {
    this.put(s, TPL_UNREG, sqeFlags, kind, 0);
  }

  needGetData(s: number): void {
    this.encode(this.ring.sqes, this.ring.get(), s, U.UBLK_U_IO_NEED_GET_DATA, 0, K_CMD);
  }

  flush(): void {}

  onCqe(): void {}

  /**
   * Queues template `which` of slot s with its SQE flags, user_data kind and (commit) result
   * patched in: word 0 holds opcode | flags << 8. Returns the SQE's word offset.
   */
  private put(s: number, which: number, sqeFlags: number, kind: number, result: number): number {
    const o = (this.ring.sqeSize === 64 ? this.ring.getRaw() : this.ring.get()) >> 2;
    const w = this.sqw;
    const t = this.tpl;
    const b = (s * TPL_OPS.length + which) * W;
    for (let i = 0; i < W; i++) w[o + i] = t[b + i];
    w[o] = (t[b] & ~0xff00) | ((this.sqeFdFlags | sqeFlags) << 8);
    w[o + SQE_WORDS.userDataHi] = kind;
    w[o + W_RESULT] = result;
    return o;
  }

  /**
   * One ublk io command of slot s. The io_cmd's addr is the buffer index for REGISTER/UNREGISTER
   * (index s) and the slot buffer in the copy modes; with auto buffer registration the index rides
   * in sqe->addr on every FETCH and COMMIT (not NEED_GET_DATA, not the buffer commands).
   */
  private encode(v: DataView, o: number, s: number, op: number, result: number, kind: number): void {
    const bufOp = op === U.UBLK_U_IO_REGISTER_IO_BUF || op === U.UBLK_U_IO_UNREGISTER_IO_BUF;
    S.prepUringCmd(v, o, this.loop.fdRef, op);
    S.setSqeFlags(v, o, this.sqeFdFlags);
    const addr = bufOp ? s : this.opts.bufAddr ? this.opts.bufAddr[s] : 0;
    encodeIoCmd(v, o + SQE.cmd, this.slots.qid[s], this.slots.tag[s], result, addr);
    if (this.opts.autoField && !bufOp && op !== U.UBLK_U_IO_NEED_GET_DATA) S.setCmdAddr(v, o, this.opts.autoField(s), 0);
    S.setUserData(v, o, kind, s);
  }
}
