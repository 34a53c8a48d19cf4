// Hands one request to a target the way the queue engine does: short counts asked again for the
// rest, every result read through the one contract (src/target/result.ts), throws become errnos.
import { toNegErrno } from '../errors.js';
import { countResult, statusResult } from '../target/result.js';
import type { MaybePromise, Target } from '../target/types.js';

export interface DriverStats {
  shortResults: number;
}

/** READ or WRITE of all of `buf`: resolves with its length or a negative errno. */
export async function transfer(t: Target, isRead: boolean, buf: Uint8Array, off: number, fua: boolean, st: DriverStats): Promise<number> {
  let done = 0;
  while (done < buf.byteLength) {
    const part = done === 0 ? buf : buf.subarray(done);
    let v: unknown;
    try {
      v = await (isRead ? t.read(part, off + done) : t.write(part, off + done, { fua }));
    } catch (err) {
      return toNegErrno(err);
    }
    const n = countResult(v, part.byteLength);
    if (n < 0) return n;
    if (n < part.byteLength) st.shortResults++;
    done += n;
  }
  return done;
}

/** FLUSH, DISCARD, WRITE_ZEROES: 0 or a negative errno. */
export async function status(call: () => MaybePromise<unknown>): Promise<number> {
  try {
    return statusResult(await call());
  } catch (err) {
    return toNegErrno(err);
  }
}
