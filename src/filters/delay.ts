// delay: every request waits a fixed time before the target below sees it (slow disks, timeouts).
import type { MaybePromise, TargetContext } from '../target/types.js';
import type { FileIo } from '../uring/file-io.js';
import type { Filter } from './compose.js';
import { keys, num } from './config.js';

export interface DelayConfig {
  /** Milliseconds for every op (fractions allowed: 0.05 is 50 us); the per-op values below override it. */
  ms?: number | string;
  read?: number | string;
  write?: number | string;
  flush?: number | string;
  discard?: number | string;
  writeZeroes?: number | string;
}

export const delay: Filter<DelayConfig> = (next, config) => {
  const c = keys(config, 'delay', ['ms', 'read', 'write', 'flush', 'discard', 'writeZeroes']);
  const all = num(c.ms, 'delay ms', 0);
  const ms = (op: string) => num(c[op], `delay ${op}`, all);
  // Opened on a serving thread, the wait is an io_uring timeout on that thread's ring: to the
  // nanosecond (kublk's fault_inject counts microseconds) and submitted with the batch's other
  // SQEs. Before open (a harness without a context) a JS timer stands in, to the millisecond.
  let io: FileIo | undefined;
  const sleep = (wait: number): Promise<unknown> => {
    if (!io) return new Promise<void>((r) => setTimeout(r, wait));
    const ts = new BigInt64Array(2);
    return io.sleep(Math.round(wait * 1e6), ts);
  };
  const later = <T>(wait: number, f: () => MaybePromise<T>): MaybePromise<T> => (wait > 0 ? sleep(wait).then(f) : f());
  const r = ms('read'), w = ms('write'), f = ms('flush'), d = ms('discard'), z = ms('writeZeroes');
  return {
    open(ctx: TargetContext) {
      io = ctx.io;
    },
    read: (buf, off) => later(r, () => next.read(buf, off)),
    write: (buf, off, flags) => later(w, () => next.write(buf, off, flags)),
    flush: next.flush ? () => later(f, () => next.flush!()) : undefined,
    discard: next.discard ? (off, len) => later(d, () => next.discard!(off, len)) : undefined,
    writeZeroes: next.writeZeroes ? (off, len, u) => later(z, () => next.writeZeroes!(off, len, u)) : undefined,
    // Zero copy would move the data without calling read/write: no delay. The engine copies instead.
    route: undefined,
  };
};
