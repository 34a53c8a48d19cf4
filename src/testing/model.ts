// The in-memory reference a target is checked against: what each block may read as now, and, for
// a crash check, what it may hold after losing everything no FLUSH or FUA made durable.
import { describeBlock, isZero, stampOf } from './stamp.js';

/** The first block that reads wrong. */
export class TargetMismatch extends Error {
  readonly offset: number;
  readonly expected: string;
  readonly got: string;
  constructor(offset: number, expected: string, got: string, when: string) {
    super(`${when}: block at offset ${offset} reads wrong: expected ${expected}, got ${got}`);
    this.name = 'TargetMismatch';
    this.offset = offset;
    this.expected = expected;
    this.got = got;
  }
}

const EXACT = 0;
const DISCARDED = 1;
const UNKNOWN = 2;

const enum Kind { Write, Zero, Discard, Unknown }
interface Entry { gen: number; kind: Kind; ack: number; fua: boolean }

export class Model {
  readonly bs: number;
  private readonly ref: Uint8Array;
  private readonly state: Uint8Array;
  private readonly keepsData: boolean;
  /** Per-block history for the crash check; only kept when asked. */
  private readonly history: Map<number, Entry[]> | undefined;
  private initial: Uint8Array | undefined;
  private acks = 0;
  private durable = 0;

  constructor(size: number, bs: number, keepsData: boolean, trackDurability: boolean) {
    this.bs = bs;
    this.keepsData = keepsData;
    this.ref = new Uint8Array(keepsData ? size : 0);
    this.state = new Uint8Array(size / bs);
    this.history = trackDurability && keepsData ? new Map() : undefined;
  }

  /** The disk's contents before the run, as first read. */
  prime(data: Uint8Array, offset: number): void {
    if (!this.keepsData) return this.checkRead(data, offset, 'initial read');
    this.ref.set(data, offset);
  }

  primed(): void {
    if (this.history) this.initial = this.ref.slice();
  }

  /** A modifying request completed (ok) or failed (its blocks may now hold anything). */
  wrote(offset: number, data: Uint8Array, gen: number, fua: boolean, ok: boolean): void {
    if (!this.keepsData) return;
    if (ok) this.ref.set(data, offset);
    this.mark(offset, data.byteLength, ok ? EXACT : UNKNOWN, ok ? Kind.Write : Kind.Unknown, gen, fua);
  }

  zeroed(offset: number, length: number, ok: boolean): void {
    if (!this.keepsData) return;
    if (ok) this.ref.fill(0, offset, offset + length);
    this.mark(offset, length, ok ? EXACT : UNKNOWN, ok ? Kind.Zero : Kind.Unknown, 0, false);
  }

  /** After a DISCARD a block reads as its old bytes or zeroes (whole block), until next written. */
  discarded(offset: number, length: number, ok: boolean): void {
    if (!this.keepsData) return;
    const first = offset / this.bs;
    for (let b = first; b < first + length / this.bs; b++) if (this.state[b] === EXACT) this.state[b] = DISCARDED;
    if (!ok) this.mark(offset, length, UNKNOWN, Kind.Unknown, 0, false);
    else this.mark(offset, length, -1, Kind.Discard, 0, false);
  }

  /** The number a FLUSH sent now covers: every modifying request acknowledged so far. */
  flushSent(): number {
    return this.acks;
  }

  flushDone(covers: number): void {
    this.durable = Math.max(this.durable, covers);
  }

  private mark(offset: number, length: number, state: number, kind: Kind, gen: number, fua: boolean): void {
    const first = offset / this.bs;
    const n = length / this.bs;
    if (state >= 0) this.state.fill(state, first, first + n);
    if (!this.history) return;
    const ack = ++this.acks;
    for (let b = first; b < first + n; b++) {
      let h = this.history.get(b);
      if (!h) this.history.set(b, (h = [{ gen: -1, kind: Kind.Write, ack: 0, fua: true }]));
      h.push({ gen, kind, ack, fua });
    }
  }

  /** Throws on the first block of `data` (read at `offset`) the model does not allow. */
  checkRead(data: Uint8Array, offset: number, when = 'read'): void {
    const bs = this.bs;
    for (let i = 0; i < data.byteLength; i += bs) {
      const got = data.subarray(i, i + bs);
      const at = offset + i;
      if (!this.keepsData) {
        if (!isZero(got)) throw new TargetMismatch(at, 'zeroes (a target that keeps no data)', describeBlock(got), when);
        continue;
      }
      const st = this.state[at / bs];
      if (st === UNKNOWN) continue;
      const want = this.ref.subarray(at, at + bs);
      if (equal(got, want) || (st === DISCARDED && isZero(got))) continue;
      const expected = describeBlock(want) + (st === DISCARDED ? ' or zeroes (discarded)' : '');
      throw new TargetMismatch(at, expected, describeBlock(got), when);
    }
  }

  /** Checks a block as read from a reopened target after a simulated crash. */
  checkDurable(data: Uint8Array, offset: number): void {
    const bs = this.bs;
    for (let i = 0; i < data.byteLength; i += bs) {
      const at = offset + i;
      const got = data.subarray(i, i + bs);
      const h = this.history?.get(at / bs);
      if (!h) {
        if (this.initial && !equal(got, this.initial.subarray(at, at + bs))) {
          throw new TargetMismatch(at, `its initial bytes (${describeBlock(this.initial.subarray(at, at + bs))})`, describeBlock(got), 'after a crash');
        }
        continue;
      }
      let f = h.length - 1;
      while (f > 0 && !(h[f].ack <= this.durable || h[f].fua)) f--;
      while (f > 0 && h[f].kind === Kind.Discard) f--;
      const gen = stampOf(got, at);
      const ok = h.slice(f).some((e) => e.kind === Kind.Unknown
        || ((e.kind === Kind.Zero || e.kind === Kind.Discard) && gen === 0)
        || (e.kind === Kind.Write && (e.gen === -1 ? equal(got, this.initial!.subarray(at, at + bs)) : gen === e.gen)));
      if (!ok) {
        const allowed = h.slice(f).map((e) => (e.kind === Kind.Write ? (e.gen === -1 ? 'initial bytes' : `write #${e.gen}`) : 'zeroes')).join(' or ');
        throw new TargetMismatch(at, `${allowed} (what FLUSH and FUA made durable, or later)`, describeBlock(got), 'after a crash');
      }
    }
  }
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}
