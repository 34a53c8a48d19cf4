// Promise-based file IO on a thread's ring, for targets: read, write, fsync, fallocate.
import { addressOf } from '../native.js';
import type { Ring } from './ring.js';
import * as S from './sqe.js';
import * as IO from '../uapi/io-uring.js';

export class FileIo {
  private readonly ring: Ring;
  // Backing stores never move, so one native lookup per ArrayBuffer serves every later IO.
  private readonly bases = new WeakMap<ArrayBufferLike, number>();

  constructor(ring: Ring) {
    this.ring = ring;
  }

  address(buf: Uint8Array): number {
    let base = this.bases.get(buf.buffer);
    if (base === undefined) {
      base = addressOf(buf) - buf.byteOffset;
      this.bases.set(buf.buffer, base);
    }
    return base + buf.byteOffset;
  }

  /** pread: resolves with bytes read or a negative errno. */
  read(fd: number, buf: Uint8Array, offset: number): Promise<number> {
    const addr = this.address(buf);
    return this.ring.op((v, o) => S.prepRead(v, o, fd, addr, buf.byteLength, offset), buf.buffer);
  }

  /** pwrite: resolves with bytes written or a negative errno. */
  write(fd: number, buf: Uint8Array, offset: number): Promise<number> {
    const addr = this.address(buf);
    return this.ring.op((v, o) => S.prepWrite(v, o, fd, addr, buf.byteLength, offset), buf.buffer);
  }

  fsync(fd: number, datasync = true): Promise<number> {
    return this.ring.op((v, o) => S.prepFsync(v, o, fd, datasync));
  }

  fallocate(fd: number, mode: number, offset: number, length: number): Promise<number> {
    return this.ring.op((v, o) => S.prepFallocate(v, o, fd, mode, offset, length));
  }

  /** Resolves after `ns` nanoseconds (IORING_OP_TIMEOUT), without a JS timer. */
  sleep(ns: number, ts: BigInt64Array): Promise<number> {
    ts[0] = BigInt(Math.floor(ns / 1e9));
    ts[1] = BigInt(ns % 1e9);
    const addr = this.address(new Uint8Array(ts.buffer, ts.byteOffset, 16));
    return this.ring.op((v, o) => S.prepTimeout(v, o, addr, 0, IO.IORING_TIMEOUT_ETIME_SUCCESS), ts.buffer);
  }
}
