// The engine's data rules on the real driver: FUA reaches the backing file durably, holes read as
// zeroes, short writes are finished or failed (never acknowledged short), long chains fit the ring.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Device, type Target } from '../../src/index.js';
import type { DataMode } from '../../src/ublk/modes.js';
import { kernelSkipReason, shAsync, sh, cli, withCliDevice, sparseFile, passThroughFile, hasProgram, listJson } from '../helpers/kernel.js';

const skip = kernelSkipReason();
const work = fs.mkdtempSync(path.join(os.homedir(), 'ublkit-engine-'));
const features = skip ? '' : cli(['features']).stdout;
const hasFio = !skip && hasProgram('fio');
const KiB = 1024;
const MiB = 1 << 20;
const ALL: DataMode[] = ['copy', 'get-data', 'user-copy', 'zero-copy', 'auto-buf-reg'];

function modeSkip(mode: DataMode): string | undefined {
  if (skip) return skip;
  if (mode === 'zero-copy' && !features.includes('ZERO_COPY')) return 'kernel lacks UBLK_F_SUPPORT_ZERO_COPY';
  if (mode === 'auto-buf-reg' && !features.includes('AUTO_BUF_REG')) return 'kernel lacks UBLK_F_AUTO_BUF_REG';
  return undefined;
}

function pattern(seed: number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 11 + seed * 29 + (i >> 10)) & 0xff;
  return b;
}

/**
 * Reads with O_DIRECT into a page-aligned buffer that holds 0xaa first, and prints how many bytes
 * are not zero: a read the server never filled leaves the 0xaa (or, buffered, kernel memory).
 */
const NONZERO_PY = `
import mmap, os, sys
dev, off, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fd = os.open(dev, os.O_RDONLY | os.O_DIRECT)
buf = mmap.mmap(-1, n)
buf.write(b'\\xaa' * n)
got = os.preadv(fd, [buf], off)
print(got, n - buf[:].count(0))
`;

async function nonZero(dev: string, off: number, n: number): Promise<{ got: number; nonzero: number }> {
  const [got, nonzero] = (await shAsync('python3', ['-c', NONZERO_PY, dev, String(off), String(n)])).trim().split(' ').map(Number);
  return { got, nonzero };
}

for (const mode of ALL) {
  test(`${mode}: the null target reads zeroes, never the reader's or another writer's bytes`, { skip: modeSkip(mode) }, async () => {
    const dev = await Device.create({ target: { module: new URL('../../src/targets/null/index.js', import.meta.url).href, config: { size: 64 * MiB } }, queues: 1, depth: 4, mode, threads: 1 });
    try {
      // Leave another writer's data in the engine's buffers first.
      const data = pattern(1, MiB);
      fs.writeFileSync(path.join(work, 'p.bin'), data);
      await shAsync('dd', [`if=${path.join(work, 'p.bin')}`, `of=${dev.blockPath}`, 'bs=64k', 'oflag=direct', 'status=none']);
      for (const [off, n] of [[0, 64 * KiB], [0, MiB], [4 * MiB, 128 * KiB]]) {
        const r = await nonZero(dev.blockPath, off, n);
        assert.deepEqual(r, { got: n, nonzero: 0 }, `read of ${n} at ${off}`);
      }
    } finally {
      await dev.delete();
    }
  });
}

/** Counts the server's vfs_fsync_range calls (the durable end of a RWF_DSYNC write or an fdatasync) during fn. */
async function countFsyncs(fn: () => Promise<void>): Promise<number> {
  const t = '/sys/kernel/tracing';
  const w = (f: string, v: string) => fs.writeFileSync(path.join(t, f), v);
  w('tracing_on', '0');
  w('set_ftrace_filter', 'vfs_fsync_range');
  w('current_tracer', 'function');
  w('trace', '');
  w('tracing_on', '1');
  try {
    await fn();
  } finally {
    w('tracing_on', '0');
  }
  // dd's own O_DSYNC writes sync the block device file through vfs_fsync_range too: not counted.
  const n = fs.readFileSync(path.join(t, 'trace'), 'utf8').split('\n')
    .filter((l) => l.includes('vfs_fsync_range') && !/^\s*dd-\d+/.test(l)).length;
  w('current_tracer', 'nop');
  w('set_ftrace_filter', '');
  return n;
}

