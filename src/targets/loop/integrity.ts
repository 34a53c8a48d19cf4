// The loop target's integrity file: one tuple of `metadataSize` bytes per protection interval (the
// device's logical block, as the kernel sets it), at (offset / interval) * metadataSize. Checked
// against the data before anything is written, and never overwritten once it holds metadata.
import * as fs from 'node:fs';
import { UblkError } from '../../errors.js';
import { checkIdentity, describeOpenError, identityOf } from '../backing.js';

export interface MetaSpec {
  file: string;
  metadataSize: number;
  /** Protection interval in bytes: the logical block size. */
  interval: number;
  /** Data capacity in bytes (a multiple of `interval`). */
  capacity: number;
  dataFile: string;
  dataSize: number;
  readOnly?: boolean;
}

const WHAT = 'integrity file';
const SAMPLE = 64 << 10;

/** Bytes of metadata the whole device needs. */
export function metaBytes(s: MetaSpec): number {
  return (s.capacity / s.interval) * s.metadataSize;
}

function open(s: MetaSpec, want: string | undefined): number {
  let fd: number;
  try {
    fd = fs.openSync(s.file, s.readOnly ? fs.constants.O_RDONLY : fs.constants.O_RDWR);
  } catch (err) {
    throw describeOpenError(err, s.file, WHAT);
  }
  checkIdentity(fd, s.file, want, WHAT);
  return fd;
}

/**
 * Opens the integrity file for serving: it must be the file prepare() checked (`want`) and still
 * large enough. Nothing is written.
 */
export function openMeta(s: MetaSpec, want: string | undefined): number {
  const fd = open(s, want);
  try {
    checkShape(fd, s, false);
    return fd;
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
}

/**
 * Checks the integrity file against the data file and initialises it when it holds nothing yet;
 * returns its identity for the later opens. The rule, in order:
 *  - not a regular file, or the data file itself: refused.
 *  - larger than the data file (with tuples smaller than the interval it never is): refused as
 *    the data image given in the integrity file's place (swapped arguments).
 *  - empty (size 0): new. Extended to the size the device needs and filled with 0xff tuples.
 *  - shorter than needed: refused. Extending a file that already holds something would be a
 *    guess: it may be another file given by mistake, or PI laid out for a smaller device.
 *  - no allocated blocks and zeros where sampled: never written (as `truncate -s` leaves it, which
 *    is how the kernel selftests and kublk users make it). It reads as zeros everywhere, and a zero
 *    tuple is valid PI for no block but LBA 0, so nothing stored can be lost: filled with 0xff.
 *  - anything else holds metadata (a re-attach, after a reboot or for recovery): left untouched.
 * 0xff tuples carry the escape tags, so the kernel skips the checks of blocks never written.
 * `init` false (recovery, read-only) never writes: an empty file is then refused as too small.
 */
export function prepareMeta(s: MetaSpec, dataId: string, init: boolean): string {
  const fd = open(s, undefined);
  try {
    const id = identityOf(fd);
    if (id === dataId) throw new UblkError('EINVAL', `${WHAT} ${s.file} is the data file ${s.dataFile} itself`);
    if (checkShape(fd, s, init && !s.readOnly) === 'new') initialise(fd, metaBytes(s));
    return id;
  } finally {
    fs.closeSync(fd);
  }
}

type Shape = 'new' | 'in-use';

function checkShape(fd: number, s: MetaSpec, mayInit: boolean): Shape {
  const st = fs.fstatSync(fd);
  if (!st.isFile()) throw new UblkError('EINVAL', `${WHAT} ${s.file} is not a regular file`);
  const need = metaBytes(s);
  if (s.metadataSize < s.interval && st.size > s.dataSize) {
    throw new UblkError('EINVAL', `${WHAT} ${s.file} (${st.size} bytes) is larger than the data file ${s.dataFile} (${s.dataSize} bytes): are the two swapped? (data first, then integrity)`);
  }
  if (st.size === 0 && mayInit) {
    fs.ftruncateSync(fd, need);
    return 'new';
  }
  if (st.size < need) {
    throw new UblkError('EINVAL', `${WHAT} ${s.file} is too small: ${st.size} bytes, needs ${need} (${s.metadataSize} bytes per ${s.interval}-byte block of ${s.dataFile})`);
  }
  return mayInit && neverWritten(fd, st, need) ? 'new' : 'in-use';
}

function neverWritten(fd: number, st: fs.Stats, need: number): boolean {
  if (st.blocks !== 0) return false;
  // Some file systems report no blocks for files that have data: look at both ends too.
  const buf = Buffer.alloc(Math.min(SAMPLE, need));
  for (const at of [0, need - buf.length]) {
    const n = fs.readSync(fd, buf, 0, buf.length, at);
    if (buf.subarray(0, n).some((b) => b !== 0)) return false;
  }
  return true;
}

/** Fills [0, bytes) with 0xff in 1 MiB writes, durably before the device serves. */
function initialise(fd: number, bytes: number): void {
  const ff = Buffer.alloc(Math.min(1 << 20, bytes), 0xff);
  for (let o = 0; o < bytes;) o += fs.writeSync(fd, ff, 0, Math.min(ff.length, bytes - o), o);
  fs.fdatasyncSync(fd);
}
