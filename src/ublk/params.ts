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
  return p;
}
