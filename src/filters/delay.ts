// delay: every request waits a fixed time before the target below sees it (slow disks, timeouts).
import type { MaybePromise } from '../target/types.js';
import type { Filter } from './compose.js';
import { keys, num } from './config.js';

export interface DelayConfig {
  /** Milliseconds for every op; the per-op values below override it. */
  ms?: number | string;
  read?: number | string;
  write?: number | string;
  flush?: number | string;
  discard?: number | string;
  writeZeroes?: number | string;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export const delay: Filter<DelayConfig> = (next, config) => {
  const c = keys(config, 'delay', ['ms', 'read', 'write', 'flush', 'discard', 'writeZeroes']);
  const all = num(c.ms, 'delay ms', 0);
  const ms = (op: string) => num(c[op], `delay ${op}`, all);
  const later = <T>(wait: number, f: () => MaybePromise<T>): MaybePromise<T> => (wait > 0 ? sleep(wait).then(f) : f());
  const r = ms('read'), w = ms('write'), f = ms('flush'), d = ms('discard'), z = ms('writeZeroes');
  return {
    read: (buf, off) => later(r, () => next.read(buf, off)),
    write: (buf, off, flags) => later(w, () => next.write(buf, off, flags)),
    flush: next.flush ? () => later(f, () => next.flush!()) : undefined,
    discard: next.discard ? (off, len) => later(d, () => next.discard!(off, len)) : undefined,
    writeZeroes: next.writeZeroes ? (off, len, u) => later(z, () => next.writeZeroes!(off, len, u)) : undefined,
    // Zero copy would move the data without calling read/write: no delay. The engine copies instead.
    route: undefined,
  };
};
