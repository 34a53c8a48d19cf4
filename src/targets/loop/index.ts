// loop: a file (or block device) as the disk; O_DIRECT where the file system allows, io_uring IO,
// FLUSH as fdatasync, discard as punch-hole, write-zeroes as zero-range; pass-through for zero copy.
import * as fs from 'node:fs';
import { native } from '../../native.js';
import type { Extent, Target, TargetContext, TargetLimits } from '../../target/types.js';
import type { FileIo } from '../../uring/file-io.js';
import * as IO from '../../uapi/io-uring.js';
import { UblkError } from '../../errors.js';

export interface LoopConfig {
  file: string;
  /** Open without O_DIRECT (page cache); default tries O_DIRECT first. */
  buffered?: boolean;
  readOnly?: boolean;
  /** Integrity: a second file holding `metadataSize` bytes per 512-byte block. */
  metaFile?: string;
  metadataSize?: number;
  piOffset?: number;
  csumType?: number;
  tagSize?: number;
  integrityFlags?: number;
  /** Fill the metadata file with 0xff first (unwritten blocks then carry no PI); not on recovery. */
  initMeta?: boolean;
}

const BLKGETSIZE64 = 0x80081272;
const BLKSSZGET = 0x1268;
const BLKPBSZGET = 0x127b;

function openBacking(file: string, cfg: LoopConfig): { fd: number; direct: boolean } {
  const base = cfg.readOnly ? fs.constants.O_RDONLY : fs.constants.O_RDWR;
  if (!cfg.buffered) {
    try {
      return { fd: fs.openSync(file, base | fs.constants.O_DIRECT), direct: true };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw describe(err, file);
    }
  }
  try {
    return { fd: fs.openSync(file, base), direct: false };
  } catch (err) {
    throw describe(err, file);
  }
}

function describe(err: unknown, file: string): UblkError {
  const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
  const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' || code === 'EPERM' ? 'is not readable and writable by this user' : code === 'EISDIR' ? 'is a directory' : `cannot be opened (${code})`;
  return new UblkError(code, `backing file ${file} ${why}`);
}

/** Geometry from the backing store: block device queue limits, or the file's DIO alignment. */
function probe(fd: number, file: string, direct: boolean): { size: number; limits: TargetLimits; blockDev: boolean } {
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
    const boundary = readSysfsInt(st.rdev, 'virt_boundary_mask') ?? 0;
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
      const d = n.statxDio(file);
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

/** Opens the metadata file; with `init`, fills it with 0xff in 1 MiB pieces. */
function openMeta(cfg: LoopConfig, init: boolean): { fd: number; blocks: number } {
  let fd: number;
  try {
    fd = fs.openSync(cfg.metaFile!, fs.constants.O_RDWR);
  } catch (err) {
    throw describe(err, cfg.metaFile!);
  }
  const size = fs.fstatSync(fd).size;
  if (init) {
    const ff = Buffer.alloc(1 << 20, 0xff);
    for (let o = 0; o < size; o += ff.length) fs.writeSync(fd, ff, 0, Math.min(ff.length, size - o), o);
  }
  return { fd, blocks: Math.floor(size / cfg.metadataSize!) };
}

export function prepare(config: LoopConfig): LoopConfig {
  if (!config || typeof config.file !== 'string' || !config.file) throw new UblkError('EINVAL', 'loop target needs a backing file');
  if (config.metaFile) {
    const m = openMeta(config, config.initMeta !== false);
    fs.closeSync(m.fd);
    if (m.blocks === 0) throw new UblkError('EINVAL', `integrity file ${config.metaFile} is too small for ${config.metadataSize}-byte metadata`);
  }
  const { fd, direct } = openBacking(config.file, config);
  try {
    const { size, limits } = probe(fd, config.file, direct);
    const bs = 1 << (limits.logicalBlockShift ?? 9);
    if (size === 0) throw new UblkError('EINVAL', `backing file ${config.file} is empty: give it a size (truncate -s 1G ${config.file})`);
    if (size % bs !== 0) throw new UblkError('EINVAL', `backing file ${config.file} size ${size} is not a multiple of the ${bs}-byte block size`);
  } finally {
    fs.closeSync(fd);
  }
  return config;
}

export function create(config: LoopConfig): Target {
  const { fd, direct } = openBacking(config.file, config);
  const { size, limits, blockDev } = probe(fd, config.file, direct);
  let io: FileIo | undefined;
  const ioOf = (): FileIo => io ?? (() => { throw new UblkError('EIO', 'loop target used before open()'); })();
  const ok = (r: number) => (r < 0 ? r : 0);
  const meta = config.metaFile ? openMeta(config, false) : undefined;
  const md = config.metadataSize ?? 0;
  const full = (n: number, want: number) => (n === want ? 0 : n < 0 ? n : -5);
  let capacity = size - (size % (1 << (limits.logicalBlockShift ?? 9)));
  if (meta) capacity = Math.min(capacity, meta.blocks * 512);
  return {
    size: capacity,
    integrity: meta ? { metadataSize: md, piOffset: config.piOffset, csumType: config.csumType, tagSize: config.tagSize, flags: config.integrityFlags } : undefined,
    readIntegrity: meta ? (buf, off) => ioOf().read(meta.fd, buf, (off / 512) * md).then((n) => full(n, buf.byteLength)) : undefined,
    writeIntegrity: meta ? (buf, off) => ioOf().write(meta.fd, buf, (off / 512) * md).then((n) => full(n, buf.byteLength)) : undefined,
    caps: { flush: true, discard: !blockDev, writeZeroes: !blockDev, readOnly: config.readOnly },
    limits,
    open(ctx: TargetContext) {
      io = ctx.io;
    },
    read: (buf, off) => ioOf().read(fd, buf, off),
    write: (buf, off) => ioOf().write(fd, buf, off),
    flush: () => ioOf().fsync(fd, true).then(ok),
    discard: (off, len) => ioOf().fallocate(fd, IO.FALLOC_FL_PUNCH_HOLE | IO.FALLOC_FL_KEEP_SIZE, off, len).then(ok),
    writeZeroes: (off, len) => ioOf().fallocate(fd, IO.FALLOC_FL_ZERO_RANGE | IO.FALLOC_FL_KEEP_SIZE, off, len).then(ok),
    route: (offset, length): Extent[] => [{ fd, offset, length, bufOffset: 0 }],
    close() {
      fs.closeSync(fd);
      if (meta) fs.closeSync(meta.fd);
    },
  };
}
