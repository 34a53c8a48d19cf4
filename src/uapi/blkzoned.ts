// struct blk_zone (64 bytes, one per zone in a REPORT_ZONES reply) and its type and condition codes.
import { getU64, setU64 } from './u64.js';

export const BLK_ZONE_TYPE_CONVENTIONAL = 1;
export const BLK_ZONE_TYPE_SEQWRITE_REQ = 2;
export const BLK_ZONE_TYPE_SEQWRITE_PREF = 3;

export const BLK_ZONE_COND_NOT_WP = 0;
export const BLK_ZONE_COND_EMPTY = 1;
export const BLK_ZONE_COND_IMP_OPEN = 2;
export const BLK_ZONE_COND_EXP_OPEN = 3;
export const BLK_ZONE_COND_CLOSED = 4;
export const BLK_ZONE_COND_READONLY = 0xd;
export const BLK_ZONE_COND_FULL = 0xe;
export const BLK_ZONE_COND_OFFLINE = 0xf;

/** Byte offsets of its fields; start, len, wp and capacity are in 512-byte sectors. */
export const BLK_ZONE = { start: 0, len: 8, wp: 16, type: 24, cond: 25, non_seq: 26, reset: 27, capacity: 32, size: 64 } as const;

export interface BlkZone {
  start: number;
  len: number;
  wp: number;
  type: number;
  cond: number;
  capacity: number;
}

/** Writes one record at `off`, reserved bytes zeroed. */
export function encodeBlkZone(v: DataView, off: number, z: BlkZone): void {
  for (let i = 0; i < BLK_ZONE.size; i += 4) v.setUint32(off + i, 0, true);
  setU64(v, off + BLK_ZONE.start, z.start);
  setU64(v, off + BLK_ZONE.len, z.len);
  setU64(v, off + BLK_ZONE.wp, z.wp);
  v.setUint8(off + BLK_ZONE.type, z.type);
  v.setUint8(off + BLK_ZONE.cond, z.cond);
  setU64(v, off + BLK_ZONE.capacity, z.capacity);
}

export function decodeBlkZone(v: DataView, off: number): BlkZone {
  return {
    start: getU64(v, off + BLK_ZONE.start),
    len: getU64(v, off + BLK_ZONE.len),
    wp: getU64(v, off + BLK_ZONE.wp),
    type: v.getUint8(off + BLK_ZONE.type),
    cond: v.getUint8(off + BLK_ZONE.cond),
    capacity: getU64(v, off + BLK_ZONE.capacity),
  };
}

/**
 * The errno the block layer maps BLK_STS_ZONE_OPEN_RESOURCE from and to: ETOOMANYREFS
 * (asm-generic 109), which Node's errno table lacks. ZONE_ACTIVE_RESOURCE is EOVERFLOW.
 */
export const ETOOMANYREFS = 109;
