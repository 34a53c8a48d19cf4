// loop: a file (or block device) as the disk; O_DIRECT where the file system allows, io_uring IO,
// FLUSH as fdatasync of the data and the integrity file, discard as punch-hole, write-zeroes as
// zero-range (with fallbacks, see space.ts); pass-through for zero copy.
import * as fs from 'node:fs';
import type { Extent, Target, TargetContext } from '../../target/types.js';
import type { FileIo } from '../../uring/file-io.js';
import { UblkError } from '../../errors.js';
import { identityOf, openBacking } from '../backing.js';
import { probe, type Geometry } from './geometry.js';
import { openMeta, prepareMeta, type MetaSpec } from './integrity.js';
import { FileSpace } from './space.js';

export interface LoopConfig {
  file: string;
  /** Open without O_DIRECT (page cache); default tries O_DIRECT first. */
  buffered?: boolean;
  readOnly?: boolean;
  /** Integrity: a second file holding `metadataSize` bytes per logical block (protection interval). */
  metaFile?: string;
  metadataSize?: number;
  piOffset?: number;
  csumType?: number;
  tagSize?: number;
  integrityFlags?: number;
  /**
   * May prepare() initialise an integrity file that holds nothing yet (0xff tuples: unwritten
   * blocks carry no PI)? Default true; false for recovery. A file in use is never overwritten.
   */
  initMeta?: boolean;
  /** Identities (dev:ino) recorded by prepare(); every later open must find the same files. */
  fileId?: string;
  metaFileId?: string;
}

const EIO = -5;

function metaSpec(config: LoopConfig, g: Geometry, capacity: number): MetaSpec {
  return {
    file: config.metaFile!, metadataSize: config.metadataSize!, interval: 1 << (g.limits.logicalBlockShift ?? 9),
    capacity, dataFile: config.file, dataSize: g.size, readOnly: config.readOnly,
  };
}

function capacityOf(g: Geometry): number {
  return g.size - (g.size % (1 << (g.limits.logicalBlockShift ?? 9)));
}

export function prepare(config: LoopConfig): LoopConfig {
  if (!config || typeof config.file !== 'string' || !config.file) throw new UblkError('EINVAL', 'loop target needs a backing file');
  if (config.metaFile && !(Number.isInteger(config.metadataSize) && config.metadataSize! > 0)) {
    throw new UblkError('EINVAL', 'loop integrity file needs a positive metadataSize');
  }
  // The data file is checked first: nothing is written anywhere before both files are known good.
  const { fd, direct } = openBacking(config.file, { readOnly: config.readOnly, buffered: config.buffered, want: config.fileId });
  try {
    const g = probe(fd, config.file, direct);
    const bs = 1 << (g.limits.logicalBlockShift ?? 9);
    if (g.size === 0) throw new UblkError('EINVAL', `backing file ${config.file} is empty: give it a size (truncate -s 1G ${config.file})`);
    if (g.size % bs !== 0) throw new UblkError('EINVAL', `backing file ${config.file} size ${g.size} is not a multiple of the ${bs}-byte block size`);
    const fileId = identityOf(fd);
    const metaFileId = config.metaFile ? prepareMeta(metaSpec(config, g, capacityOf(g)), fileId, config.initMeta !== false) : undefined;
    return { ...config, fileId, metaFileId };
  } finally {
    fs.closeSync(fd);
  }
}

export function create(config: LoopConfig): Target {
  const { fd, direct } = openBacking(config.file, { readOnly: config.readOnly, buffered: config.buffered, want: config.fileId });
  let metaFd = -1;
  try {
    const g = probe(fd, config.file, direct);
    const capacity = capacityOf(g);
    const spec = config.metaFile ? metaSpec(config, g, capacity) : undefined;
    if (spec) metaFd = openMeta(spec, config.metaFileId);
    return loopTarget(config, fd, metaFd, g, capacity, spec);
  } catch (err) {
    fs.closeSync(fd);
    if (metaFd >= 0) fs.closeSync(metaFd);
    throw err;
  }
}

function loopTarget(config: LoopConfig, fd: number, metaFd: number, g: Geometry, capacity: number, spec: MetaSpec | undefined): Target {
  let io: FileIo | undefined;
  const ioOf = (): FileIo => io ?? (() => { throw new UblkError('EIO', 'loop target used before open()'); })();
  const space = new FileSpace(ioOf, fd);
  const ok = (r: number) => (r < 0 ? r : 0);
  const full = (n: number, want: number) => (n === want ? 0 : n < 0 ? n : EIO);
  // One tuple per protection interval, which the kernel sets to the logical block size.
  const metaOff = (off: number) => Math.floor(off / spec!.interval) * spec!.metadataSize;
  const integrity = spec
    ? { metadataSize: spec.metadataSize, piOffset: config.piOffset, csumType: config.csumType, tagSize: config.tagSize, flags: config.integrityFlags }
    : undefined;
  return {
    // openMeta() made sure the integrity file covers all of it.
    size: capacity,
    integrity,
    readIntegrity: spec ? (buf, off) => ioOf().read(metaFd, buf, metaOff(off)).then((n) => full(n, buf.byteLength)) : undefined,
    writeIntegrity: spec ? (buf, off) => ioOf().write(metaFd, buf, metaOff(off)).then((n) => full(n, buf.byteLength)) : undefined,
    caps: { flush: true, discard: !g.blockDev, writeZeroes: !g.blockDev, readOnly: config.readOnly },
    limits: g.limits,
    open(ctx: TargetContext) {
      io = ctx.io;
    },
    read: (buf, off) => ioOf().read(fd, buf, off),
    write: (buf, off) => ioOf().write(fd, buf, off),
    // A FLUSH covers the metadata too: PI acknowledged with the data must survive with it.
    flush: () => Promise.all(metaFd >= 0 ? [ioOf().fsync(fd, true), ioOf().fsync(metaFd, true)] : [ioOf().fsync(fd, true)])
      .then((r) => ok(Math.min(...r))),
    discard: (off, len) => space.discard(off, len),
    writeZeroes: (off, len, noUnmap) => space.writeZeroes(off, len, noUnmap),
    route: (offset, length): Extent[] => [{ fd, offset, length, bufOffset: 0 }],
    close() {
      fs.closeSync(fd);
      if (metaFd >= 0) fs.closeSync(metaFd);
    },
  };
}
