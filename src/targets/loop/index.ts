// loop: a file (or block device) as the disk; O_DIRECT where the file system allows, io_uring IO,
// FLUSH as fdatasync, discard as punch-hole, write-zeroes as zero-range; pass-through for zero copy.
import * as fs from 'node:fs';
import type { Extent, Target, TargetContext } from '../../target/types.js';
import type { FileIo } from '../../uring/file-io.js';
import * as IO from '../../uapi/io-uring.js';
import { UblkError } from '../../errors.js';
import { checkIdentity, describeOpenError, identityOf, openBacking } from '../backing.js';
import { probe } from './geometry.js';

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
  /** Identities (dev:ino) recorded by prepare(); every later open must find the same files. */
  fileId?: string;
  metaFileId?: string;
}

/** Opens the metadata file; with `init`, fills it with 0xff in 1 MiB pieces. */
function openMeta(cfg: LoopConfig, init: boolean, want: string | undefined): { fd: number; blocks: number } {
  let fd: number;
  try {
    fd = fs.openSync(cfg.metaFile!, fs.constants.O_RDWR);
  } catch (err) {
    throw describeOpenError(err, cfg.metaFile!, 'integrity file');
  }
  checkIdentity(fd, cfg.metaFile!, want, 'integrity file');
  const size = fs.fstatSync(fd).size;
  if (init) {
    const ff = Buffer.alloc(1 << 20, 0xff);
    for (let o = 0; o < size; o += ff.length) fs.writeSync(fd, ff, 0, Math.min(ff.length, size - o), o);
  }
  return { fd, blocks: Math.floor(size / cfg.metadataSize!) };
}

export function prepare(config: LoopConfig): LoopConfig {
  if (!config || typeof config.file !== 'string' || !config.file) throw new UblkError('EINVAL', 'loop target needs a backing file');
  let metaFileId: string | undefined;
  if (config.metaFile) {
    const m = openMeta(config, config.initMeta !== false, config.metaFileId);
    metaFileId = identityOf(m.fd);
    fs.closeSync(m.fd);
    if (m.blocks === 0) throw new UblkError('EINVAL', `integrity file ${config.metaFile} is too small for ${config.metadataSize}-byte metadata`);
  }
  const { fd, direct } = openBacking(config.file, { readOnly: config.readOnly, buffered: config.buffered, want: config.fileId });
  try {
    const { size, limits } = probe(fd, config.file, direct);
    const bs = 1 << (limits.logicalBlockShift ?? 9);
    if (size === 0) throw new UblkError('EINVAL', `backing file ${config.file} is empty: give it a size (truncate -s 1G ${config.file})`);
    if (size % bs !== 0) throw new UblkError('EINVAL', `backing file ${config.file} size ${size} is not a multiple of the ${bs}-byte block size`);
    return { ...config, fileId: identityOf(fd), metaFileId };
  } finally {
    fs.closeSync(fd);
  }
}

export function create(config: LoopConfig): Target {
  const { fd, direct } = openBacking(config.file, { readOnly: config.readOnly, buffered: config.buffered, want: config.fileId });
  const { size, limits, blockDev } = probe(fd, config.file, direct);
  let io: FileIo | undefined;
  const ioOf = (): FileIo => io ?? (() => { throw new UblkError('EIO', 'loop target used before open()'); })();
  const ok = (r: number) => (r < 0 ? r : 0);
  const meta = config.metaFile ? openMeta(config, false, config.metaFileId) : undefined;
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
