// The Target interface: a block device is an object with async read/write/flush/discard/writeZeroes.
import type { Ring } from '../uring/ring.js';
import type { FileIo } from '../uring/file-io.js';

/** A result now or later: targets that finish synchronously (null, memory) skip a promise per IO. */
export type MaybePromise<T> = T | Promise<T>;

/** What a target supports; the engine turns this into ublk params and request routing. */
export interface TargetCaps {
  /** FLUSH requests are sent (volatile write cache); needs `flush`. */
  flush?: boolean;
  /** Native FUA writes (with `flush`). */
  fua?: boolean;
  /** DISCARD requests are sent; needs `discard`. */
  discard?: boolean;
  /** WRITE_ZEROES requests are sent; needs `writeZeroes`. */
  writeZeroes?: boolean;
  readOnly?: boolean;
  rotational?: boolean;
}

/** Block geometry and limits a target may declare; the engine fills the rest with safe defaults. */
export interface TargetLimits {
  /** log2 of the logical block size: 9 (512) .. 12 (4096). */
  logicalBlockShift?: number;
  physicalBlockShift?: number;
  ioMinShift?: number;
  ioOptShift?: number;
  /** DMA alignment mask, e.g. 511 when the backend takes 512-byte aligned buffers. */
  dmaAlignment?: number;
  segment?: { segBoundaryMask: number; maxSegmentSize: number; maxSegments: number };
  /** Largest request in bytes (capped by the device's max_io_buf_bytes). */
  maxIoBytes?: number;
  /** Discard granularity in bytes. */
  discardGranularity?: number;
  /** A zoned device (UBLK_F_ZONED, user copy only): the target implements the zone methods. */
  zoned?: TargetZoned;
}

/** Zoned geometry and limits, in 512-byte sectors; 0 means no limit. */
export interface TargetZoned {
  /** Zone size, a power of two; the device size is a whole number of zones. */
  zoneSectors: number;
  maxOpen?: number;
  maxActive?: number;
  /** Largest ZONE_APPEND (default: the zone size, capped by the largest request). */
  maxZoneAppendSectors?: number;
}

/** Where a zone append landed: the bytes stored and the sector it was written at. */
export interface ZoneAppendResult {
  bytes: number;
  sector: number;
}

export interface TargetIntegrity {
  metadataSize: number;
  piOffset?: number;
  /** 0 none, 1 IP, 2 CRC16 T10-DIF, 4 CRC64 NVMe */
  csumType?: number;
  tagSize?: number;
  /** LBMD_PI_CAP_INTEGRITY (1) | LBMD_PI_CAP_REFTAG (2) */
  flags?: number;
}

/** One piece of a request that a pass-through target maps to a file: zero copy does the IO itself. */
export interface Extent {
  /** The file; -1 is a hole: a READ gets zeroes, a WRITE is dropped. */
  fd: number;
  /** Byte offset in `fd`. */
  offset: number;
  length: number;
  /** Byte offset inside the request's buffer. */
  bufOffset: number;
}

/** Per-thread context handed to `open`: the thread's ring, for targets that do their IO through it. */
export interface TargetContext {
  ring: Ring;
  /** Promise-based file IO on the thread's ring (one io_uring_enter per batch). */
  io: FileIo;
  /** Queues this thread serves. */
  queues: number[];
  /** Index of the thread (0 for the calling thread). */
  thread: number;
}

/** Flags passed to write(): `fua` when the request must be durable before completing. */
export interface WriteFlags {
  fua: boolean;
}

/**
 * A block device. Results, one model for every method (checked in one place, src/target/result.ts):
 * - `read`/`write` resolve with the bytes done, an integer 1..buf.byteLength. A short count is
 *   asked again for the rest; 0 (no progress) and more than asked fail the request with EIO.
 * - `flush`, `discard`, `writeZeroes`, `readIntegrity`, `writeIntegrity` resolve with anything.
 * - Failure: throw or reject with a UblkError (`new UblkError('ENOSPC')`); its errno is what the
 *   client sees. Node's system errors (with `errno` or `code`) work too; anything else is EIO.
 * - Still accepted, for targets written against the kernel's convention: resolving with a negative
 *   errno number (e.g. -28) fails the request with that errno, like a rejection.
 * A method may return its result directly instead of a promise (null and memory targets do).
 */
