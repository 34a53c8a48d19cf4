// Layouts of the ublk control structs (ublksrv_ctrl_cmd, dev_info, ublk_params, shmem_buf_reg) on DataViews.
import * as U from './ublk.js';
import { setU64, getU64 } from './u64.js';

export { setU64, getU64 };

export interface CtrlCmd {
  devId: number;
  queueId?: number;
  len?: number;
  addr?: number;
  data0?: number | bigint;
  devPathLen?: number;
}

/** Writes struct ublksrv_ctrl_cmd (32 bytes) at `off`. */
export function encodeCtrlCmd(v: DataView, off: number, c: CtrlCmd): void {
  v.setUint32(off + 0, c.devId >>> 0, true);
  v.setUint16(off + 4, c.queueId ?? 0xffff, true);
  v.setUint16(off + 6, c.len ?? 0, true);
  setU64(v, off + 8, c.addr ?? 0);
  const d = c.data0 ?? 0;
  if (typeof d === 'bigint') v.setBigUint64(off + 16, d, true);
  else setU64(v, off + 16, d);
  v.setUint16(off + 24, c.devPathLen ?? 0, true);
  v.setUint16(off + 26, 0, true);
  v.setUint32(off + 28, 0, true);
}

export interface DevInfo {
  nrHwQueues: number;
  queueDepth: number;
  state: number;
  /** Bytes per descriptor slot; meaningful only with UBLK_F_IO_DESC_SIZE (the pad before 7.3). */
  ioDescSize: number;
  maxIoBufBytes: number;
  devId: number;
  ublksrvPid: number;
  flags: number;
  ublksrvFlags: bigint;
  ownerUid: number;
  ownerGid: number;
}

export function encodeDevInfo(v: DataView, off: number, d: Partial<DevInfo>): void {
  for (let i = 0; i < U.SIZEOF_UBLKSRV_CTRL_DEV_INFO; i++) v.setUint8(off + i, 0);
  v.setUint16(off + 0, d.nrHwQueues ?? 1, true);
  v.setUint16(off + 2, d.queueDepth ?? 128, true);
  v.setUint16(off + 4, d.state ?? 0, true);
  v.setUint16(off + 6, d.ioDescSize ?? 0, true);
  v.setUint32(off + 8, d.maxIoBufBytes ?? 0, true);
  v.setUint32(off + 12, (d.devId ?? -1) >>> 0, true);
  v.setInt32(off + 16, d.ublksrvPid ?? -1, true);
  setU64(v, off + 24, d.flags ?? 0);
  v.setBigUint64(off + 32, d.ublksrvFlags ?? 0n, true);
}

export function decodeDevInfo(v: DataView, off: number): DevInfo {
  return {
    nrHwQueues: v.getUint16(off + 0, true),
    queueDepth: v.getUint16(off + 2, true),
    state: v.getUint16(off + 4, true),
    ioDescSize: v.getUint16(off + 6, true),
    maxIoBufBytes: v.getUint32(off + 8, true),
    devId: v.getUint32(off + 12, true),
    ublksrvPid: v.getInt32(off + 16, true),
    flags: getU64(v, off + 24),
    ublksrvFlags: v.getBigUint64(off + 32, true),
    ownerUid: v.getUint32(off + 40, true),
    ownerGid: v.getUint32(off + 44, true),
  };
}

export interface ParamBasic {
  attrs: number;
  logicalBsShift: number;
  physicalBsShift: number;
  ioOptShift: number;
  ioMinShift: number;
  maxSectors: number;
  chunkSectors: number;
  devSectors: number;
  virtBoundaryMask: number;
}
export interface ParamDiscard {
  discardAlignment: number;
  discardGranularity: number;
  maxDiscardSectors: number;
  maxWriteZeroesSectors: number;
  maxDiscardSegments: number;
}
export interface ParamDevt { charMajor: number; charMinor: number; diskMajor: number; diskMinor: number }
export interface ParamZoned { maxOpenZones: number; maxActiveZones: number; maxZoneAppendSectors: number }
export interface ParamDma { alignment: number }
export interface ParamSegment { segBoundaryMask: number; maxSegmentSize: number; maxSegments: number }
export interface ParamIntegrity {
  flags: number;
  maxIntegritySegments: number;
  intervalExp: number;
  metadataSize: number;
  piOffset: number;
  csumType: number;
  tagSize: number;
}

