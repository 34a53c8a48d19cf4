// u64 fields as JS numbers: two u32 halves, exact below 2^53 (addresses, offsets, sizes).

export function setU64(v: DataView, off: number, n: number): void {
  v.setUint32(off, n >>> 0, true);
  v.setUint32(off + 4, Math.floor(n / 0x100000000) >>> 0, true);
}

export function getU64(v: DataView, off: number): number {
  return v.getUint32(off, true) + v.getUint32(off + 4, true) * 0x100000000;
}
