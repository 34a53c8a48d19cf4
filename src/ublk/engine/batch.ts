// UBLK_F_BATCH_IO transport: PREP_IO_CMDS once, a multishot FETCH_IO_CMDS per queue delivering
// tag lists through a provided-buffer ring, and one COMMIT_IO_CMDS per queue per flush.
import { native, addressOf } from '../../native.js';
import type { Ring } from '../../uring/ring.js';
import * as S from '../../uring/sqe.js';
import * as IO from '../../uapi/io-uring.js';
import * as U from '../../uapi/ublk.js';
import { encodeBatchIo, encodeElem, ELEM_HEADER } from '../../uapi/batch.js';
import { encodeBuf, encodeBufReg, bufRingTail, IO_URING_BUF, IO_URING_BUF_REG } from '../../uapi/buf-ring.js';
import { ERRNO, UblkError } from '../../errors.js';
import { K_COMMIT, K_FETCH, K_PREP, type Transport } from './core.js';

/** Tag-list buffers per queue: each FETCH CQE takes one (at most 128 tags = 256 bytes). */
const FETCH_BUFS = 16;
const ENOBUFS = -ERRNO.ENOBUFS;

interface QueueState {
  qid: number;
  /** slot index by tag, -1 if not ours */
  slotOfTag: Int32Array;
  slots: number[];
  bgid: number;
  pbuf: ArrayBuffer;
  pbufView: DataView;
  pbufTailView: Uint16Array;
  pbufTail: number;
  tagBufs: ArrayBuffer;
  tagBase: number;
  tagBufSize: number;
  /** pending commit elements: slot, result */
  pending: number[];
}

export interface BatchHost {
  readonly ring: Ring;
  readonly fdRef: number;
  readonly sqeFdFlags: number;
  /** Copy mode: per-slot buffer addresses, sent in each element. */
  readonly bufAddr: Float64Array | undefined;
  readonly tag: Uint16Array;
  /** The auto-buf-reg index of slot s (element buf_index). */
  autoIndex(s: number): number;
  /** Rotation: slot s is being committed; its next request goes to its other buffer index. */
  rotate?(s: number): void;
  readonly fallback: boolean;
  /** a request arrived for slot s */
  deliver(s: number): void;
  /** the queue's fetch ended (abort): every slot of it not owned is done */
  aborted(slots: number[]): void;
  error(e: Error): void;
  /** schedule a flush (commits were re-queued) */
  kick(): void;
}

export class BatchTransport implements Transport {
  private readonly h: BatchHost;
  private readonly queues: QueueState[] = [];
  private readonly stOfSlot: QueueState[] = [];
  private readonly elemBytes: number;
  private readonly flags: number;
  /** COMMIT_IO_CMDS in flight: id -> its (slot, result) elements, re-sent after a partial count. */
  private readonly inflight = new Map<number, Array<[number, number]>>();
  private nextId = 1;

  constructor(h: BatchHost, slots: Array<[number, number]>, depth: number) {
    this.h = h;
    this.flags = (h.bufAddr ? U.UBLK_BATCH_F_HAS_BUF_ADDR : 0) | (h.fallback ? U.UBLK_BATCH_F_AUTO_BUF_REG_FALLBACK : 0);
    this.elemBytes = ELEM_HEADER.size + (h.bufAddr ? 8 : 0);
    const byQ = new Map<number, QueueState>();
    slots.forEach(([q, t], s) => {
      let st = byQ.get(q);
      if (!st) {
        st = this.makeQueue(q, byQ.size, depth);
        byQ.set(q, st);
        this.queues.push(st);
      }
      st.slotOfTag[t] = s;
      st.slots.push(s);
      this.stOfSlot[s] = st;
    });
  }

  private makeQueue(qid: number, bgid: number, depth: number): QueueState {
    const n = native();
    const tagBufSize = Math.max(256, depth * 2);
    const pbuf = n.alloc(FETCH_BUFS * IO_URING_BUF.size, 4096);
    const tagBufs = n.alloc(FETCH_BUFS * tagBufSize, 4096);
    const reg = new DataView(new ArrayBuffer(IO_URING_BUF_REG.size));
    encodeBufReg(reg, 0, addressOf(pbuf), FETCH_BUFS, bgid);
    const r = n.register(this.h.ring.fd, IO.IORING_REGISTER_PBUF_RING, reg, 1);
    if (r < 0) throw UblkError.fromResult(r, 'io_uring register provided buffer ring');
    const st: QueueState = {
      qid, slotOfTag: new Int32Array(depth).fill(-1), slots: [], bgid, pbuf, pbufView: new DataView(pbuf),
      pbufTailView: bufRingTail(pbuf), pbufTail: 0, tagBufs, tagBase: addressOf(tagBufs), tagBufSize, pending: [],
    };
    for (let b = 0; b < FETCH_BUFS; b++) this.provide(st, b);
    return st;
  }