/** struct ublk_params; a sub-struct is present exactly when its `types` bit is set. */
export interface Params {
  basic: ParamBasic;
  discard?: ParamDiscard;
  devt?: ParamDevt;
  zoned?: ParamZoned;
  dma?: ParamDma;
  seg?: ParamSegment;
  integrity?: ParamIntegrity;
}

/**
 * Writes struct ublk_params. `explicit`, when given, is sent as is (set_params probes the kernel's
 * checks with missing types); otherwise it says which sub-structs `p` has.
 */
export function encodeParams(v: DataView, off: number, p: Params, explicit?: number): void {
  for (let i = 0; i < U.SIZEOF_UBLK_PARAMS; i++) v.setUint8(off + i, 0);
  let types = U.UBLK_PARAM_TYPE_BASIC;
  const b = p.basic;
  v.setUint32(off + 8, b.attrs, true);
  v.setUint8(off + 12, b.logicalBsShift);
  v.setUint8(off + 13, b.physicalBsShift);
  v.setUint8(off + 14, b.ioOptShift);
  v.setUint8(off + 15, b.ioMinShift);
  v.setUint32(off + 16, b.maxSectors, true);
  v.setUint32(off + 20, b.chunkSectors, true);
  setU64(v, off + 24, b.devSectors);
  setU64(v, off + 32, b.virtBoundaryMask);
  if (p.discard) {
    types |= U.UBLK_PARAM_TYPE_DISCARD;
    const d = p.discard;
    v.setUint32(off + 40, d.discardAlignment, true);
    v.setUint32(off + 44, d.discardGranularity, true);
    v.setUint32(off + 48, d.maxDiscardSectors, true);
    v.setUint32(off + 52, d.maxWriteZeroesSectors, true);
    v.setUint16(off + 56, d.maxDiscardSegments, true);
  }
  if (p.zoned) {
    types |= U.UBLK_PARAM_TYPE_ZONED;
    v.setUint32(off + 76, p.zoned.maxOpenZones, true);
    v.setUint32(off + 80, p.zoned.maxActiveZones, true);
    v.setUint32(off + 84, p.zoned.maxZoneAppendSectors, true);
  }
  if (p.dma) {
    types |= U.UBLK_PARAM_TYPE_DMA_ALIGN;
    v.setUint32(off + 108, p.dma.alignment, true);
  }
  if (p.seg) {
    types |= U.UBLK_PARAM_TYPE_SEGMENT;
    setU64(v, off + 120, p.seg.segBoundaryMask);
    v.setUint32(off + 128, p.seg.maxSegmentSize, true);
    v.setUint16(off + 132, p.seg.maxSegments, true);
  }
  if (p.integrity) {
    types |= U.UBLK_PARAM_TYPE_INTEGRITY;
    const i = p.integrity;
    v.setUint32(off + 136, i.flags, true);
    v.setUint16(off + 140, i.maxIntegritySegments, true);
    v.setUint8(off + 142, i.intervalExp);
    v.setUint8(off + 143, i.metadataSize);
    v.setUint8(off + 144, i.piOffset);
    v.setUint8(off + 145, i.csumType);
    v.setUint8(off + 146, i.tagSize);
  }
  v.setUint32(off + 0, U.SIZEOF_UBLK_PARAMS, true);
  v.setUint32(off + 4, explicit ?? types, true);
}

/** A GET_PARAMS buffer: the kernel fills as much of struct ublk_params as `len` says we have room for. */
export function encodeParamsLen(v: DataView, off: number): void {
  v.setUint32(off + 0, U.SIZEOF_UBLK_PARAMS, true);
}

