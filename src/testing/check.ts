// checkTarget: drives a target (or a filter stack) the way the driver does, with no kernel, and
// checks every read against the model; see docs/testing-targets.md for what it does not model.
import { checkTarget as checkShape } from '../target/contract.js';
import type { MaybePromise, Target, TargetContext } from '../target/types.js';
import { errnoName, UblkError } from '../errors.js';
import { Model } from './model.js';
import { Rng, stampBlock } from './stamp.js';
import { status, transfer, type DriverStats } from './driver.js';
import { alignedAlloc, hostContext, type HostContext } from './host.js';

export type OpName = 'read' | 'write' | 'flush' | 'discard' | 'writeZeroes';

export interface CheckOptions {
  /** Bytes at the start of the target to test; default the smaller of its size and 16 MiB. */
  size?: number;
  /** Stop after this long (seconds). */
  seconds?: number;
  /** Stop after this many client requests (before splitting); default 2000 when no `seconds`. */
  ops?: number;
  /** Requests in flight at most; default 16. */
  depth?: number;
  /** Same seed, same request stream (for a target that completes in the same order). Default 1. */
  seed?: number;
  /** false for a target that stores nothing (null): every read must then be zeroes. Default true. */
  keepsData?: boolean;
  /** A fresh instance over the same storage: after the run the harness "crashes" and checks it. */
  reopen?: () => MaybePromise<Target>;
  /** Context for open(); default a host io_uring made for the run. */
  context?: TargetContext;
  /** The device's largest request when the target declares none; default 1 MiB, as a device's. */
  maxIoBufBytes?: number;
}

export interface CheckReport {
  seed: number;
  size: number;
  blockSize: number;
  maxIoBytes: number;
  /** Requests sent, by type, after splitting. */
  ops: Record<OpName, number>;
  bytes: { read: number; written: number; discarded: number; zeroed: number };
  /** Requests that failed, by type, and by errno name. */
  errors: Record<OpName, number>;
  errnos: Record<string, number>;
  /** Short read/write results that were asked again for the rest. */
  shortResults: number;
  /** A reopened instance was checked against what FLUSH and FUA made durable. */
  crashChecked: boolean;
  seconds: number;
}

interface Op {
  name: OpName;
  start: number;
  end: number;
  pieces: Array<() => Promise<void>>;
  left: number;
}

const zeroCounts = (): Record<OpName, number> => ({ read: 0, write: 0, flush: 0, discard: 0, writeZeroes: 0 });

