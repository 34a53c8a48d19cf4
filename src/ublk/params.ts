// Builds ublk_params from what a target declares, with the kernel's validation rules checked first.
import * as U from '../uapi/ublk.js';
import type { Params } from '../uapi/structs.js';
import type { Target } from '../target/types.js';
import { UblkError } from '../errors.js';

/** Largest discard / write-zeroes request we advertise (sectors): 1 GiB keeps one request bounded. */
const MAX_DISCARD_SECTORS = (1 << 30) >> 9;

export function buildParams(t: Target, maxIoBufBytes: number): Params {
  const l = t.limits ?? {};
  const caps = t.caps ?? {};
  const lbs = l.logicalBlockShift ?? 9;
  const pbs = Math.max(lbs, l.physicalBlockShift ?? 12);
  if (lbs < 9 || lbs > 12) throw new UblkError('EINVAL', `logical block size 2^${lbs} is outside 512..4096`);
  const bs = 1 << lbs;
  if (!Number.isSafeInteger(t.size) || t.size <= 0) throw new UblkError('EINVAL', `device size ${t.size} must be a positive number of bytes`);
  if (t.size % bs !== 0) throw new UblkError('EINVAL', `device size ${t.size} is not a multiple of the ${bs}-byte block size`);
  const maxIo = Math.min(l.maxIoBytes ?? maxIoBufBytes, maxIoBufBytes);
  let attrs = 0;
  if (caps.flush) attrs |= U.UBLK_ATTR_VOLATILE_CACHE;
  if (caps.flush && caps.fua) attrs |= U.UBLK_ATTR_FUA;
  if (caps.readOnly) attrs |= U.UBLK_ATTR_READ_ONLY;
  if (caps.rotational) attrs |= U.UBLK_ATTR_ROTATIONAL;
  const p: Params = {
    basic: {
      attrs,
      logicalBsShift: lbs,
      physicalBsShift: pbs,
      ioOptShift: Math.max(pbs, l.ioOptShift ?? pbs),
      ioMinShift: Math.max(lbs, l.ioMinShift ?? lbs),
      maxSectors: Math.max(8, maxIo >> 9),
      chunkSectors: 0,
      devSectors: t.size / 512,
      virtBoundaryMask: 0,
    },
  };
  if (caps.discard || caps.writeZeroes) {
    p.discard = {
      discardAlignment: 0,
      discardGranularity: l.discardGranularity ?? bs,
      maxDiscardSectors: caps.discard ? MAX_DISCARD_SECTORS : 0,
      maxWriteZeroesSectors: caps.writeZeroes ? MAX_DISCARD_SECTORS : 0,
      maxDiscardSegments: 1,
    };
  }
  if (l.dmaAlignment !== undefined) {
    const a = l.dmaAlignment;
    if (a >= 4096 || ((a + 1) & a) !== 0) throw new UblkError('EINVAL', `dma alignment mask ${a} must be 2^n-1 below 4096`);
    p.dma = { alignment: a };
  }
  if (l.segment) {
    const sg = l.segment;
    if (sg.segBoundaryMask + 1 < U.UBLK_MIN_SEGMENT_SIZE || sg.maxSegmentSize < U.UBLK_MIN_SEGMENT_SIZE || sg.maxSegments < 1) {
      throw new UblkError('EINVAL', 'segment limits must be at least 4096 bytes and one segment');
    }
    p.seg = { ...sg };
  }
  if (t.integrity) {
    const i = t.integrity;
    p.integrity = {
      flags: i.flags ?? 0, maxIntegritySegments: 0, intervalExp: lbs, metadataSize: i.metadataSize,
      piOffset: i.piOffset ?? 0, csumType: i.csumType ?? 0, tagSize: i.tagSize ?? 0,
    };
  }
  if (l.zoned) p.zoned = zonedParams(t, p);
  return p;
}

const ZONE_METHODS = ['reportZones', 'zoneOpen', 'zoneClose', 'zoneFinish', 'zoneReset', 'zoneResetAll', 'zoneAppend'] as const;

/**
 * The zoned params, with the kernel's SET_PARAMS rules checked here first: the zone size becomes
 * chunk_sectors (a power of two), the device is whole zones, the append limit is non-zero and the
 * open / active limits are at most the number of zones.
 */
function zonedParams(t: Target, p: Params): NonNullable<Params['zoned']> {
  const z = t.limits!.zoned!;
  const zs = z.zoneSectors;
  for (const m of ZONE_METHODS) if (typeof t[m] !== 'function') throw new UblkError('EINVAL', `a zoned target must implement ${m}()`);
  if (!Number.isInteger(zs) || zs < 8 || (zs & (zs - 1)) !== 0 || zs > 2 ** 31) {
    throw new UblkError('EINVAL', `zone size of ${zs} sectors must be a power of two of at least 8 sectors`);
  }
  if (zs % (1 << (p.basic.logicalBsShift - 9))) throw new UblkError('EINVAL', 'zone size must be a multiple of the logical block size');
  if (p.basic.devSectors % zs) throw new UblkError('EINVAL', `device size ${t.size} is not a whole number of ${zs * 512}-byte zones`);
  const nr = p.basic.devSectors / zs;
  const lim = (v: number | undefined, what: string): number => {
    const n = v ?? 0;
    if (!Number.isInteger(n) || n < 0 || n > nr) throw new UblkError('EINVAL', `${what} ${n} must be 0 (no limit) .. the ${nr} zones`);
    return n;
  };
  const append = z.maxZoneAppendSectors ?? Math.min(zs, p.basic.maxSectors);
  if (!Number.isInteger(append) || append < 1 || append > p.basic.maxSectors) {
    throw new UblkError('EINVAL', `max zone append of ${append} sectors must be 1..${p.basic.maxSectors}`);
  }
  p.basic.chunkSectors = zs;
  return { maxOpenZones: lim(z.maxOpen, 'max open zones'), maxActiveZones: lim(z.maxActive, 'max active zones'), maxZoneAppendSectors: append };
}

/**
 * UBLK_F_ZONED for a zoned target, or 0. The kernel takes zoned devices only with user copy or
 * zero copy; this engine serves them in user copy, per-IO commands (a zone append's LBA rides in
 * the COMMIT's addr).
 */
export function zonedFlag(t: Target, mode: string, features: number, flags: number): number {
  if (!t.limits?.zoned) return 0;
  if (!(features & U.UBLK_F_ZONED)) throw new UblkError('ENOTSUP', 'this kernel\'s ublk has no zoned support (UBLK_F_ZONED: Linux 6.6+ with CONFIG_BLK_DEV_ZONED)');
  if (mode !== 'user-copy') throw new UblkError('EINVAL', `a zoned device needs user copy mode (-u), not '${mode}'`);
  if (flags & U.UBLK_F_BATCH_IO) throw new UblkError('EINVAL', 'a zoned device cannot use batch IO (-b)');
  return U.UBLK_F_ZONED;
}
