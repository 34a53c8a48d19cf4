// struct ublksrv_io_desc: one per tag in the array the kernel shares through /dev/ublkcN's mmap.
/** Byte offsets of its fields (24 bytes in all). */
export const IO_DESC = { op_flags: 0, nr_sectors: 4, start_sector: 8, addr: 16, size: 24 } as const;
/**
 * The array is read as u32 words: a tag's descriptor starts at word `tag * stride`, the stride
 * being IO_DESC_WORDS unless a larger slot was negotiated (UBLK_F_IO_DESC_SIZE); the fields stay
 * at the start of each slot.
 */
export const IO_DESC_WORDS = IO_DESC.size / 4;

/** The word stride of descriptor slots of `bytes` bytes (a multiple of 8, at least 24). */
export function ioDescWords(bytes: number): number {
  return bytes / 4;
}

/**
 * Where a decoded descriptor goes: per-slot typed arrays, so that decoding allocates nothing.
 * `flags` is the whole op_flags word (the UBLK_IO_F_* bits are absolute), `op` its low byte.
 */
export interface IoDescSink {
  readonly op: Uint8Array;
  readonly flags: Uint32Array;
  /** Bytes: nr_sectors * 512. */
  readonly len: Int32Array;
  /** Bytes: start_sector * 512. */
  readonly off: Float64Array;
  readonly addr: Float64Array;
}

/** Decodes tag `tag`'s descriptor from the shared words `d` into slot `s` of `to`. */
export function decodeIoDesc(d: Uint32Array, tag: number, to: IoDescSink, s: number, stride = IO_DESC_WORDS): void {
  const w = tag * stride;
  const opFlags = d[w];
  to.flags[s] = opFlags;
  to.op[s] = opFlags & 0xff;
  to.len[s] = d[w + 1] * 512;
  to.off[s] = (d[w + 2] + d[w + 3] * 0x100000000) * 512;
  to.addr[s] = d[w + 4] + d[w + 5] * 0x100000000;
}

export interface IoDesc {
  opFlags: number;
  nrSectors: number;
  startSector: number;
  addr?: number;
}

/** Writes tag `tag`'s descriptor, as the kernel would (for stand-ins of the driver and tests). */
export function encodeIoDesc(d: Uint32Array, tag: number, x: IoDesc, stride = IO_DESC_WORDS): void {
  const w = tag * stride;
  d[w] = x.opFlags;
  d[w + 1] = x.nrSectors;
  d[w + 2] = x.startSector >>> 0;
  d[w + 3] = Math.floor(x.startSector / 0x100000000);
  d[w + 4] = (x.addr ?? 0) >>> 0;
  d[w + 5] = Math.floor((x.addr ?? 0) / 0x100000000);
}

