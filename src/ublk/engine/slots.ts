// Per-slot state of one engine in typed arrays: which tag a slot is, where it stands, its request.
import type { IoDescSink } from '../../uapi/io-desc.js';

/** Slot states: a command is armed in the kernel, the server owns a request, the slot is over. */
export const ARMED = 1;
export const OWNED = 2;
export const DONE = 3;

export class SlotTable implements IoDescSink {
  readonly n: number;
  readonly qid: Uint16Array;
  readonly tag: Uint16Array;
  readonly state: Uint8Array;
  // The request the slot holds, decoded once from its descriptor (decodeIoDesc).
  readonly op: Uint8Array;
  readonly flags: Uint32Array;
  readonly len: Int32Array;
  readonly off: Float64Array;
  readonly addr: Float64Array;
  /** Bytes already done from the request's start, for paths that finish it in several passes. */
  readonly done: Int32Array;
  /** Get-data: the WRITE's length and offset before NEED_GET_DATA (0: none pending). */
  readonly gdLen: Int32Array;
  readonly gdOff: Float64Array;
  /**
   * The fixed-buffer index where the kernel registers the slot's next request (automatic buffer
   * registration): the slot's own index, or with rotation the other of its two (see rotate).
   */
  readonly bufIndex: Uint16Array;

  constructor(pairs: Array<[number, number]>) {
    const n = (this.n = pairs.length);
    this.qid = new Uint16Array(n);
    this.tag = new Uint16Array(n);
    this.state = new Uint8Array(n);
    this.op = new Uint8Array(n);
    this.flags = new Uint32Array(n);
    this.len = new Int32Array(n);
    this.off = new Float64Array(n);
    this.addr = new Float64Array(n);
    this.done = new Int32Array(n);
    this.gdLen = new Int32Array(n);
    this.gdOff = new Float64Array(n);
    this.bufIndex = new Uint16Array(n);
    pairs.forEach(([q, t], i) => {
      this.qid[i] = q;
      this.tag[i] = t;
      this.bufIndex[i] = i;
    });
  }

  /** Moves slot s to its other buffer index (s or s + n): the table then holds 2n buffers. */
  rotate(s: number): number {
    return (this.bufIndex[s] = this.bufIndex[s] === s ? s + this.n : s);
  }
}