function ftraceSkip(): string | undefined {
  try {
    return fs.readFileSync('/sys/kernel/tracing/available_filter_functions', 'utf8').includes('vfs_fsync_range')
      ? undefined : 'vfs_fsync_range is not traceable on this kernel';
  } catch {
    return 'no ftrace (/sys/kernel/tracing) here';
  }
}

/** A pass-through file target with a volatile cache and native FUA; its FLUSH does nothing. */
function fuaFile(file: string, size: number): Target {
  const fd = fs.openSync(file, 'r+');
  return {
    size,
    caps: { flush: true, fua: true },
    read: (buf, off) => fs.readSync(fd, buf, 0, buf.byteLength, off),
    write: (buf, off, flags) => {
      const n = fs.writeSync(fd, buf, 0, buf.byteLength, off);
      if (flags.fua) fs.fdatasyncSync(fd);
      return n;
    },
    // No sync here: dd's O_DSYNC also sends a FLUSH after each write, and only the FUA write
    // itself may make the data durable for the count to mean anything.
    flush: () => 0,
    route: (offset, length) => [{ fd, offset, length, bufOffset: 0 }],
    close: () => fs.closeSync(fd),
  };
}

/**
 * An ext4 file system on a kernel loop device, for the FUA tests: its writes honour RWF_DSYNC with
 * vfs_fsync_range, while tmpfs (the VM's home) has nothing to sync and never calls it.
 */
let ext4: string | undefined;
function ext4Dir(): string {
  if (ext4) return ext4;
  const img = sparseFile(work, 'ext4.img', 64 * MiB);
  sh('mkfs.ext4', ['-q', '-F', img]);
  const dir = path.join(work, 'ext4');
  fs.mkdirSync(dir);
  sh('mount', ['-o', 'loop', img, dir]);
  return (ext4 = dir);
}
after(() => {
  if (ext4) sh('umount', [ext4]);
});

for (const mode of ['zero-copy', 'auto-buf-reg', 'copy', 'user-copy'] as DataMode[]) {
  test(`${mode}: a FUA write is durable in the backing file when it completes`, { skip: modeSkip(mode) ?? ftraceSkip() }, async () => {
    const file = sparseFile(ext4Dir(), `fua-${mode}.img`, 16 * MiB);
    const dev = await Device.create({ target: fuaFile(file, 16 * MiB), queues: 1, depth: 4, mode });
    try {
      const src = path.join(work, 'fua-src.bin');
      fs.writeFileSync(src, pattern(2, 8 * 64 * KiB));
      // O_DSYNC on a device with FUA: each 64 KiB write is one REQ_FUA request, with no flush.
      const n = await countFsyncs(() => shAsync('dd', [`if=${src}`, `of=${dev.blockPath}`, 'bs=64k', 'count=8', 'oflag=direct,dsync', 'status=none']).then(() => {}));
      assert.ok(n >= 8, `8 FUA writes made ${n} durable writes to the backing file`);
      assert.ok(fs.readFileSync(file).subarray(0, 8 * 64 * KiB).equals(fs.readFileSync(src)));
    } finally {
      await dev.delete();
    }
  });
}

/** A memory disk that stores at most 4 KiB per write call: the engine must ask again for the rest. */
function shortWriter(size: number): Target & { mem: Buffer } {
  const mem = Buffer.alloc(size);
  return {
    mem, size,
    read(buf, off) {
      buf.set(mem.subarray(off, off + buf.byteLength));
      return buf.byteLength;
    },
    write(buf, off) {
      const n = Math.min(buf.byteLength, 4096);
      mem.set(buf.subarray(0, n), off);
      return n;
    },
  };
}

for (const mode of ['copy', 'get-data', 'user-copy'] as DataMode[]) {
  test(`${mode}: short target writes are finished, every byte lands`, { skip: modeSkip(mode) }, async () => {
    const t = shortWriter(8 * MiB);
    const dev = await Device.create({ target: t, queues: 1, depth: 8, mode });
    try {
      const data = pattern(3, 4 * MiB);
      fs.writeFileSync(path.join(work, 'w.bin'), data);
      await shAsync('dd', [`if=${path.join(work, 'w.bin')}`, `of=${dev.blockPath}`, 'bs=1M', 'oflag=direct', 'status=none']);
      assert.ok(t.mem.subarray(0, 4 * MiB).equals(data), 'the whole of each write reached the target');
    } finally {
      await dev.delete();
    }
  });
}

