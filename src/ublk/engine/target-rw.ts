// Requests handed to the target's own methods: READ/WRITE on a buffer until whole, and the
// status ops (FLUSH, DISCARD, WRITE_ZEROES), with every result checked by the one contract.
import { toNegErrno } from '../../errors.js';
import { countResult, statusResult } from '../../target/result.js';
import type { Target } from '../../target/types.js';
import type { Finisher, Loop } from './core.js';

export class TargetRw {
  private readonly loop: Loop;
  private readonly target: Target;

  constructor(loop: Loop) {
    this.loop = loop;
    this.target = loop.target;
  }

  /**
   * READ/WRITE of slot s through the target into or out of `buf`: a short count re-asks the target
   * for the rest, and only the whole length (or an error) goes on to `then.finish`. Never leave
   * the rest to the kernel: Linux 7.3 ends a request committed short as if it were whole (every
   * WRITE, and READs in user copy, zero copy and auto buffer registration).
   */
  run(s: number, isRead: boolean, buf: Uint8Array, off: number, fua: boolean, then: Finisher, done: number): void {
    const t = this.target;
    const len = buf.byteLength;
    for (;;) {
      let r: unknown;
      try {
        const part = done === 0 ? buf : buf.subarray(done);
        r = isRead ? t.read(part, off + done) : t.write(part, off + done, { fua });
      } catch (err) {
        return this.loop.commit(s, toNegErrno(err));
      }
      if (r instanceof Promise) {
        r.then((v) => {
          const n = countResult(v, len - done);
          if (n < 0) return this.loop.commit(s, n);
          if (done + n === len) return then.finish(s);
          this.run(s, isRead, buf, off, fua, then, done + n);
        }, (e) => this.loop.commit(s, toNegErrno(e)));
        return;
      }
      const n = countResult(r, len - done);
      if (n < 0) return this.loop.commit(s, n);
      done += n;
      if (done === len) return then.finish(s);
    }
  }

  /** Loops a target call until `buf` is whole; resolves with its length or a negative errno. */
  async whole(isRead: boolean, buf: Uint8Array, off: number, fua: boolean): Promise<number> {
    const t = this.target;
    let done = 0;
    while (done < buf.byteLength) {
      const part = buf.subarray(done);
      const n = countResult(await (isRead ? t.read(part, off + done) : t.write(part, off + done, { fua })), part.byteLength);
      if (n < 0) return n;
      done += n;
    }
    return done;
  }

  /** FLUSH, DISCARD, WRITE_ZEROES: commits 0 or the errno the target reported. */
  settle(s: number, r: unknown): void {
    if (r instanceof Promise) r.then((v) => this.loop.commit(s, statusResult(v)), (e) => this.loop.commit(s, toNegErrno(e)));
    else this.loop.commit(s, statusResult(r));
  }
}
