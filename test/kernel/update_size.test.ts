// update_size on the real driver: the block device takes the new size, IO to a grown range works.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { kernelSkipReason, withCliDevice, cli, sh, sparseFile, waitFor, lacks, freeId, ublkNodes } from '../helpers/kernel.js';

const skip = kernelSkipReason();
const work = fs.mkdtempSync(path.join(os.homedir(), 'ublkit-resize-'));
const MiB = 1 << 20;

const size64 = (dev: string) => Number(sh('blockdev', ['--getsize64', dev]).trim());

function updateSize(id: number, bytes: number): void {
  const r = cli(['update_size', '-n', String(id), '-s', String(bytes)]);
  assert.equal(r.status, 0, `update_size -s ${bytes}: ${r.stderr}`);
}

/** Writes `data` at `offset` of `dev` with O_DIRECT and reads it back the same way. */
function roundTrip(dev: string, offset: number, data: Buffer): Buffer {
  const src = path.join(work, 'src.bin');
  fs.writeFileSync(src, data);
  sh('dd', [`if=${src}`, `of=${dev}`, 'bs=1M', `seek=${offset / MiB}`, 'oflag=direct', 'status=none']);
  const dst = path.join(work, 'dst.bin');
  sh('dd', [`if=${dev}`, `of=${dst}`, 'bs=1M', `skip=${offset / MiB}`, `count=${data.length / MiB}`, 'iflag=direct', 'status=none']);
  return fs.readFileSync(dst);
}

function fileRange(file: string, offset: number, len: number): Buffer {
  const b = Buffer.alloc(len);
  const fd = fs.openSync(file, 'r');
  try {
    fs.readSync(fd, b, 0, len, offset);
  } finally {
    fs.closeSync(fd);
  }
  return b;
}

test('update_size: grow over a grown backing file, IO to the new range reaches it; shrink hides the tail', { skip: skip ?? lacks('UPDATE_SIZE') }, async () => {
  const file = sparseFile(work, 'grow.img', 16 * MiB);
  await withCliDevice(['-t', 'loop', '-q', '1', file], async (id, dev) => {
    assert.equal(size64(dev), 16 * MiB);
    fs.truncateSync(file, 32 * MiB);
    updateSize(id, 32 * MiB);
    await waitFor(() => size64(dev) === 32 * MiB, 10_000, `${dev} to report 32 MiB`);
    const tail = randomBytes(8 * MiB);
    assert.ok(roundTrip(dev, 20 * MiB, tail).equals(tail), 'the new range reads back what was written');
    assert.ok(fileRange(file, 20 * MiB, tail.length).equals(tail), 'the new range lives in the backing file');

    updateSize(id, 8 * MiB);
    await waitFor(() => size64(dev) === 8 * MiB, 10_000, `${dev} to report 8 MiB`);
    const past = path.join(work, 'past.bin');
    sh('dd', [`if=${dev}`, `of=${past}`, 'bs=1M', 'skip=8', 'count=1', 'iflag=direct', 'status=none']);
    assert.equal(fs.statSync(past).size, 0, 'nothing reads past the new end');
    const head = randomBytes(4 * MiB);
    assert.ok(roundTrip(dev, 4 * MiB, head).equals(head), 'IO below the new end still works');
  });
  fs.rmSync(file);
});

test('update_size bad input: one-line error, non-zero exit, the size is unchanged', { skip: skip ?? lacks('UPDATE_SIZE') }, async () => {
  await withCliDevice(['-t', 'null', '-q', '1'], (id, dev) => {
    const before = size64(dev);
    for (const [args, re] of [
      [['-s', '1000'], /multiple of the 512-byte block size/],
      [['-s', '0'], /-s 0: the size must be positive/],
      [[], /-s BYTES/],
    ] as Array<[string[], RegExp]>) {
      const r = cli(['update_size', '-n', String(id), ...args]);
      assert.notEqual(r.status, 0, `update_size ${args.join(' ')} must fail`);
      assert.match(r.stderr.trim(), re);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
    assert.equal(size64(dev), before);
  });
  const before = ublkNodes();
  const r = cli(['update_size', '-n', String(freeId()), '-s', String(MiB)]);
  assert.notEqual(r.status, 0, 'update_size of an id no device has must fail');
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.deepEqual(ublkNodes(), before);
});