export function decodeParams(v: DataView, off: number): Params {
  const types = v.getUint32(off + 4, true);
  const p: Params = {
    basic: {
      attrs: v.getUint32(off + 8, true),
      logicalBsShift: v.getUint8(off + 12),
      physicalBsShift: v.getUint8(off + 13),
      ioOptShift: v.getUint8(off + 14),
      ioMinShift: v.getUint8(off + 15),
      maxSectors: v.getUint32(off + 16, true),
      chunkSectors: v.getUint32(off + 20, true),
      devSectors: getU64(v, off + 24),
      virtBoundaryMask: getU64(v, off + 32),
    },
  };
  if (types & U.UBLK_PARAM_TYPE_DISCARD) {
    p.discard = {
      discardAlignment: v.getUint32(off + 40, true),
      discardGranularity: v.getUint32(off + 44, true),
      maxDiscardSectors: v.getUint32(off + 48, true),
      maxWriteZeroesSectors: v.getUint32(off + 52, true),
      maxDiscardSegments: v.getUint16(off + 56, true),
    };
  }
  if (types & U.UBLK_PARAM_TYPE_DEVT) {
    p.devt = {
      charMajor: v.getUint32(off + 60, true),
      charMinor: v.getUint32(off + 64, true),
      diskMajor: v.getUint32(off + 68, true),
      diskMinor: v.getUint32(off + 72, true),
    };
  }
  if (types & U.UBLK_PARAM_TYPE_ZONED) {
    p.zoned = {
      maxOpenZones: v.getUint32(off + 76, true),
      maxActiveZones: v.getUint32(off + 80, true),
      maxZoneAppendSectors: v.getUint32(off + 84, true),
    };
  }
  if (types & U.UBLK_PARAM_TYPE_DMA_ALIGN) p.dma = { alignment: v.getUint32(off + 108, true) };
  if (types & U.UBLK_PARAM_TYPE_SEGMENT) {
    p.seg = {
      segBoundaryMask: getU64(v, off + 120),
      maxSegmentSize: v.getUint32(off + 128, true),
      maxSegments: v.getUint16(off + 132, true),
    };
  }
  if (types & U.UBLK_PARAM_TYPE_INTEGRITY) {
    p.integrity = {
      flags: v.getUint32(off + 136, true),
      maxIntegritySegments: v.getUint16(off + 140, true),
      intervalExp: v.getUint8(off + 142),
      metadataSize: v.getUint8(off + 143),
      piOffset: v.getUint8(off + 144),
      csumType: v.getUint8(off + 145),
      tagSize: v.getUint8(off + 146),
    };
  }
  return p;
}

/** Byte offset on /dev/ublkcN addressing a request's data for user copy (pread/pwrite). */
export function userCopyOffset(qid: number, tag: number, byteOffset: number, integrity = false): bigint {
  let pos = BigInt(U.UBLKSRV_IO_BUF_OFFSET) + (BigInt(qid) << BigInt(U.UBLK_QID_OFF)) +
    (BigInt(tag) << BigInt(U.UBLK_TAG_OFF)) + BigInt(byteOffset);
  if (integrity) pos |= 1n << BigInt(U.UBLK_INTEGRITY_FLAG_OFF);
  return pos;
}

/**
 * Offset of queue `qid`'s descriptor array in the ublkc mmap space: each queue owns room for the
 * deepest queue at the negotiated slot size, page aligned.
 */
export function descMmapOffset(qid: number, pageSize = 4096, descSize: number = U.SIZEOF_UBLKSRV_IO_DESC): number {
  const stride = roundUp(U.UBLK_MAX_QUEUE_DEPTH * descSize, pageSize);
  return U.UBLKSRV_CMD_BUF_OFFSET + qid * stride;
}

/** The descriptor slot size in force for a device: negotiated, or the struct's own 24 bytes. */
export function ioDescSizeOf(info: Pick<DevInfo, 'flags' | 'ioDescSize'>): number {
  return info.flags & U.UBLK_F_IO_DESC_SIZE && info.ioDescSize ? info.ioDescSize : U.SIZEOF_UBLKSRV_IO_DESC;
}

/** Why a descriptor slot size cannot be negotiated (the kernel's ADD_DEV rules), or undefined. */
export function ioDescSizeProblem(n: number): string | undefined {
  const min = U.SIZEOF_UBLKSRV_IO_DESC;
  if (!Number.isInteger(n) || n < min || n > U.UBLK_MAX_IO_DESC_SIZE || n % 8) {
    return `must be a multiple of 8 from ${min} to ${U.UBLK_MAX_IO_DESC_SIZE}`;
  }
  return undefined;
}

export function roundUp(n: number, align: number): number {
  return Math.ceil(n / align) * align;
}

/** struct ublk_shmem_buf_reg (24 bytes): the REG_BUF payload. */
export const SHMEM_BUF_REG = { addr: 0, len: 8, flags: 16, size: 24 } as const;

export function encodeShmemBufReg(v: DataView, off: number, addr: number, len: number, flags: number): void {
  setU64(v, off + SHMEM_BUF_REG.addr, addr);
  setU64(v, off + SHMEM_BUF_REG.len, len);
  v.setUint32(off + SHMEM_BUF_REG.flags, flags, true);
  v.setUint32(off + SHMEM_BUF_REG.flags + 4, 0, true);
}
