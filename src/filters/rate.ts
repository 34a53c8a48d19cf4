// rate: bandwidth and IOPS limits. Each request is given the earliest start its budgets allow
// (a virtual clock per budget, no bursts), then waits until then.
import type { MaybePromise } from '../target/types.js';
import type { Filter } from './compose.js';
import { keys, num, size } from './config.js';

export interface RateConfig {
  /** Bytes per second, reads and writes together; sizes like '20M' are per second. */
  bps?: number | string;
  read_bps?: number | string;
  write_bps?: number | string;
  /** Requests per second, every op. */
  iops?: number | string;
}

class Budget {
  private free = 0;
  constructor(private readonly perSecond: number) {}
  /** The time `units` may start, and books them. */
  book(units: number, now: number): number {
    if (!this.perSecond) return now;
    const start = Math.max(now, this.free);
    this.free = start + (units * 1000) / this.perSecond;
    return start;
  }
}

export const rate: Filter<RateConfig> = (next, config) => {
  const c = keys(config, 'rate', ['bps', 'read_bps', 'write_bps', 'iops']);
  const all = new Budget(size(c.bps, 'rate bps', 0));
  const rd = new Budget(size(c.read_bps, 'rate read_bps', 0));
  const wr = new Budget(size(c.write_bps, 'rate write_bps', 0));
  const ops = new Budget(num(c.iops, 'rate iops', 0));
  const gate = <T>(bytes: number, dir: Budget | undefined, f: () => MaybePromise<T>): MaybePromise<T> => {
    const now = performance.now();
    const at = Math.max(ops.book(1, now), bytes ? all.book(bytes, now) : now, dir ? dir.book(bytes, now) : now);
    return at - now >= 1 ? new Promise<void>((r) => setTimeout(r, at - now)).then(f) : f();
  };
  return {
    read: (buf, off) => gate(buf.byteLength, rd, () => next.read(buf, off)),
    write: (buf, off, flags) => gate(buf.byteLength, wr, () => next.write(buf, off, flags)),
    flush: next.flush ? () => gate(0, undefined, () => next.flush!()) : undefined,
    discard: next.discard ? (off, len) => gate(0, undefined, () => next.discard!(off, len)) : undefined,
    writeZeroes: next.writeZeroes ? (off, len, u) => gate(0, undefined, () => next.writeZeroes!(off, len, u)) : undefined,
    // Requests the engine moves by itself (zero copy) would escape the limit.
    route: undefined,
  };
};
