// Geometry of a loop target's backing store: a block device's queue limits, or a file's size and
// O_DIRECT alignment. Everything is read through the open fd, never the path again.
import * as fs from 'node:fs';
import { native } from '../../native.js';
import type { TargetLimits } from '../../target/types.js';
import { UblkError } from '../../errors.js';

const BLKGETSIZE64 = 0x80081272;
const BLKSSZGET = 0x1268;
const BLKPBSZGET = 0x127b;

export interface Geometry {
  size: number;
  limits: TargetLimits;
  blockDev: boolean;
}

export function probe(fd: number, file: string, direct: boolean): Geometry {
  const st = fs.fstatSync(fd);
  const n = native();
  if (st.isBlockDevice()) {
    const lbs = n.ioctlInt(fd, BLKSSZGET);
    const pbs = n.ioctlInt(fd, BLKPBSZGET);
    const size = Number(n.ioctl64(fd, BLKGETSIZE64));
    const q = (attr: string) => readSysfsInt(st.rdev, attr);
    const dma = q('dma_alignment') ?? lbs - 1;
    const limits: TargetLimits = { logicalBlockShift: Math.log2(lbs), physicalBlockShift: Math.log2(pbs), dmaAlignment: Math.min(dma, 4095) };
    // The backing queue's limits, so the kernel never builds a request the backend must split.
    const ioMin = q('minimum_io_size');
    const ioOpt = q('optimal_io_size');
    if (ioMin && (ioMin & (ioMin - 1)) === 0) limits.ioMinShift = Math.log2(ioMin);
    if (ioOpt && (ioOpt & (ioOpt - 1)) === 0) limits.ioOptShift = Math.log2(ioOpt);
    const maxKb = q('max_sectors_kb');
    if (maxKb) limits.maxIoBytes = maxKb * 1024;
    const segs = q('max_segments');
    const segSize = q('max_segment_size');
    const boundary = q('virt_boundary_mask') ?? 0;
    if (segs && segSize && segSize >= 4096 && !boundary) {
      limits.segment = { segBoundaryMask: 0xffffffff, maxSegmentSize: Math.min(segSize, 0xffffffff), maxSegments: Math.min(segs, 0xffff) };
    }
    return { size, blockDev: true, limits };
  }
  if (!st.isFile()) throw new UblkError('EINVAL', `backing file ${file} is neither a regular file nor a block device`);
  let lbs = 512;
  let dma = 511;
  if (direct) {
    try {
      // Through the fd's /proc link: the path itself may name another file by now.
      const d = n.statxDio(`/proc/self/fd/${fd}`);
      if (d.offsetAlign) lbs = Math.max(512, d.offsetAlign);
      if (d.memAlign) dma = Math.max(d.memAlign - 1, 0);
    } catch { /* statx without DIO info: keep 512 */ }
  }
  const shift = Math.min(12, Math.log2(lbs));
  return { size: st.size, blockDev: false, limits: { logicalBlockShift: shift, physicalBlockShift: Math.max(shift, 12), dmaAlignment: Math.min(dma, 4095) } };
}

function readSysfsInt(rdev: number, attr: string): number | undefined {
  try {
    const major = Math.floor(rdev / 256) & 0xfff;
    const minor = (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
    return Number(fs.readFileSync(`/sys/dev/block/${major}:${minor}/queue/${attr}`, 'utf8').trim());
  } catch {
    return undefined;
  }
}
