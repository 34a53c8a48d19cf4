// stripe: RAID-0 over 1..4 equal files in --chunk_size pieces; O_DIRECT; pass-through for zero copy.
import * as fs from 'node:fs';
import type { Extent, Target, TargetContext } from '../../target/types.js';
import type { FileIo } from '../../uring/file-io.js';
import { UblkError } from '../../errors.js';
import { identityOf, openBacking } from '../backing.js';

export interface StripeConfig {
  files: string[];
  chunkSize?: number;
  /** Identities (dev:ino) recorded by prepare(), one per file; every later open must match. */
  fileIds?: string[];
}

const EIO = -5;

function check(cfg: StripeConfig): { chunk: number; files: string[] } {
  const chunk = cfg.chunkSize ?? 65536;
  if (!Number.isInteger(chunk) || chunk < 4096 || chunk > 512 * 1024 || (chunk & (chunk - 1)) !== 0) {
    throw new UblkError('EINVAL', `--chunk_size ${chunk}: must be a power of 2 from 4096 to 524288`);
  }
  if (!cfg.files || cfg.files.length < 1 || cfg.files.length > 4) throw new UblkError('EINVAL', `stripe needs 1 to 4 backing files, got ${cfg.files?.length ?? 0}`);
  return { chunk, files: cfg.files };
}

/** Opens every file (each checked against its recorded identity); all or none stay open. */
function openAll(files: string[], ids: string[] | undefined): number[] {
  const fds: number[] = [];
  try {
    files.forEach((f, i) => fds.push(openBacking(f, { want: ids?.[i] }).fd));
    return fds;
  } catch (err) {
    for (const fd of fds) fs.closeSync(fd);
    throw err;
  }
}

export function prepare(config: StripeConfig): StripeConfig {
  const { chunk, files } = check(config);
  const fds = openAll(files, config.fileIds);
  try {
    const ids = fds.map(identityOf);
    const dup = ids.findIndex((id, i) => ids.indexOf(id) !== i);
    if (dup >= 0) throw new UblkError('EINVAL', `stripe backing file ${files[dup]} is given twice`);
    const sizes = fds.map((fd) => fs.fstatSync(fd).size);
    const per = Math.min(...sizes) - (Math.min(...sizes) % chunk);
    if (per <= 0) throw new UblkError('EINVAL', `stripe backing files must each hold at least one ${chunk}-byte chunk`);
    return { files, chunkSize: chunk, fileIds: ids };
  } finally {
    for (const fd of fds) fs.closeSync(fd);
  }
}

export function create(config: StripeConfig): Target {
  const { chunk, files } = check(config);
  const fds = openAll(files, config.fileIds);
  const per = Math.min(...fds.map((fd) => fs.fstatSync(fd).size));
  const perFile = per - (per % chunk);
  const n = fds.length;
  let io: FileIo | undefined;

  /** Splits [offset, offset+length) into per-chunk extents on the member files. */
  const route = (offset: number, length: number): Extent[] => {
    const out: Extent[] = [];
    let done = 0;
    while (done < length) {
      const off = offset + done;
      const c = Math.floor(off / chunk);
      const within = off % chunk;
      const len = Math.min(chunk - within, length - done);
      const prev = out[out.length - 1];
      const fd = fds[c % n];
      const fileOff = Math.floor(c / n) * chunk + within;
      // With one file (or contiguous pieces) merge into one extent.
      if (prev && prev.fd === fd && prev.offset + prev.length === fileOff) prev.length += len;
      else out.push({ fd, offset: fileOff, length: len, bufOffset: done });
      done += len;
    }
    return out;
  };

  const rw = async (buf: Uint8Array, offset: number, write: boolean): Promise<number> => {
    const parts = route(offset, buf.byteLength);
    const res = await Promise.all(parts.map((e) => {
      const view = buf.subarray(e.bufOffset, e.bufOffset + e.length);
      return write ? io!.write(e.fd, view, e.offset) : io!.read(e.fd, view, e.offset);
    }));
    // A short piece in the middle of a stripe cannot be reported as a prefix: fail the request.
    for (let i = 0; i < res.length; i++) if (res[i] !== parts[i].length) return res[i] < 0 ? res[i] : EIO;
    return buf.byteLength;
  };

  return {
    size: perFile * n,
    caps: { flush: true },
    limits: { logicalBlockShift: 9, physicalBlockShift: 12, ioMinShift: 9, ioOptShift: 12 },
    open(ctx: TargetContext) {
      io = ctx.io;
    },
    read: (buf, off) => rw(buf, off, false),
    write: (buf, off) => rw(buf, off, true),
    async flush() {
      const r = await Promise.all(fds.map((fd) => io!.fsync(fd, true)));
      const bad = r.find((x) => x < 0);
      return bad ?? 0;
    },
    route,
    close() {
      for (const fd of fds) fs.closeSync(fd);
    },
  };
}
