// Example custom target: a file whose bytes are stored XOR-scrambled with a one-byte key.
// Written the way a user would: only the public API, a plain object with async read/write.
import * as fs from 'node:fs';
import type { Target, TargetContext, FileIo } from 'ublkit';
import { UblkError } from 'ublkit';

export interface XorConfig {
  file: string;
  key: number;
}

export function create({ file, key }: XorConfig): Target {
  const fd = fs.openSync(file, 'r+');
  const size = fs.fstatSync(fd).size;
  let io: FileIo;
  const scramble = (buf: Uint8Array, n: number) => {
    for (let i = 0; i < n; i++) buf[i] ^= key;
  };
  return {
    size: size - (size % 512),
    caps: { flush: true },
    open(ctx: TargetContext) {
      io = ctx.io;
    },
    async read(buf, offset) {
      const n = await io.read(fd, buf, offset);
      if (n < 0) throw new UblkError('EIO', `read failed: ${n}`);
      scramble(buf, n);
      return n;
    },
    async write(buf, offset) {
      // The engine's buffer is ours until we resolve, so scrambling in place is safe.
      scramble(buf, buf.byteLength);
      const n = await io.write(fd, buf, offset);
      if (n < 0) throw new UblkError('EIO', `write failed: ${n}`);
      return n;
    },
    async flush() {
      await io.fsync(fd);
    },
    close() {
      fs.closeSync(fd);
    },
  };
}
