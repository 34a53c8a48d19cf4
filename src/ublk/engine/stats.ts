// Per-thread IO statistics in a SharedArrayBuffer: counts, bytes, errors and a latency histogram
// per op, in-flight requests per queue. Written here without allocation, read by the device.
import { performance } from 'node:perf_hooks';
import { channel } from 'node:diagnostics_channel';
import * as U from '../../uapi/ublk.js';
import { bucketOf, HIST_BUCKETS } from '../histogram.js';
import type { SlotTable } from './slots.js';

/** Ops counted apart, in this order; every other op is 'other'. */
export const STAT_OPS = ['read', 'write', 'flush', 'discard', 'write_zeroes', 'other'] as const;
export type StatOp = (typeof STAT_OPS)[number];

/** Float64 words: a header, then per op its counters and histogram, then in-flight per queue. */
export const ST_MAGIC = 0x75626c6b;
export const ST_HEADER = 4;
export const ST_COUNT = 0;
export const ST_BYTES = 1;
export const ST_ERRORS = 2;
export const ST_MAX = 3;
export const ST_HIST = 4;
export const ST_OP_WORDS = ST_HIST + HIST_BUCKETS;
export const ST_INFLIGHT = ST_HEADER + STAT_OPS.length * ST_OP_WORDS;

/** A zeroed stats block for a thread serving queues below `nrQueues`. */
export function newStatsBuffer(nrQueues: number): SharedArrayBuffer {
  const sab = new SharedArrayBuffer((ST_INFLIGHT + nrQueues) * 8);
  const w = new Float64Array(sab);
  w[0] = ST_MAGIC;
  w[1] = nrQueues;
  w[2] = HIST_BUCKETS;
  return sab;
}

const OP_INDEX = new Uint8Array(256).fill(STAT_OPS.indexOf('other'));
OP_INDEX[U.UBLK_IO_OP_READ] = 0;
OP_INDEX[U.UBLK_IO_OP_WRITE] = 1;
OP_INDEX[U.UBLK_IO_OP_FLUSH] = 2;
OP_INDEX[U.UBLK_IO_OP_DISCARD] = 3;
OP_INDEX[U.UBLK_IO_OP_WRITE_ZEROES] = 4;

/** Published on `ublkit:io` for each completed request, only while someone subscribes. */
export interface IoEvent {
  op: StatOp;
  qid: number;
  tag: number;
  offset: number;
  length: number;
  /** Bytes done or a negative errno, as committed. */
  result: number;
  latencyUs: number;
}

export const ioChannel = channel('ublkit:io');

export class IoStats {
  private readonly w: Float64Array;
  private readonly slots: SlotTable;
  /** performance.now() at which each slot's request reached the server. */
  private readonly t0: Float64Array;

  constructor(sab: SharedArrayBuffer, slots: SlotTable) {
    this.w = new Float64Array(sab);
    this.slots = slots;
    this.t0 = new Float64Array(slots.n);
  }

  /** Slot s now holds a request. */
  begin(s: number): void {
    this.t0[s] = performance.now();
    this.w[ST_INFLIGHT + this.slots.qid[s]]++;
  }

  /** Slot s's request is committed with `result`. */
  end(s: number, result: number): void {
    const sl = this.slots;
    const us = (performance.now() - this.t0[s]) * 1000;
    const w = this.w;
    w[ST_INFLIGHT + sl.qid[s]]--;
    const op = OP_INDEX[sl.op[s]];
    const o = ST_HEADER + op * ST_OP_WORDS;
    w[o + ST_COUNT]++;
    if (result < 0) w[o + ST_ERRORS]++;
    else w[o + ST_BYTES] += sl.len[s];
    if (us > w[o + ST_MAX]) w[o + ST_MAX] = us;
    w[o + ST_HIST + bucketOf(us)]++;
    if (ioChannel.hasSubscribers) {
      ioChannel.publish({ op: STAT_OPS[op], qid: sl.qid[s], tag: sl.tag[s], offset: sl.off[s], length: sl.len[s], result, latencyUs: us } satisfies IoEvent);
    }
  }

  /** Slot s's request is dropped uncommitted (the device is going away). */
  drop(s: number): void {
    this.w[ST_INFLIGHT + this.slots.qid[s]]--;
  }
}
