// CLI parsing, validation messages, and kublk's exact output formats, without a kernel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseArgs } from '../../src/cli/args.js';
import { deviceOptions } from '../../src/cli/commands/add.js';
import { formatListing, formatFeatures } from '../../src/cli/listing.js';
import { buildParams } from '../../src/ublk/params.js';
import { chooseMode } from '../../src/ublk/modes.js';
import { parseSize } from '../../src/targets/size.js';
import * as U from '../../src/uapi/ublk.js';

test('getopt-style parsing: interleaved files, clustered flags, target options', () => {
  const a = parseArgs(['add', '-t', 'loop', 'disk.img', '-q2', '-zu', '--depth', '64', '--chunk_size', '4096', '--foreground']);
  assert.equal(a.type, 'loop');
  assert.deepEqual(a.files, ['disk.img']);
  assert.equal(a.queues, 2);
  assert.equal(a.depth, 64);
  assert.ok(a.zeroCopy && a.userCopy && a.foreground);
  assert.deepEqual(a.targetOpts, { chunk_size: '4096' });
  assert.throws(() => parseArgs(['add', '--chunk_size']), /requires argument/);
  assert.throws(() => parseArgs(['add', '-q', 'x']), /integer/);
});

test('add validation gives one clear message per problem', () => {
  const opts = (s: string) => deviceOptions(parseArgs(['add', ...s.split(' ')]));
  assert.throws(() => opts('-t null -q 0'), /number of queues must be 1\.\.32/);
  assert.throws(() => opts('-t null -q 33'), /number of queues/);
  assert.throws(() => opts('-t null -d 5000'), /queue depth must be 1\.\.1024/);
  assert.throws(() => opts('-t nosuch'), /no such tgt type nosuch/);
  assert.throws(() => opts('-t null -z -u'), /too many data copy modes/);
  assert.throws(() => opts('-t loop'), /exactly one backing file/);
  assert.throws(() => opts('-t memory'), /--size/);
  const o = opts('-t null -q 1 -z');
  assert.equal(o.mode, 'zero-copy');
  assert.equal(o.queues, 1);
  assert.equal(opts('-t null').queues, 2, 'kublk default: 2 queues');
});

test('listing text matches kublk column for column', () => {
  const text = formatListing({
    id: 3, nrHwQueues: 2, queueDepth: 128, blockSize: 512, capacitySectors: 524288000, sizeBytes: 0,
    maxIoBufBytes: 1048576, pid: 1234, flags: 0x26042, state: 'LIVE', mode: 'copy',
    queues: [{ id: 0, affinity: [0, 1] }, { id: 1, affinity: [1] }], blockPath: '', charPath: '',
  });
  assert.equal(text,
    'dev id 3: nr_hw_queues 2 queue_depth 128 block size 512 dev_capacity 524288000\n' +
    '\tmax rq size 1048576 daemon pid 1234 flags 0x26042 state LIVE\n' +
    '\tqueue 0: affinity(0 )\n\tqueue 1: affinity(1 )\n');
  const line2 = text.split('\n')[1].trim().split(/\s+/);
  assert.equal(line2[6], '1234');
  assert.equal(line2[10], 'LIVE');
});

test('features text: padded hex and names', () => {
  assert.equal(formatFeatures(0x41),
    'ublk_drv features: 0x41\n0x1               : UBLK_F_SUPPORT_ZERO_COPY\n0x40              : UBLK_F_CMD_IOCTL_ENCODE\n');
});

test('params from a target: geometry, caps, and refusals', () => {
  const p = buildParams({ size: 1 << 30, caps: { flush: true, discard: true }, read: () => 0, write: () => 0 }, 1 << 20);
  assert.equal(p.basic.devSectors, (1 << 30) / 512);
  assert.equal(p.basic.maxSectors, 2048);
  assert.equal(p.basic.attrs & U.UBLK_ATTR_VOLATILE_CACHE, U.UBLK_ATTR_VOLATILE_CACHE);
  assert.equal(p.discard?.maxDiscardSegments, 1);
  assert.equal(p.discard?.maxWriteZeroesSectors, 0);
  assert.throws(() => buildParams({ size: 1000, read: () => 0, write: () => 0 }, 1 << 20), /multiple of the 512-byte/);
  assert.throws(() => buildParams({ size: 0, read: () => 0, write: () => 0 }, 1 << 20), /positive/);
  assert.throws(() => buildParams({ size: 4096, limits: { dmaAlignment: 500 }, read: () => 0, write: () => 0 }, 1 << 20), /dma alignment/);
});

test('mode auto: zero copy for pass-through targets, copy for targets that see bytes', () => {
  const all = U.UBLK_F_SUPPORT_ZERO_COPY | U.UBLK_F_AUTO_BUF_REG | U.UBLK_F_USER_COPY;
  assert.equal(chooseMode('auto', all, true), 'zero-copy');
  assert.equal(chooseMode('auto', U.UBLK_F_AUTO_BUF_REG, true), 'auto-buf-reg');
  assert.equal(chooseMode('auto', all, false), 'copy');
  assert.equal(chooseMode('auto', 0, true), 'copy');
  assert.equal(chooseMode('user-copy', 0, true), 'user-copy');
});

test('sizes', () => {
  assert.equal(parseSize('512M'), 512 * 2 ** 20);
  assert.equal(parseSize('2G'), 2 ** 31);
  assert.equal(parseSize(4096), 4096);
  assert.throws(() => parseSize('12X'), /invalid size/);
});
