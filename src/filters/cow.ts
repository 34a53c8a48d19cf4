// cow: copy-on-write at logical-block granularity. Writes land in an overlay (memory, or a scratch
// file); the target below is only read, until commit() merges the overlay into it.
import * as fs from 'node:fs';
import type { Target, TargetContext } from '../target/types.js';
import type { FileIo } from '../uring/file-io.js';
import type { Filter } from './compose.js';
import { blockOf, keys } from './config.js';
import { UblkError } from '../errors.js';

export interface CowConfig {
  /** Overlay file, created at open (must be absent or empty; scratch, not reusable); default memory. */
  file?: string;
}

const aligned = async () => {
  const { native } = await import('../native.js');
  const n = native();
  return (len: number, align: number) => n.alloc(len, align);
};

const BASE = 0;
const OVERLAY = 1;
const ZERO = 2;

/** Calls `f` on what is left of `buf` until all of it is done (the layer below may go short). */
async function whole(buf: Uint8Array, f: (part: Uint8Array, done: number) => Promise<number> | number): Promise<void> {
  for (let done = 0; done < buf.byteLength;) done += await f(buf.subarray(done), done);
}

export const cow: Filter<CowConfig> = (next, config) => {
  const c = keys(config, 'cow', ['file']);
  const bs = blockOf(next);
  const blocks = Math.ceil(next.size / bs);
  const state = new Uint8Array(blocks);
  const mem = new Map<number, Uint8Array>();
  const file = typeof c.file === 'string' && c.file ? c.file : undefined;
  let fd = -1;
  // The overlay file's IO goes through the serving thread's ring, never blocking that thread.
  let io: FileIo | undefined;
  // Made when a serving thread opens the stack, not when a spec is merely built (the instance that
  // only describes the device, a start-up that fails): nothing is left behind by those.
  const create = (): void => {
    let f = -1;
    try {
      f = fs.openSync(file!, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
      if (fs.fstatSync(f).size > 0) {
        throw new UblkError('EEXIST', `cow overlay file ${file} exists and is not empty: remove it or name another (an overlay is scratch, its map of blocks is in memory)`);
      }
      fs.ftruncateSync(f, next.size);
      fd = f;
    } catch (err) {
      if (f >= 0) fs.closeSync(f);
      if (err instanceof UblkError) throw err;
      throw new UblkError((err as NodeJS.ErrnoException).code ?? 'EIO', `cow overlay file ${file} cannot be created (${(err as Error).message})`);
    }
  };
  const overlayIo = (): FileIo => {
    if (fd < 0 || !io) throw new UblkError('EIO', 'cow filter used before open()');
    return io;
  };
  const failed = (res: number, what: string): UblkError => (res < 0
    ? UblkError.fromResult(res, `cow overlay file ${file}: ${what}`)
    : new UblkError('EIO', `cow overlay file ${file}: ${what} made no progress`));

  /** Moves all of `buf` between memory and the overlay file at `off`, going on after short counts. */
  const fileIo = async (op: 'read' | 'write', buf: Uint8Array, off: number): Promise<void> => {
    const io = overlayIo();
    await whole(buf, async (part, done) => {
      const n = await io[op](fd, part, off + done);
      if (n <= 0) throw failed(n, op);
      return n;
    });
  };
  const putOverlay = async (buf: Uint8Array, off: number): Promise<void> => {
    if (file) return fileIo('write', buf, off);
    for (let i = 0; i < buf.byteLength; i += bs) mem.set((off + i) / bs, buf.slice(i, i + bs));
  };
  const getOverlay = async (buf: Uint8Array, off: number): Promise<void> => {
    if (file) return fileIo('read', buf, off);
    for (let i = 0; i < buf.byteLength; i += bs) buf.set(mem.get((off + i) / bs)!, i);
  };
  const syncOverlay = async (): Promise<void> => {
    const n = await overlayIo().fsync(fd, true);
    if (n < 0) throw failed(n, 'fdatasync');
  };

  /** Visits `[off, off+len)` in runs of blocks with the same state. */
  const runs = (off: number, len: number, f: (st: number, at: number, n: number) => void): void => {
    let b = off / bs;
    const end = (off + len) / bs;
    while (b < end) {
      const st = state[b];
      let e = b + 1;
      while (e < end && state[e] === st) e++;
      f(st, b * bs, (e - b) * bs);
      b = e;
    }
  };
  const mark = (off: number, len: number, st: number): void => {
    state.fill(st, off / bs, (off + len) / bs);
    if (st !== OVERLAY) for (let b = off / bs; b < (off + len) / bs; b++) mem.delete(b);
  };

  return {
    caps: { ...next.caps, readOnly: false, flush: !!file, fua: false, discard: true, writeZeroes: true },
    open(ctx: TargetContext) {
      // The overlay map lives in this thread: a second serving thread would see none of it.
      if (ctx.thread > 0) throw new UblkError('EINVAL', 'cow filter serves from one thread only (use one queue thread)');
      io = ctx.io;
      if (file && fd < 0) create();
    },
    async read(buf, off) {
      const parts: Array<Promise<void>> = [];
      runs(off, buf.byteLength, (st, at, n) => {
        const part = buf.subarray(at - off, at - off + n);
        if (st === OVERLAY) parts.push(getOverlay(part, at));
        else if (st === ZERO) part.fill(0);
        else parts.push(whole(part, (p, done) => next.read(p, at + done)));
      });
      await Promise.all(parts);
      return buf.byteLength;
    },
    async write(buf, off, flags) {
      await putOverlay(buf, off);
      // Marked once the bytes are in the overlay: a read meanwhile still sees the base.
      mark(off, buf.byteLength, OVERLAY);
      if (flags.fua && file) await syncOverlay();
      return buf.byteLength;
    },
    flush: file ? syncOverlay : undefined,
    discard: (off, len) => mark(off, len, ZERO),
    writeZeroes: (off, len) => mark(off, len, ZERO),
    route: undefined,
    /** Writes the overlay into the target below, flushes it, and empties the overlay. Call when idle. */
    async commit(): Promise<void> {
      const jobs: Array<[number, number, number]> = [];
      runs(0, blocks * bs, (st, at, n) => { if (st !== BASE) jobs.push([st, at, n]); });
      for (const [st, at, n] of jobs) {
        for (let o = at; o < at + n; o += 1 << 20) {
          const len = Math.min(1 << 20, at + n - o);
          if (st === ZERO && next.writeZeroes) {
            await next.writeZeroes(o, len, true);
            continue;
          }
          // Page-aligned, as the engine's buffers: the target below may do O_DIRECT IO.
          const buf = new Uint8Array((await aligned())(len, 4096), 0, len);
          if (st === OVERLAY) await getOverlay(buf, o);
          await whole(buf, (p, done) => next.write(p, o + done, { fua: false }));
        }
      }
      await next.flush?.();
      mark(0, blocks * bs, BASE);
      if (fd >= 0) {
        fs.ftruncateSync(fd, 0);
        fs.ftruncateSync(fd, next.size);
      }
    },
    close() {
      if (fd >= 0) fs.closeSync(fd);
      fd = -1;
    },
  } satisfies Partial<Target> & { commit(): Promise<void> };
};
