// DISCARD and WRITE_ZEROES on a backing file, on any file system. fallocate() first; where the file
// system lacks a mode (tmpfs and some network file systems have no FALLOC_FL_ZERO_RANGE, a few no
// PUNCH_HOLE) the kernel's EOPNOTSUPP would reach the client as an I/O error (mkfs.ext4 logs them).
import { native } from '../../native.js';
import type { FileIo } from '../../uring/file-io.js';
import * as IO from '../../uapi/io-uring.js';

const EOPNOTSUPP = -95;
const EIO = -5;
/** Largest single write of the zero fallback; 1 MiB keeps a huge request from pinning more memory. */
const ZERO_CHUNK = 1 << 20;

export class FileSpace {
  // Cleared on the first EOPNOTSUPP: the file system will not grow the mode while we serve it.
  private zeroRange = true;
  private punch = true;
  private zeros: Uint8Array | undefined;

  constructor(private readonly io: () => FileIo, private readonly fd: number) {}

  /**
   * Discard is advisory (a later read may return the old data or zeros), so a file system that
   * cannot punch holes gets a successful no-op rather than an error.
   */
  async discard(off: number, len: number): Promise<number> {
    if (!this.punch) return 0;
    const r = await this.punchHole(off, len);
    return r === EOPNOTSUPP ? 0 : r;
  }

  /**
   * Write-zeroes must really zero, as the kernel's loop driver does: ZERO_RANGE, else (when the
   * client allows unmapping) a punched hole, else zeroes written in bounded chunks.
   */
  async writeZeroes(off: number, len: number, noUnmap: boolean): Promise<number> {
    if (this.zeroRange) {
      const r = await this.io().fallocate(this.fd, IO.FALLOC_FL_ZERO_RANGE | IO.FALLOC_FL_KEEP_SIZE, off, len);
      if (r !== EOPNOTSUPP) return r < 0 ? r : 0;
      this.zeroRange = false;
    }
    if (!noUnmap && this.punch) {
      const r = await this.punchHole(off, len);
      if (r !== EOPNOTSUPP) return r;
    }
    return this.writeZeroBytes(off, len);
  }

  private async punchHole(off: number, len: number): Promise<number> {
    const r = await this.io().fallocate(this.fd, IO.FALLOC_FL_PUNCH_HOLE | IO.FALLOC_FL_KEEP_SIZE, off, len);
    if (r === EOPNOTSUPP) this.punch = false;
    return r < 0 ? r : 0;
  }

  /** The whole range, one chunk at a time; a short write continues where it stopped. */
  private async writeZeroBytes(off: number, len: number): Promise<number> {
    // Page-aligned, so it also suits a file opened with O_DIRECT; shared by concurrent requests
    // because nothing ever writes into it.
    this.zeros ??= new Uint8Array(native().alloc(ZERO_CHUNK, 4096));
    for (let done = 0; done < len;) {
      const n = Math.min(ZERO_CHUNK, len - done);
      const r = await this.io().write(this.fd, this.zeros.subarray(0, n), off + done);
      if (r < 0) return r;
      if (r === 0) return EIO;
      done += r;
    }
    return 0;
  }
}
