// Short reads, failures half way and throws, per data mode: the client sees an error or the right
// partial data, never stale bytes from earlier IO (buffers are poisoned by a previous pattern).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Device, type Target } from '../../src/index.js';
import type { DataMode } from '../../src/ublk/modes.js';
import { kernelSkipReason, shAsync, cli, passThroughFile } from '../helpers/kernel.js';

const skip = kernelSkipReason();
const work = fs.mkdtempSync(path.join(os.homedir(), 'ublkit-trust-'));
const features = skip ? '' : cli(['features']).stdout;
const MiB = 1 << 20;

function pattern(seed: number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + seed * 13 + (i >> 9)) & 0xff;
  return b;
}

/** Reads `len` bytes at `off` with O_DIRECT; resolves with the data or rejects on an IO error. */
async function readDev(dev: string, off: number, len: number): Promise<Buffer> {
  const out = path.join(work, `r-${off}-${len}.bin`);
  await shAsync('dd', [`if=${dev}`, `of=${out}`, 'bs=64k', `skip=${off / 65536}`, `count=${len / 65536}`, 'iflag=direct', 'status=none']);
  const b = fs.readFileSync(out);
  fs.rmSync(out);
  return b;
}

/** A memory disk that serves at most 4 KiB per read call and fails one region. */
function flakyMemory(size: number): Target & { mem: Buffer; bad: [number, number] } {
  const mem = Buffer.alloc(size);
  const t = {
    mem, size, bad: [-1, -1] as [number, number],
    read(buf: Uint8Array, off: number) {
      if (off < t.bad[1] && off + buf.byteLength > t.bad[0]) {
        if (off >= t.bad[0]) throw Object.assign(new Error('injected'), { code: 'EIO' });
        // Fill only up to the bad region: a correct short read.
        const n = t.bad[0] - off;
        buf.set(mem.subarray(off, off + n));
        return n;
      }
      const n = Math.min(buf.byteLength, 4096);
      buf.set(mem.subarray(off, off + n));
      return n;
    },
    write(buf: Uint8Array, off: number) {
      mem.set(buf, off);
      return buf.byteLength;
    },
  };
  return t;
}

for (const mode of ['copy', 'get-data', 'user-copy'] as DataMode[]) {
  test(`${mode}: short reads re-asked, a failing region errors, no stale bytes`, { skip }, async () => {
    const t = flakyMemory(8 * MiB);
    const dev = await Device.create({ target: t, queues: 1, depth: 8, mode });
    try {
      // Poison the engine's buffers with one pattern through the device, then change the data.
      const a = pattern(1, 4 * MiB);
      fs.writeFileSync(path.join(work, 'a.bin'), a);
      await shAsync('dd', [`if=${path.join(work, 'a.bin')}`, `of=${dev.blockPath}`, 'bs=1M', 'oflag=direct', 'status=none']);
      assert.ok(t.mem.subarray(0, 4 * MiB).equals(a), 'writes reached the target');
      assert.ok((await readDev(dev.blockPath, 0, 4 * MiB)).equals(a), 'short reads (4 KiB per call) still give the right data');
      const b = pattern(2, 4 * MiB);
      b.copy(t.mem, 0);
      t.bad = [MiB + 8192, 2 * MiB];
      assert.ok((await readDev(dev.blockPath, 0, MiB)).equals(b.subarray(0, MiB)), 'new data, not the poisoned buffers');
      await assert.rejects(readDev(dev.blockPath, MiB, MiB), 'a read over the failing region is an IO error');
    } finally {
      await dev.delete();
    }
  });
}

for (const mode of ['zero-copy', 'auto-buf-reg', 'user-copy', 'copy'] as DataMode[]) {
  const feature = mode === 'zero-copy' ? 'ZERO_COPY' : mode === 'auto-buf-reg' ? 'AUTO_BUF_REG' : '';
  test(`${mode}: a backend read short at EOF is finished by the engine; past EOF the client gets EIO`, { skip: skip ?? (feature && !features.includes(feature) ? `kernel lacks ${feature}` : undefined) }, async () => {
    const file = path.join(work, `short-${mode}.img`);
    const data = pattern(3, 1 * MiB + 32768);
    fs.writeFileSync(file, data);
    const dev = await Device.create({ target: passThroughFile(file, 2 * MiB), queues: 1, depth: 4, mode });
    try {
      assert.ok((await readDev(dev.blockPath, 0, MiB)).equals(data.subarray(0, MiB)));
      // 64 KiB straddling EOF: 32 KiB real, then nothing: the read must fail, not return stale memory.
      await assert.rejects(readDev(dev.blockPath, MiB, 65536));
      await assert.rejects(readDev(dev.blockPath, MiB + 65536, 65536));
    } finally {
      await dev.delete();
    }
  });
}
