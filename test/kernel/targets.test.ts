// Built-in targets on the real driver: loop integrity durability and layout (FLUSH reaches both
// files, a re-attach keeps PI, 4 KiB intervals, swapped files refused), write-zeroes on tmpfs,
// and the memory target's end and recovery rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync, execFileSync } from 'node:child_process';
import { kernelSkipReason, hasProgram, withCliDevice, cli, sh, sparseFile, sha256File, ublkNodes, dmesgMark, waitFor } from '../helpers/kernel.js';

const skip = kernelSkipReason();
const work = fs.mkdtempSync(path.join(os.homedir(), 'ublkit-targets-'));
const features = skip ? '' : cli(['features']).stdout;
const integritySkip = skip ?? (features.includes('INTEGRITY') ? undefined : 'kernel lacks UBLK_F_INTEGRITY');
const PI = ['-u', '--metadata_size', '8', '--csum_type', 't10dif', '--integrity_reftag'];

function pattern(seed: number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 17 + (i >> 12)) & 0xff;
  return b;
}

/** `len` bytes at `off` of a file or device read with O_DIRECT (bs must divide both). */
function readDirect(file: string, off: number, len: number, bs = 4096): Buffer {
  const r = spawnSync('dd', [`if=${file}`, `bs=${bs}`, `skip=${off / bs}`, `count=${len / bs}`, 'iflag=direct', 'status=none'], { maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`O_DIRECT read of ${file} failed: ${r.stderr.toString().trim()}`);
  return r.stdout;
}

/** Writes `data` at `off` with O_DIRECT, then fsync: the device gets a FLUSH before dd exits. */
function writeAndFlush(dev: string, data: Buffer, off: number, bs = 4096): void {
  const src = path.join(work, `w-${process.hrtime.bigint()}.bin`);
  fs.writeFileSync(src, data);
  sh('dd', [`if=${src}`, `of=${dev}`, `bs=${bs}`, `seek=${off / bs}`, 'oflag=direct', 'conv=fsync,notrunc', 'status=none']);
  fs.rmSync(src);
}

/** CRC16 T10-DIF (poly 0x8bb7, no reflection): the guard tag the kernel generates. */
function crc16t10(b: Buffer): number {
  let crc = 0;
  for (const x of b) {
    crc ^= x << 8;
    for (let k = 0; k < 8; k++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x8bb7) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** Every interval of `data` (starting at interval `first`) has its T10-DIF type 1 tuple in `meta`. */
function assertTuples(meta: Buffer, data: Buffer, interval: number, first: number): void {
  for (let i = 0; i < data.length / interval; i++) {
    const t = meta.subarray((first + i) * 8, (first + i) * 8 + 8);
    assert.equal(t.readUInt16BE(0), crc16t10(data.subarray(i * interval, (i + 1) * interval)), `guard tag of interval ${first + i}`);
    assert.equal(t.readUInt32BE(4), first + i, `reference tag of interval ${first + i}`);
  }
}

/** Runs a command that must be refused: one line on stderr, non-zero; a device it made anyway is deleted. */
function refused(args: string[], why: RegExp): void {
  const r = cli(args);
  const made = /^dev id (\d+):/m.exec(r.stdout);
  if (made) cli(['del', '-n', made[1]]);
  assert.notEqual(r.status, 0, `${args.join(' ')} must fail`);
  assert.match(r.stderr, why);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
}

/** Kernel log lines after `marker`; fails when the marker is not there (the scan could not fail). */
function kernelLogAfter(marker: string): string[] {
  const log = execFileSync('dmesg', { encoding: 'utf8' });
  const at = log.lastIndexOf(marker);
  assert.ok(at >= 0, 'the dmesg marker was written');
  return log.slice(at).split('\n');
}

test('loop integrity: after FLUSH the data and the PI are in the backing files (O_DIRECT); a re-attach keeps them', { skip: integritySkip }, async () => {
  const data = sparseFile(work, 'flush.img', 8 << 20);
  const meta = sparseFile(work, 'flush.pi', (8 << 20) / 512 * 8);
  const written = pattern(1, 256 << 10);
  let interval = 512;
  let stored = '';
  await withCliDevice(['-t', 'loop', '-q', '1', ...PI, data, meta], (id, dev) => {
    interval = Number(fs.readFileSync(`/sys/block/ublkb${id}/queue/logical_block_size`, 'utf8'));
    writeAndFlush(dev, written, 64 << 10);
    // Straight after the FLUSH, from the files themselves and past the page cache.
    assert.ok(readDirect(data, 64 << 10, written.length).equals(written), 'data in the data file');
    const m = readDirect(meta, 0, fs.statSync(meta).size);
    assertTuples(m, written, interval, (64 << 10) / interval);
    assert.ok(m.subarray(0, ((64 << 10) / interval) * 8).every((b) => b === 0xff), 'blocks never written keep the 0xff escape');
    stored = sha256File(meta);
  });
  // Re-attach (as after a reboot): the PI must still be there and still verify.
  await withCliDevice(['-t', 'loop', '-q', '1', ...PI, data, meta], (_id, dev) => {
    assert.equal(sha256File(meta), stored, 'add must not rewrite stored metadata');
    assert.ok(readDirect(dev, 64 << 10, written.length).equals(written), 'reads verify against the stored PI');
  });
});

test('loop integrity on a 4 KiB-block backing device: one tuple per 4 KiB interval', { skip: integritySkip }, async (t) => {
  if (!hasProgram('losetup')) return t.skip('no losetup');
  spawnSync('modprobe', ['loop']);
  const file = sparseFile(work, 'lbs4k.img', 8 << 20);
  const r = spawnSync('losetup', ['--find', '--show', '--sector-size', '4096', '--direct-io=on', file], { encoding: 'utf8' });
  if (r.status !== 0) return t.skip(`losetup --sector-size 4096 failed: ${r.stderr.trim()}`);
  const loopDev = r.stdout.trim();
  try {
    const meta = sparseFile(work, 'lbs4k.pi', (8 << 20) / 4096 * 8);
    await withCliDevice(['-t', 'loop', '-q', '1', ...PI, loopDev, meta], (id, dev) => {
      assert.equal(fs.readFileSync(`/sys/block/ublkb${id}/integrity/protection_interval_bytes`, 'utf8').trim(), '4096');
      assert.equal(Number(fs.readFileSync(`/sys/block/ublkb${id}/size`, 'utf8')) * 512, 8 << 20, 'the whole 8 MiB: 2048 tuples fit the file');
      const written = pattern(2, 16 << 10);
      writeAndFlush(dev, written, 8 << 10);
      const m = readDirect(meta, 0, 16 << 10);
      assertTuples(m, written, 4096, 2);
      assert.ok(m.subarray(0, 16).every((b) => b === 0xff) && m.subarray(48).every((b) => b === 0xff), 'other tuples untouched');
      assert.ok(readDirect(dev, 8 << 10, written.length).equals(written));
    });
  } finally {
    spawnSync('losetup', ['-d', loopDev]);
  }
});

test('loop integrity: swapped files are refused with one line; neither file is written, no device left', { skip }, () => {
  const data = sparseFile(work, 'swap.img', 8 << 20);
  fs.writeFileSync(data, pattern(3, 8 << 20));
  const meta = sparseFile(work, 'swap.pi', (8 << 20) / 512 * 8);
  const before = [sha256File(data), sha256File(meta)];
  const nodes = ublkNodes();
  refused(['add', '-t', 'loop', '-q', '1', ...PI, meta, data], /swapped/);
  assert.deepEqual([sha256File(data), sha256File(meta)], before, 'both files as they were');
  assert.deepEqual(ublkNodes(), nodes);
});

test('loop on tmpfs (no ZERO_RANGE): write-zeroes reads back zeroes, discard works, no "not supported" errors', { skip: skip ?? (hasProgram('blkdiscard') ? undefined : 'no blkdiscard') }, async (t) => {
  const mnt = path.join(work, 'tmpfs');
  fs.mkdirSync(mnt, { recursive: true });
  if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=96M', 'ublkit-test', mnt]).status !== 0) return t.skip('cannot mount a tmpfs here');
  try {
    const file = path.join(mnt, 'disk.img');
    const MiB = 1 << 20;
    fs.writeFileSync(file, pattern(4, 32 * MiB));
    await withCliDevice(['-t', 'loop', '-q', '1', file], (id, dev) => {
      const marker = dmesgMark('wz');
      sh('blkdiscard', ['-z', '-o', String(MiB), '-l', String(5 * MiB), dev]);
      sh('fallocate', ['--punch-hole', '-o', String(8 * MiB), '-l', String(MiB), dev]);
      sh('blkdiscard', ['-o', String(12 * MiB), '-l', String(MiB), dev]);
      const got = readDirect(dev, 0, 10 * MiB, 65536);
      const want = pattern(4, 32 * MiB);
      assert.ok(got.subarray(0, MiB).equals(want.subarray(0, MiB)), 'before the range: pattern');
      assert.ok(got.subarray(MiB, 6 * MiB).every((b) => b === 0), 'write-zeroes (NOUNMAP) range reads zeroes');
      assert.ok(got.subarray(6 * MiB, 8 * MiB).equals(want.subarray(6 * MiB, 8 * MiB)), 'between the ranges: pattern');
      assert.ok(got.subarray(8 * MiB, 9 * MiB).every((b) => b === 0), 'write-zeroes (unmap allowed) range reads zeroes');
      assert.ok(fs.readFileSync(file).subarray(MiB, 6 * MiB).every((b) => b === 0), 'zeroes in the file too');
      if (hasProgram('mkfs.ext4')) sh('mkfs.ext4', ['-q', '-F', dev]);
      const errors = kernelLogAfter(marker).filter((l) => l.includes(`ublkb${id}`) && /not supported|I\/O error/.test(l));
      assert.deepEqual(errors, []);
    });
  } finally {
    spawnSync('umount', [mnt]);
  }
});

test('memory: a read past the end of a grown memory disk fails instead of returning stale bytes', { skip: skip ?? (features.includes('UPDATE_SIZE') ? undefined : 'kernel lacks UBLK_F_UPDATE_SIZE') }, async () => {
  await withCliDevice(['-t', 'memory', '--size', '16M', '-q', '1', '-d', '1'], async (id, dev) => {
    // One tag, one buffer: fill it with a pattern that a wrong answer would repeat.
    writeAndFlush(dev, Buffer.alloc(65536, 0xab), 0);
    assert.ok(readDirect(dev, 0, 65536).every((b) => b === 0xab));
    assert.equal(cli(['update_size', '-n', String(id), '-s', String(32 << 20)]).status, 0);
    await waitFor(() => Number(fs.readFileSync(`/sys/block/ublkb${id}/size`, 'utf8')) === (32 << 20) / 512, 10_000, 'the new size');
    const r = spawnSync('dd', [`if=${dev}`, 'of=/dev/null', 'bs=4096', `skip=${(20 << 20) / 4096}`, 'count=1', 'iflag=direct', 'status=none']);
    assert.notEqual(r.status, 0, 'past the memory, the read fails');
  });
});

test('memory: -r/-i/-e and recover are refused with one line, no device left', { skip }, () => {
  const nodes = ublkNodes();
  refused(['add', '-t', 'memory', '--size', '16M', '-r', '1'], /memory target cannot be recovered/);
  refused(['add', '-t', 'memory', '--size', '16M', '-e', '1'], /memory target cannot be recovered/);
  // An id that no device of this test has: the refusal must come before the id is looked at.
  refused(['recover', '-n', '9999', '-t', 'memory', '--size', '16M'], /memory target cannot be recovered/);
  assert.deepEqual(ublkNodes(), nodes);
});
