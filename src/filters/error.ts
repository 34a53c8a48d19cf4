// error: fails a share of requests with a chosen errno, by op, byte range, or while a trigger
// file exists; a seed makes the choice repeatable.
import * as fs from 'node:fs';
import type { MaybePromise } from '../target/types.js';
import type { Filter } from './compose.js';
import { keys, num, oneOf, size } from './config.js';
import { errnoOf, UblkError } from '../errors.js';
import { Rng } from '../testing/stamp.js';

const OPS = ['all', 'read', 'write', 'flush', 'discard', 'writeZeroes'] as const;

export interface ErrorConfig {
  /** Share of matching requests that fail, 0..1; default 1. */
  rate?: number | string;
  op?: (typeof OPS)[number];
  /** Errno name; default EIO. */
  errno?: string;
  /** Only requests that touch [from, to) bytes. */
  from?: number | string;
  to?: number | string;
  /** Fail only while this file exists. */
  file?: string;
  /** Repeatable choices (tests); default random. */
  seed?: number | string;
}

export const error: Filter<ErrorConfig> = (next, config) => {
  const c = keys(config, 'error', ['rate', 'op', 'errno', 'from', 'to', 'file', 'seed']);
  const rate = num(c.rate, 'error rate', 1);
  if (rate > 1) throw new UblkError('EINVAL', `error rate ${rate} must be from 0 to 1`);
  const op = oneOf(c.op, 'error op', OPS, 'all');
  const name = typeof c.errno === 'string' ? c.errno.toUpperCase() : 'EIO';
  try {
    errnoOf(name);
  } catch {
    throw new UblkError('EINVAL', `error errno '${String(c.errno)}' is not an errno name (EIO, ENOSPC, ...)`);
  }
  const from = size(c.from, 'error from', 0);
  const to = size(c.to, 'error to', Number.MAX_SAFE_INTEGER);
  const file = typeof c.file === 'string' && c.file ? c.file : undefined;
  const rng = c.seed === undefined ? undefined : new Rng(num(c.seed, 'error seed'));
  const roll = () => (rng ? rng.u32() / 0x100000000 : Math.random());

  const hit = (which: string, off: number, len: number): boolean => {
    if (op !== 'all' && op !== which) return false;
    if (len > 0 && (off + len <= from || off >= to)) return false;
    if (file && !fs.existsSync(file)) return false;
    return rate >= 1 || roll() < rate;
  };
  const guard = <T>(which: string, off: number, len: number, f: () => MaybePromise<T>): MaybePromise<T> => {
    if (hit(which, off, len)) throw new UblkError(name, `error filter: ${which} at ${off} fails with ${name}`);
    return f();
  };
  return {
    read: (buf, off) => guard('read', off, buf.byteLength, () => next.read(buf, off)),
    write: (buf, off, flags) => guard('write', off, buf.byteLength, () => next.write(buf, off, flags)),
    flush: next.flush ? () => guard('flush', 0, 0, () => next.flush!()) : undefined,
    discard: next.discard ? (off, len) => guard('discard', off, len, () => next.discard!(off, len)) : undefined,
    writeZeroes: next.writeZeroes ? (off, len, u) => guard('writeZeroes', off, len, () => next.writeZeroes!(off, len, u)) : undefined,
    // Each request must pass through here to be failed.
    route: undefined,
  };
};
