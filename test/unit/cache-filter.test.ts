// The cache filter: the model check through a cache small enough to evict, hits that skip the
// target, and invalidation by writes, discards and write-zeroes (also while a read is fetching).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkTarget } from '../../src/testing/index.js';
import { compose, builtinFilters as F } from '../../src/filters/index.js';
import * as memory from '../../src/targets/memory/index.js';
import type { Target } from '../../src/target/types.js';

/** A memory target that counts the reads reaching it. */
function counted(size: number): Target & { reads: number } {
  const m = memory.create({ size }) as Target;
  const t = {
    ...m, reads: 0,
    read(buf: Uint8Array, off: number) {
      t.reads++;
      return m.read(buf, off);
    },
  };
  return t;
}

test('cache: the model check passes with evictions, at depth, with every op', async () => {
  for (const [size, block] of [['64K', '4K'], ['1M', '512'], ['256K', '64K']]) {
    await checkTarget(compose(memory.create({ size: '2M' }), [F.cache, { size, block }]), { ops: 1500, depth: 16, seed: 3 });
  }
});

test('cache: a second read of the same blocks is a hit; a write, discard or write-zeroes drops them', async () => {
  const base = counted(1 << 20);
  const t = compose(base, [F.cache, { size: '64K', block: '4K' }]);
  const buf = new Uint8Array(8192);
  await t.read(buf, 4096);
  assert.equal(base.reads, 1);
  await t.read(buf.subarray(0, 512), 4608);
  await t.read(buf, 4096);
  assert.equal(base.reads, 1, 'hits');
  await t.write(new Uint8Array(512).fill(7), 8192, { fua: false });
  const back = new Uint8Array(512);
  await t.read(back, 8192);
  assert.equal(base.reads, 2);
  assert.ok(back.every((x) => x === 7));
  await t.discard?.(8192, 4096);
  await t.read(back, 8192);
  assert.equal(base.reads, 3);
  await t.writeZeroes?.(4096, 4096, false);
  await t.read(back, 4096);
  assert.equal(base.reads, 4);
  // LRU: 16 blocks fit; reading 17 others evicts the oldest.
  for (let b = 32; b < 49; b++) await t.read(new Uint8Array(4096), b * 4096);
  const before = base.reads;
  await t.read(new Uint8Array(4096), 48 * 4096);
  assert.equal(base.reads, before, 'the newest block stays');
  await t.read(new Uint8Array(4096), 32 * 4096);
  assert.equal(base.reads, before + 1, 'the oldest was evicted');
});

test('cache: a read whose fetch overlapped a write is not kept', async () => {
  const m = memory.create({ size: 1 << 20 }) as Target;
  let release!: () => void;
  let slow = true;
  // The target reads at once but answers late: the write below lands in between.
  const slowRead: Target = {
    ...m,
    read: (b, o) => {
      const n = m.read(b, o) as number;
      return slow ? new Promise<number>((r) => (release = () => r(n))) : n;
    },
  };
  const t = compose(slowRead, [F.cache, { block: '4K' }]);
  const old = new Uint8Array(4096);
  const r = t.read(old, 0);
  await t.write(new Uint8Array(4096).fill(9), 0, { fua: false });
  release();
  await r;
  assert.ok(old.every((x) => x === 0));
  slow = false;
  const now = new Uint8Array(4096);
  await t.read(now, 0);
  assert.ok(now.every((x) => x === 9), 'the stale fetch was not cached');
});

test('cache: bad config is one error naming it', () => {
  const m = () => memory.create({ size: 1 << 20 }) as Target;
  assert.throws(() => compose(m(), [F.cache, { block: 1000 }]), /cache block must be a power of two/);
  assert.throws(() => compose(m(), [F.cache, { block: 256 }]), /cache block must be a power of two from 512/);
  assert.throws(() => compose(m(), [F.cache, { size: '1K', block: '4K' }]), /at least one 4096-byte block/);
  assert.throws(() => compose(m(), [F.cache, { sise: '1M' }]), /no option 'sise'/);
  assert.equal(compose({ ...m(), route: () => [] }, F.cache).route, undefined);
});
