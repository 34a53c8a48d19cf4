// Seeded random numbers and the per-block stamps the verify workload writes: each block carries
// its own offset, the write that made it and a checksum, so a read can say what it really got.
import { crc32 } from 'node:zlib';

/** A small deterministic generator (32-bit xorshift mix); the same seed gives the same stream. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = (seed >>> 0) || 0x9e3779b9;
  }
  /** An unsigned 32-bit integer. */
  u32(): number {
    let x = this.s;
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    this.s = x;
    return x;
  }
  /** An integer in [0, n). */
  below(n: number): number {
    return n <= 1 ? 0 : Math.floor((this.u32() / 0x100000000) * n);
  }
  /** True with probability p. */
  chance(p: number): boolean {
    return this.u32() / 0x100000000 < p;
  }
}

const MAGIC = 0x75626c6b; // 'ublk'
const HEAD = 20;

/** Fills one block: magic, its byte offset, the write generation, a crc32 of the rest, then noise. */
export function stampBlock(block: Uint8Array, offset: number, gen: number, rng: Rng): void {
  const v = new DataView(block.buffer, block.byteOffset, block.byteLength);
  for (let i = HEAD; i + 4 <= block.byteLength; i += 4) v.setUint32(i, rng.u32(), true);
  v.setUint32(0, MAGIC, true);
  v.setUint32(4, offset % 0x100000000, true);
  v.setUint32(8, Math.floor(offset / 0x100000000), true);
  v.setUint32(12, gen, true);
  v.setUint32(16, crc32(block.subarray(HEAD)), true);
}

/** What a block holds: 0 for zeroes, a write generation (> 0) for a good stamp, undefined otherwise. */
export function stampOf(block: Uint8Array, offset: number): number | undefined {
  if (isZero(block)) return 0;
  const v = new DataView(block.buffer, block.byteOffset, block.byteLength);
  if (block.byteLength < 512 || v.getUint32(0, true) !== MAGIC) return undefined;
  const at = v.getUint32(4, true) + v.getUint32(8, true) * 0x100000000;
  if (at !== offset || v.getUint32(16, true) !== crc32(block.subarray(HEAD))) return undefined;
  return v.getUint32(12, true);
}

export function isZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.byteLength; i++) if (b[i] !== 0) return false;
  return true;
}

/** One line about a block's bytes, for mismatch messages. */
export function describeBlock(block: Uint8Array): string {
  if (isZero(block)) return 'zeroes';
  const v = new DataView(block.buffer, block.byteOffset, block.byteLength);
  if (block.byteLength >= HEAD && v.getUint32(0, true) === MAGIC) {
    const at = v.getUint32(4, true) + v.getUint32(8, true) * 0x100000000;
    const ok = v.getUint32(16, true) === crc32(block.subarray(HEAD)) ? '' : ', bad checksum';
    return `block stamped for offset ${at} by write #${v.getUint32(12, true)}${ok}`;
  }
  return `unstamped bytes ${Buffer.from(block.subarray(0, 16)).toString('hex')}...`;
}
