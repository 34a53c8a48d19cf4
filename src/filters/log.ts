// log: one JSON line per request to a file: time, op, offset, length, milliseconds, result.
import * as fs from 'node:fs';
import type { MaybePromise } from '../target/types.js';
import type { Filter } from './compose.js';
import { keys } from './config.js';
import { toNegErrno, errnoName, UblkError } from '../errors.js';

export interface LogConfig {
  file: string;
}

export const log: Filter<LogConfig> = (next, config) => {
  const c = keys(config, 'log', ['file']);
  if (typeof c.file !== 'string' || !c.file) throw new UblkError('EINVAL', 'log filter needs file=PATH');
  let fd = fs.openSync(c.file, 'a');
  const line = (op: string, off: number, len: number, t0: number, res: string) => {
    if (fd < 0) return;
    const ms = Math.round((performance.now() - t0) * 1000) / 1000;
    fs.writeSync(fd, `${JSON.stringify({ t: new Date().toISOString(), op, offset: off, length: len, ms, result: res })}\n`);
  };
  const logged = <T>(op: string, off: number, len: number, f: () => MaybePromise<T>): MaybePromise<T> => {
    const t0 = performance.now();
    const fail = (e: unknown): never => {
      line(op, off, len, t0, errnoName(toNegErrno(e)));
      throw e;
    };
    const ok = (v: T): T => (line(op, off, len, t0, typeof v === 'number' ? String(v) : 'ok'), v);
    let r: MaybePromise<T>;
    try {
      r = f();
    } catch (e) {
      return fail(e);
    }
    return r instanceof Promise ? r.then(ok, fail) : ok(r);
  };
  return {
    read: (buf, off) => logged('read', off, buf.byteLength, () => next.read(buf, off)),
    write: (buf, off, flags) => logged(flags.fua ? 'write+fua' : 'write', off, buf.byteLength, () => next.write(buf, off, flags)),
    flush: next.flush ? () => logged('flush', 0, 0, () => next.flush!()) : undefined,
    discard: next.discard ? (off, len) => logged('discard', off, len, () => next.discard!(off, len)) : undefined,
    writeZeroes: next.writeZeroes ? (off, len, u) => logged('writeZeroes', off, len, () => next.writeZeroes!(off, len, u)) : undefined,
    // Zero copy would move requests without calling read/write: none would be logged.
    route: undefined,
    close() {
      if (fd >= 0) fs.closeSync(fd);
      fd = -1;
    },
  };
};
