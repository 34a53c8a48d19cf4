// Zero copy: each request's pages are registered as fixed buffer s of this ring (REGISTER_IO_BUF),
// read or written by the target's extents directly, and unregistered before the commit.
import type { DataPath, Loop } from './core.js';
import type { ExtentIo } from './extent-io.js';

export class ZeroCopyPath implements DataPath {
  private readonly loop: Loop;
  private readonly x: ExtentIo;

  constructor(loop: Loop, x: ExtentIo) {
    this.loop = loop;
    this.x = x;
  }

  start(s: number): void {
    this.x.fixedPass(s, false, true);
  }

  pass(s: number, regHeld: boolean): void {
    this.x.fixedPass(s, regHeld, true);
  }

  finish(s: number): void {
    this.loop.commit(s, this.loop.slots.len[s]);
  }

  flush(): void {}
}