export async function checkTarget(target: Target, opts: CheckOptions = {}): Promise<CheckReport> {
  checkShape(target);
  const lbs = 1 << (target.limits?.logicalBlockShift ?? 9);
  const maxIo = Math.max(lbs, Math.min(target.limits?.maxIoBytes ?? Infinity, opts.maxIoBufBytes ?? 1 << 20));
  const maxIoBytes = maxIo - (maxIo % lbs);
  // A zoned device's requests never cross a zone (the kernel splits them at chunk_sectors).
  const zone = target.limits?.zoned ? target.limits.zoned.zoneSectors * 512 : 0;
  const size = opts.size ?? Math.min(target.size, 16 << 20) - (Math.min(target.size, 16 << 20) % lbs);
  if (!Number.isSafeInteger(size) || size <= 0 || size % lbs || size > target.size) {
    throw new UblkError('EINVAL', `checkTarget size ${size} must be a positive multiple of ${lbs} within the target's ${target.size} bytes`);
  }
  const depth = Math.max(1, opts.depth ?? 16);
  const seed = opts.seed ?? 1;
  const rng = new Rng(seed);
  const keepsData = opts.keepsData !== false;
  const model = new Model(size, lbs, keepsData, !!opts.reopen);
  const report: CheckReport = {
    seed, size, blockSize: lbs, maxIoBytes, ops: zeroCounts(), errors: zeroCounts(), errnos: {},
    bytes: { read: 0, written: 0, discarded: 0, zeroed: 0 }, shortResults: 0, crashChecked: false, seconds: 0,
  };
  const st: DriverStats = report;
  const caps = target.caps ?? {};
  const began = performance.now();
  let host: HostContext | undefined;
  // A target with open() may do its IO on files with O_DIRECT: aligned buffers, as the engine's.
  const alloc = target.open ? await alignedAlloc() : (len: number) => new Uint8Array(len);
  const ctxFor = async (t: Target): Promise<void> => {
    if (!t.open) return;
    if (!opts.context && !host) host = await hostContext();
    await t.open(opts.context ?? host!.ctx);
  };
  const failed = (name: OpName, r: number): boolean => {
    if (r >= 0) return false;
    report.errors[name]++;
    report.errnos[errnoName(r)] = (report.errnos[errnoName(r)] ?? 0) + 1;
    return true;
  };

  try {
    await ctxFor(target);
    await readAll(target, size, maxIoBytes, zone, st, alloc, (buf, off) => model.prime(buf, off));
    model.primed();
    await run();
    if (keepsData) await readAll(target, size, maxIoBytes, zone, st, alloc, (buf, off) => model.checkRead(buf, off, 'final read'));
    if (opts.reopen) {
      const again = checkShape(await opts.reopen(), 'reopened target');
      try {
        await ctxFor(again);
        await readAll(again, size, maxIoBytes, zone, st, alloc, (buf, off) => model.checkDurable(buf, off));
        report.crashChecked = true;
      } finally {
        await again.close?.();
      }
    }
  } finally {
    host?.close();
  }
  report.seconds = (performance.now() - began) / 1000;
  return report;

  async function run(): Promise<void> {
    const limitOps = opts.ops ?? (opts.seconds === undefined ? 2000 : Infinity);
    const deadline = opts.seconds === undefined ? Infinity : began + opts.seconds * 1000;
    const active: Op[] = [];
    const running = new Set<Promise<void>>();
    let failure: unknown;
    let made = 0;
    let gen = 0;
    let cur: Op | undefined;
    const conflicts = (op: Op) => op.name !== 'flush' && active.some((a) => a.name !== 'flush'
      && a.start < op.end && op.start < a.end && (a.name !== 'read' || op.name !== 'read'));
    const launch = (op: Op, piece: () => Promise<void>) => {
      const p: Promise<void> = piece().catch((e) => void (failure ??= e)).finally(() => {
        running.delete(p);
        if (--op.left === 0) active.splice(active.indexOf(op), 1);
      });
      running.add(p);
    };

    const makeOp = (): Op => {
      const ro = !!caps.readOnly;
      const roll = rng.below(100);
      const name: OpName = ro || roll < 42 ? 'read'
        : roll < 84 ? 'write'
        : roll < 90 ? (caps.flush ? 'flush' : 'write')
        : roll < 95 ? (caps.discard ? 'discard' : 'read')
        : (caps.writeZeroes ? 'writeZeroes' : 'write');
      if (name === 'flush') return { name, start: 0, end: 0, left: 1, pieces: [flushPiece()] };
      const blocks = size / lbs;
      const most = Math.max(1, Math.min(blocks, (2 * maxIoBytes) / lbs));
      const n = 1 + rng.below(rng.chance(0.75) ? Math.min(16, most) : most);
      const start = rng.below(blocks - n + 1) * lbs;
      const end = start + n * lbs;
      const pieces: Array<() => Promise<void>> = [];
      const fua = name === 'write' && !!caps.fua && !!caps.flush && rng.chance(0.2);
      const g = name === 'write' ? ++gen : 0;
      // Split as the block layer does: at the largest request and at zone ends, never inside a
      // logical block.
      for (let off = start, len = 0; off < end; off += len) {
        len = pieceEnd(off, end, maxIoBytes, zone) - off;
        if (name === 'read') pieces.push(readPiece(off, len));
        else if (name === 'write') pieces.push(writePiece(off, len, g, fua));
        else pieces.push(spacePiece(name, off, len));
      }
      return { name, start, end, pieces, left: pieces.length };
    };

    const readPiece = (off: number, len: number) => async () => {
      // Filled with a pattern first, so a target that reports bytes it never filled is caught.
      const buf = alloc(len).fill(0xa5);
      report.ops.read++;
      const r = await transfer(target, true, buf, off, false, st);
      if (failed('read', r)) return;
      report.bytes.read += len;
      model.checkRead(buf, off);
    };
    const writePiece = (off: number, len: number, g: number, fua: boolean) => {
      const buf = alloc(len);
      for (let i = 0; i < len; i += lbs) stampBlock(buf.subarray(i, i + lbs), off + i, g, rng);
      return async () => {
        report.ops.write++;
        const r = await transfer(target, false, buf, off, fua, st);
        const bad = failed('write', r);
        if (!bad) report.bytes.written += len;
        model.wrote(off, buf, g, fua, !bad);
      };
    };
    const spacePiece = (name: 'discard' | 'writeZeroes', off: number, len: number) => async () => {
      report.ops[name]++;
      const noUnmap = rng.chance(0.5);
      const r = await status(() => (name === 'discard' ? target.discard!(off, len) : target.writeZeroes!(off, len, noUnmap)));
      const bad = failed(name, r);
      if (name === 'discard') {
        if (!bad) report.bytes.discarded += len;
        model.discarded(off, len, !bad);
      } else {
        if (!bad) report.bytes.zeroed += len;
        model.zeroed(off, len, !bad);
      }
    };
    const flushPiece = () => async () => {
      report.ops.flush++;
      // A FLUSH covers what was acknowledged before it was sent, not what completes meanwhile.
      const covers = model.flushSent();
      const r = await status(() => target.flush!());
      if (!failed('flush', r)) model.flushDone(covers);
    };

    for (;;) {
      if (failure) break;
      if (!cur) {
        if (made >= limitOps || performance.now() >= deadline) break;
        cur = makeOp();
        made++;
      }
      if (!active.includes(cur)) {
        // Overlapping requests in flight would leave the outcome open: wait, as fio's verify does.
        if (conflicts(cur)) {
          await Promise.race(running);
          continue;
        }
        active.push(cur);
      }
      while (cur.pieces.length && running.size < depth) launch(cur, cur.pieces.shift()!);
      if (!cur.pieces.length) cur = undefined;
      else await Promise.race(running);
    }
    await Promise.all(running);
    if (failure) throw failure;
  }
}

/** Where a request from `off` toward `end` stops: at the largest request or the end of its zone. */
function pieceEnd(off: number, end: number, maxIo: number, zone: number): number {
  const zoneEnd = zone > 0 ? (Math.floor(off / zone) + 1) * zone : Infinity;
  return Math.min(end, off + maxIo, zoneEnd);
}

/** Reads [0, size) in the largest requests, one at a time, handing each piece to `check`. */
async function readAll(
  t: Target, size: number, maxIo: number, zone: number, st: DriverStats, alloc: (len: number) => Uint8Array, check: (buf: Uint8Array, off: number) => void): Promise<void> {
  for (let off = 0, len = 0; off < size; off += len) {
    len = pieceEnd(off, size, maxIo, zone) - off;
    const buf = alloc(len).fill(0xa5);
    let r = -1;
    // A target that fails some reads on purpose (the error filter) still gets a whole pass.
    for (let tries = 0; tries < 20 && r < 0; tries++) r = await transfer(t, true, buf, off, false, st);
    if (r < 0) throw new UblkError(errnoName(r), `checkTarget: reading offset ${off} failed 20 times (${errnoName(r)})`);
    check(buf, off);
  }
}