export interface Target {
  /** Capacity in bytes (a multiple of the logical block size). */
  readonly size: number;
  readonly caps?: TargetCaps;
  readonly limits?: TargetLimits;
  /** Called once per serving thread before any IO. */
  open?(ctx: TargetContext): MaybePromise<void>;
  /** Fill `buf` from `offset`; resolve with the bytes filled (a short count: the engine asks again for the rest). */
  read(buf: Uint8Array, offset: number): MaybePromise<number>;
  /**
   * Every `read` fills its buffer with zeroes and does nothing else (null). In the copy modes the
   * engine then keeps track of which buffer bytes a WRITE left behind and serves a READ from a
   * buffer it knows to be zero, without the call. A filter that replaces `read` drops it.
   */
  readonly readsZeroes?: boolean;
  /** Store `buf` at `offset`; resolve with the bytes stored. */
  write(buf: Uint8Array, offset: number, flags: WriteFlags): MaybePromise<number>;
  flush?(): MaybePromise<unknown>;
  discard?(offset: number, length: number): MaybePromise<unknown>;
  writeZeroes?(offset: number, length: number, noUnmap: boolean): MaybePromise<unknown>;
  /**
   * Pass-through targets map a request to file extents; with it the engine can use zero copy
   * (the request pages go straight to the file IO, the target never sees the bytes).
   */
  route?(offset: number, length: number): Extent[];
  /**
   * Integrity (T10 PI / NVMe metadata), user-copy mode: `integrity` declares the format; the engine
   * moves each request's metadata (one tuple of `metadataSize` bytes per logical block) to and from
   * these methods. `offset` is the data's byte offset.
   */
  readonly integrity?: TargetIntegrity;
  readIntegrity?(buf: Uint8Array, offset: number): MaybePromise<unknown>;
  writeIntegrity?(buf: Uint8Array, offset: number): MaybePromise<unknown>;
  /**
   * Zoned targets (limits.zoned): zone management on the zone starting at `sector` (512-byte
   * units). `reportZones` fills `buf` with up to `nrZones` 64-byte struct blk_zone records from
   * the zone holding `sector` and resolves with how many it wrote. `zoneAppend` stores `buf` at
   * the write pointer of the zone starting at `sector`. Errors as everywhere: reject with a
   * UblkError (EIO for a write off the pointer, ETOOMANYREFS / EOVERFLOW past the open / active
   * limits, as the kernel's zoned model maps them).
   */
  reportZones?(sector: number, nrZones: number, buf: Uint8Array): MaybePromise<number>;
  zoneOpen?(sector: number): MaybePromise<unknown>;
  zoneClose?(sector: number): MaybePromise<unknown>;
  zoneFinish?(sector: number): MaybePromise<unknown>;
  zoneReset?(sector: number): MaybePromise<unknown>;
  zoneResetAll?(): MaybePromise<unknown>;
  zoneAppend?(buf: Uint8Array, sector: number): MaybePromise<ZoneAppendResult>;
  close?(): MaybePromise<void>;
}

/**
 * How to build a target in another thread: a module that exports `create(config)`. Used for
 * multi-threaded devices and by the CLI; config must be structured-cloneable.
 */
export interface TargetSpec {
  module: string;
  config?: unknown;
  /** Built-in filters over the target, the first nearest to the kernel; each thread builds them. */
  filters?: FilterSpec[];
}

/** A built-in filter by name with its config (structured-cloneable); see src/filters. */
export interface FilterSpec {
  name: string;
  config?: Record<string, unknown>;
}

export interface TargetModule {
  create(config: any): MaybePromise<Target>;
  /** Runs once in the calling thread before any thread creates its instance (validate, allocate). */
  prepare?(config: any): MaybePromise<any>;
}
