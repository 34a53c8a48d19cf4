// A device's IO statistics: the serving threads' shared counters summed into one plain object.
import { HIST_BUCKETS, quantile } from './histogram.js';
import {
  STAT_OPS, type StatOp, ST_MAGIC, ST_HEADER, ST_OP_WORDS, ST_COUNT, ST_BYTES, ST_ERRORS, ST_MAX, ST_HIST, ST_INFLIGHT,
} from './engine/stats.js';

export { STAT_OPS, type StatOp };

export interface OpStats {
  count: number;
  bytes: number;
  /** Requests completed with an error. */
  errors: number;
  /** Microseconds from the request reaching the server to its commit (bucket upper edges, max exact). */
  latency: { p50: number; p90: number; p99: number; max: number };
}

export interface DeviceStats {
  id: number;
  /** Data path: copy, get-data, user-copy, zero-copy or auto-buf-reg. */
  mode: string;
  /** What serves the device: target module (and filters), or the name given by the caller. */
  target: string;
  uptimeSec: number;
  /** False when the device was created with `stats: false`: every counter stays 0. */
  enabled: boolean;
  ops: Record<StatOp, OpStats>;
  /** Requests the server holds now, per hardware queue. */
  inflight: number[];
}

export interface StatsSource {
  id: number;
  mode: string;
  target: string;
  startedAt: number;
  nrQueues: number;
  buffers: SharedArrayBuffer[];
}

/** Sums every thread's block; each is read as is (a counter may lag its histogram by one IO). */
export function readStats(src: StatsSource, now = Date.now()): DeviceStats {
  const blocks = src.buffers.map((b) => new Float64Array(b)).filter((w) => w[0] === ST_MAGIC && w[2] === HIST_BUCKETS);
  const hist = new Float64Array(HIST_BUCKETS);
  const ops = {} as Record<StatOp, OpStats>;
  STAT_OPS.forEach((name, i) => {
    const o = ST_HEADER + i * ST_OP_WORDS;
    let count = 0, bytes = 0, errors = 0, max = 0;
    hist.fill(0);
    for (const w of blocks) {
      count += w[o + ST_COUNT];
      bytes += w[o + ST_BYTES];
      errors += w[o + ST_ERRORS];
      max = Math.max(max, w[o + ST_MAX]);
      for (let b = 0; b < HIST_BUCKETS; b++) hist[b] += w[o + ST_HIST + b];
    }
    const mx = Math.ceil(max);
    const q = (p: number) => quantile(hist, 0, p, mx);
    ops[name] = { count, bytes, errors, latency: { p50: q(0.5), p90: q(0.9), p99: q(0.99), max: mx } };
  });
  const inflight = new Array<number>(src.nrQueues).fill(0);
  for (const w of blocks) {
    const n = Math.min(w[1], src.nrQueues);
    for (let qi = 0; qi < n; qi++) inflight[qi] += w[ST_INFLIGHT + qi];
  }
  return {
    id: src.id, mode: src.mode, target: src.target, uptimeSec: Math.max(0, (now - src.startedAt) / 1000),
    enabled: blocks.length > 0, ops, inflight,
  };
}
