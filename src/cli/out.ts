// Synchronous writes to fd 1/2 for the short commands. process.stdout/stderr would build a stream
// (net, the streams stack: ~35 internal modules) on first use, which an emulated machine pays for
// on every `list` of a polling loop. A full pipe (EAGAIN on a non-blocking fd) is retried.
import * as fs from 'node:fs';

function writeAll(fd: number, text: string): void {
  let buf = Buffer.from(text);
  while (buf.length > 0) {
    try {
      buf = buf.subarray(fs.writeSync(fd, buf));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
    }
  }
}

export const out = (text: string): void => writeAll(1, text);
export const err = (text: string): void => writeAll(2, text);
