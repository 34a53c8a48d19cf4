// Shared-memory zero copy (UBLK_F_SHMEM_ZC): a request whose pages lie in the file the device
// registered arrives as an offset into it; the target reads or writes our own mapping, no copy.
import * as fs from 'node:fs';
import { native } from '../../native.js';
import * as U from '../../uapi/ublk.js';
import type { Finisher, Loop } from './core.js';
import type { TargetRw } from './target-rw.js';

export class ShmemZc implements Finisher {
  private readonly loop: Loop;
  private readonly rw: TargetRw;
  private map: ArrayBuffer | undefined;
  private readonly view: Uint8Array;

  /** Maps the same shared file the device registered; request offsets are relative to its start. */
  constructor(loop: Loop, rw: TargetRw, sh: { path: string; readOnly?: boolean }) {
    this.loop = loop;
    this.rw = rw;
    const c = native().constants;
    const fd = fs.openSync(sh.path, sh.readOnly ? fs.constants.O_RDONLY : fs.constants.O_RDWR);
    try {
      const size = fs.fstatSync(fd).size;
      this.map = native().mmap(fd, size, sh.readOnly ? c.PROT_READ : c.PROT_READ | c.PROT_WRITE, c.MAP_SHARED, 0);
      this.view = new Uint8Array(this.map);
    } finally {
      fs.closeSync(fd);
    }
  }

  /** A READ/WRITE flagged UBLK_IO_F_SHMEM_ZC; its descriptor addr is (buffer index << 32) | offset. */
  start(s: number): void {
    const sl = this.loop.slots;
    const at = sl.addr[s] % 0x100000000;
    const isRead = sl.op[s] === U.UBLK_IO_OP_READ;
    this.rw.run(s, isRead, this.view.subarray(at, at + sl.len[s]), sl.off[s], (sl.flags[s] & U.UBLK_IO_F_FUA) !== 0, this, 0);
  }

  finish(s: number): void {
    this.loop.commit(s, this.loop.slots.len[s]);
  }

  release(): void {
    if (this.map) native().munmap(this.map);
    this.map = undefined;
  }
}