  /** Hands tag buffer `bid` (back) to the kernel: fill the next ring entry, then publish the tail. */
  private provide(st: QueueState, bid: number): void {
    const o = (st.pbufTail & (FETCH_BUFS - 1)) * IO_URING_BUF.size;
    encodeBuf(st.pbufView, o, st.tagBase + bid * st.tagBufSize, st.tagBufSize, bid);
    st.pbufTail = (st.pbufTail + 1) & 0xffff;
    // The tail shares bytes 14..15 of entry 0; Atomics on the u16 orders it after the entry.
    Atomics.store(st.pbufTailView, 0, st.pbufTail);
  }

  /** PREP every slot (linked to the queue's first FETCH); the ring is submitted by the caller. */
  start(): void {
    for (const st of this.queues) {
      const buf = this.elements(st.slots.map((s) => [s, 0]));
      const o = this.cmd(st, U.UBLK_U_IO_PREP_IO_CMDS, st.slots.length, buf, K_PREP);
      S.setSqeFlags(this.h.ring.sqes, o, this.h.sqeFdFlags | IO.IOSQE_IO_LINK);
      this.fetch(st);
    }
  }

  private fetch(st: QueueState): void {
    const v = this.h.ring.sqes;
    const o = this.h.ring.get();
    S.prepUringCmd(v, o, this.h.fdRef, U.UBLK_U_IO_FETCH_IO_CMDS);
    S.setSqeFlags(v, o, this.h.sqeFdFlags | IO.IOSQE_BUFFER_SELECT);
    S.setOpFlags(v, o, IO.IORING_URING_CMD_MULTISHOT);
    S.setBufGroup(v, o, st.bgid);
    encodeBatchIo(v, o + IO.SQE.cmd, st.qid, 0, 0, 2);
    S.setUserData(v, o, K_FETCH, this.queues.indexOf(st));
  }

  /** Element array for PREP/COMMIT: {tag, buf_index, result} (+ buf_addr in copy mode). */
  private elements(items: Array<[number, number]>): ArrayBuffer {
    const buf = native().alloc(Math.max(8, items.length * this.elemBytes), 8);
    const v = new DataView(buf);
    const addr = this.h.bufAddr;
    items.forEach(([s, result], i) => {
      encodeElem(v, i * this.elemBytes, this.h.tag[s], this.h.autoIndex(s), result, addr ? addr[s] : undefined);
    });
    return buf;
  }

  private cmd(st: QueueState, op: number, nr: number, buf: ArrayBuffer, kind: number, items?: Array<[number, number]>): number {
    const v = this.h.ring.sqes;
    const o = this.h.ring.get();
    S.prepUringCmd(v, o, this.h.fdRef, op);
    S.setSqeFlags(v, o, this.h.sqeFdFlags);
    S.setCmdAddr(v, o, addressOf(buf), nr * this.elemBytes);
    encodeBatchIo(v, o + IO.SQE.cmd, st.qid, this.flags, nr, this.elemBytes);
    const id = this.nextId++;
    if (items) this.inflight.set(id, items);
    S.setUserData(v, o, kind, id);
    this.h.ring.hold(o, buf);
    return o;
  }

  /** Queues a commit of slot `s`; sent with the next flush. */
  commit(s: number, result: number): void {
    this.h.rotate?.(s);
    this.queue(s, result);
  }

  private queue(s: number, result: number): void {
    this.stOfSlot[s].pending.push(s, result);
  }

  /** One COMMIT_IO_CMDS per queue with everything committed since the last flush. */
  flush(): void {
    for (const st of this.queues) {
      if (!st.pending.length) continue;
      const items: Array<[number, number]> = [];
      for (let i = 0; i < st.pending.length; i += 2) items.push([st.pending[i], st.pending[i + 1]]);
      st.pending.length = 0;
      this.cmd(st, U.UBLK_U_IO_COMMIT_IO_CMDS, items.length, this.elements(items), K_COMMIT, items);
    }
  }

  onCqe(kind: number, lo: number, res: number, flags: number): void {
    if (kind === K_FETCH) return this.onFetch(this.queues[lo], res, flags);
    const items = this.inflight.get(lo);
    this.inflight.delete(lo);
    if (res < 0) {
      this.h.error(new Error(`ublk batch ${kind === K_PREP ? 'PREP' : 'COMMIT'}_IO_CMDS failed: ${res}`));
    } else if (kind === K_COMMIT && items && res < items.length * this.elemBytes) {
      // A partial count: the elements after it were not committed; send them again, at the index
      // they named (the kernel never saw it, and the old buffer is still registered).
      for (const [s, result] of items.slice(Math.floor(res / this.elemBytes))) this.queue(s, result);
      this.h.kick();
    }
  }

  private onFetch(st: QueueState, res: number, flags: number): void {
    if (flags & IO.IORING_CQE_F_BUFFER) {
      const bid = flags >>> 16;
      if (res > 0) {
        const tags = new Uint16Array(st.tagBufs, bid * st.tagBufSize, res >> 1);
        for (let i = 0; i < tags.length; i++) {
          const s = st.slotOfTag[tags[i]];
          if (s >= 0) this.h.deliver(s);
        }
      }
      this.provide(st, bid);
    }
    if (flags & IO.IORING_CQE_F_MORE) return;
    // The multishot ended: out of buffers (re-arm) or aborted (stop, quiesce, cancel).
    if (res === ENOBUFS || res >= 0) return this.fetch(st);
    this.h.aborted(st.slots);
  }
}