for (const mode of ['zero-copy', 'auto-buf-reg', 'copy', 'user-copy'] as DataMode[]) {
  test(`${mode}: a backend write cut short by a full file system fails, never acknowledged`, { skip: modeSkip(mode) }, async () => {
    const mnt = fs.mkdtempSync(path.join(work, `full-${mode}-`));
    sh('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'ublkit-test', mnt]);
    try {
      const file = path.join(mnt, 'disk.img');
      fs.writeFileSync(file, '');
      fs.truncateSync(file, 4 * MiB);
      const dev = await Device.create({ target: passThroughFile(file, 4 * MiB), queues: 1, depth: 4, mode });
      try {
        fs.writeFileSync(path.join(work, 'big.bin'), pattern(4, 2 * MiB));
        // 2 MiB of writes into 1 MiB of space: some write must fail, and dd must see it.
        await assert.rejects(shAsync('dd', [`if=${path.join(work, 'big.bin')}`, `of=${dev.blockPath}`, 'bs=256k', 'oflag=direct', 'status=none']));
      } finally {
        await dev.delete();
      }
    } finally {
      sh('umount', [mnt]);
    }
  });
}

test('stripe at depth 1: a 1 MiB request over 4 KiB chunks (257 extents) is served, not failed', { skip }, async () => {
  const a = sparseFile(work, 'st-a.img', 16 * MiB);
  const b = sparseFile(work, 'st-b.img', 16 * MiB);
  await withCliDevice(['-t', 'stripe', '-q', '1', '-d', '1', '--chunk_size', '4096', a, b], async (_id, dev) => {
    const data = pattern(5, 2 * MiB);
    const src = path.join(work, 'st-src.bin');
    fs.writeFileSync(src, data);
    const out = path.join(work, 'st-out.bin');
    // Chunk-aligned, then 512 bytes off (one more extent per request).
    for (const at of [MiB, 3 * MiB + 512]) {
      sh('dd', [`if=${src}`, `of=${dev}`, 'bs=1M', `seek=${at}`, 'oflag=direct,seek_bytes', 'status=none']);
      sh('dd', [`if=${dev}`, `of=${out}`, 'bs=1M', `skip=${at}`, 'count=2', 'iflag=direct,skip_bytes', 'status=none']);
      assert.ok(fs.readFileSync(out).equals(data), `data at ${at}`);
    }
  });
});

// A COMMIT linked behind file IO that io-wq completes later is issued after io_uring_enter returned;
// a kernel that reads the command's SQE only then (6.12) ran whatever the reused SQ slot held: the
// server saw -EBUSY within seconds of mixed deep load and gave the device up. Two queues, 4 KiB
// random read/write at depth 64 from two threads: every IO must succeed and the server stay up.
for (const mode of ['copy', 'user-copy'] as DataMode[]) {
  test(`${mode}: loop under deep mixed load, two queues: no IO error, the server stays up`, { skip: skip ?? (hasFio ? undefined : 'fio is not installed') }, async () => {
    const img = sparseFile(work, `deep-${mode}.img`, 64 * MiB);
    await withCliDevice(['-t', 'loop', '-q', '2', ...(mode === 'copy' ? [] : ['-u']), img], async (id, dev) => {
      // fio exits non-zero on any IO error (shAsync rejects with its stderr).
      await shAsync('fio', [`--filename=${dev}`, '--thread', '--name=deep', '--rw=randrw', '--direct=1',
        '--ioengine=libaio', '--bs=4k', '--iodepth=64', '--numjobs=2', '--time_based', '--runtime=10', '--size=64M']);
      const l = listJson(id);
      assert.equal(l.state, 'LIVE', 'the device is still served');
      assert.doesNotThrow(() => process.kill(l.pid, 0), 'the server is alive');
    });
  });
}
