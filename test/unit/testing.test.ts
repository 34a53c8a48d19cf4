// ublkit/testing on the host: the built-in targets pass checkTarget, and it catches targets that
// drop a write, return stale data, or acknowledge a FLUSH before earlier writes are stored.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { checkTarget, TargetMismatch } from '../../src/testing/index.js';
import * as memory from '../../src/targets/memory/index.js';
import * as nul from '../../src/targets/null/index.js';
import * as loop from '../../src/targets/loop/index.js';
import * as stripe from '../../src/targets/stripe/index.js';
import * as faultInject from '../../src/targets/fault-inject/index.js';
import * as zoned from '../../src/targets/zoned/index.js';
import type { Target } from '../../src/target/types.js';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ublkit-check-'));
process.on('exit', () => fs.rmSync(work, { recursive: true, force: true }));

function sparse(name: string, bytes: number): string {
  const f = path.join(work, name);
  fs.writeFileSync(f, '');
  fs.truncateSync(f, bytes);
  return f;
}

/** A RAM disk in plain JS with a hook to break it; `disk` outlives instances (for reopen). */
function ram(disk: Uint8Array, breakIt: Partial<Target> = {}): Target {
  return {
    size: disk.byteLength,
    caps: { flush: true, fua: true, discard: true, writeZeroes: true },
    limits: { maxIoBytes: 64 * 1024 },
    read: (buf, off) => (buf.set(disk.subarray(off, off + buf.byteLength)), buf.byteLength),
    write: (buf, off) => (disk.set(buf, off), buf.byteLength),
    flush: () => 0,
    discard: (off, len) => void disk.fill(0, off, off + len),
    writeZeroes: (off, len) => void disk.fill(0, off, off + len),
    ...breakIt,
  };
}

test('memory target passes, with splitting, depth and every op type', async () => {
  const r = await checkTarget(memory.create({ size: '4M' }), { ops: 1500, depth: 8, seed: 7 });
  assert.ok(r.ops.read > 0 && r.ops.write > 0 && r.ops.discard > 0 && r.ops.writeZeroes > 0, JSON.stringify(r.ops));
  assert.equal(r.errors.read + r.errors.write, 0);
});

test('same seed, same report (a target that completes in order)', async () => {
  const a = await checkTarget(memory.create({ size: '1M' }), { ops: 300, seed: 3 });
  const b = await checkTarget(memory.create({ size: '1M' }), { ops: 300, seed: 3 });
  assert.deepEqual({ ...a, seconds: 0 }, { ...b, seconds: 0 });
});

test('null target: keepsData false, every read zeroes', async () => {
  const r = await checkTarget(nul.create({ size: '8M' }), { ops: 500, keepsData: false });
  assert.ok(r.ops.write > 0);
  // and a target that keeps nothing fails the ordinary check
  await assert.rejects(checkTarget(nul.create({ size: '8M' }), { ops: 500 }), TargetMismatch);
});

test('zoned target over its conventional zones: requests split at zone ends, as the kernel does', async () => {
  // The harness writes anywhere, which sequential zones refuse: size keeps it to the conventional ones.
  const t = zoned.create({ size: '16M', zoneSize: '1M', conventional: 4 });
  const r = await checkTarget(t, { size: 4 << 20, ops: 800, depth: 8, seed: 3 });
  assert.ok(r.ops.write > 0);
  // Unsplit, a write across a zone end is an EIO from the target.
  assert.deepEqual(r.errnos, {});
});

test('fault_inject: null under the delay filter; each request waits --delay_us on the ring', async () => {
  const t = faultInject.create({ delayUs: 2000, size: 8 << 20 });
  // The delay must see each request: no route, so zero copy cannot go past it.
  assert.equal(t.route, undefined);
  assert.equal(typeof faultInject.create({}).route, 'function');
  const t0 = performance.now();
  const r = await checkTarget(t, { ops: 40, depth: 1, keepsData: false });
  // 40 client requests, one at a time, each split into requests that all wait 2 ms.
  assert.ok(performance.now() - t0 >= 40 * 2, `${performance.now() - t0} ms`);
  assert.equal(r.errors.read + r.errors.write, 0);
});

test('loop target on a temp file (real io_uring), with a crash check', async () => {
  const file = sparse('loop.img', 4 << 20);
  const cfg = loop.prepare({ file, buffered: true });
  const t = loop.create(cfg);
  try {
    const r = await checkTarget(t, { ops: 800, depth: 16, seed: 11, reopen: () => loop.create(cfg) });
    assert.ok(r.ops.flush > 0 && r.crashChecked);
  } finally {
    await t.close?.();
  }
});

test('stripe target over two temp files', async () => {
  const files = [sparse('s0.img', 2 << 20), sparse('s1.img', 2 << 20)];
  const cfg = stripe.prepare({ files, chunkSize: 8192 });
  const t = stripe.create(cfg);
  try {
    await checkTarget(t, { ops: 800, depth: 8, seed: 5 });
  } finally {
    await t.close?.();
  }
});

test('short results are asked again for the rest', async () => {
  const disk = new Uint8Array(1 << 20);
  const t = ram(disk, {
    read: (buf, off) => { const n = Math.min(buf.byteLength, 512); buf.set(disk.subarray(off, off + n)); return n; },
    write: (buf, off) => { const n = Math.min(buf.byteLength, 1024); disk.set(buf.subarray(0, n), off); return Promise.resolve(n); },
  });
  const r = await checkTarget(t, { ops: 300 });
  assert.ok(r.shortResults > 0);
});

test('thrown errors are counted, not fatal', async () => {
  const disk = new Uint8Array(1 << 20);
  let n = 0;
  const base = ram(disk);
  const t = ram(disk, { write: (buf, off, f) => { if (++n % 5 === 0) throw Object.assign(new Error('x'), { code: 'ENOSPC' }); return base.write(buf, off, f); } });
  const r = await checkTarget(t, { ops: 400 });
  assert.ok(r.errors.write > 0 && r.errnos.ENOSPC === r.errors.write);
});

test('catches a target that drops a write', async () => {
  const disk = new Uint8Array(1 << 20);
  let n = 0;
  const t = ram(disk, { write: (buf, off) => { if (++n % 50 !== 0) disk.set(buf, off); return buf.byteLength; } });
  const err = await checkTarget(t, { ops: 2000, seed: 2 }).then(() => undefined, (e) => e);
  assert.ok(err instanceof TargetMismatch, String(err));
  assert.match(err.message, /offset \d+ reads wrong: expected block stamped .* got/);
});

test('catches a target that returns stale data on read', async () => {
  const disk = new Uint8Array(1 << 20);
  const seen = new Map<number, Uint8Array>();
  // A read cache that nothing invalidates.
  const t = ram(disk, {
    read: (buf, off) => {
      const key = off * 4096 + buf.byteLength;
      if (!seen.has(key)) seen.set(key, disk.slice(off, off + buf.byteLength));
      buf.set(seen.get(key)!);
      return buf.byteLength;
    },
  });
  await assert.rejects(checkTarget(t, { ops: 2000, size: 64 * 1024 }), TargetMismatch);
});

test('catches a target that acknowledges a FLUSH before earlier writes are stored', async () => {
  const disk = new Uint8Array(1 << 20);
  const writeBack = (): Target => {
    const cache = new Map<number, Uint8Array>();
    const base = ram(disk);
    return ram(disk, {
      caps: { flush: true },
      write: (buf, off) => {
        for (let i = 0; i < buf.byteLength; i += 512) cache.set(off + i, buf.slice(i, i + 512));
        return buf.byteLength;
      },
      read: (buf, off) => {
        base.read(buf, off);
        for (let i = 0; i < buf.byteLength; i += 512) { const c = cache.get(off + i); if (c) buf.set(c, i); }
        return buf.byteLength;
      },
      // Broken: resolves now and stores later; a crash in between loses acknowledged data.
      flush: () => { const dirty = [...cache]; setTimeout(() => { for (const [o, b] of dirty) disk.set(b, o); }, 5000).unref(); },
    });
  };
  const err = await checkTarget(writeBack(), { ops: 400, size: 256 * 1024, reopen: () => ram(disk) }).then(() => undefined, (e) => e);
  assert.ok(err instanceof TargetMismatch, String(err));
  assert.match(err.message, /after a crash/);
  // The same cache with a correct flush passes.
  const good = (): Target => {
    const cache = new Map<number, Uint8Array>();
    const base = ram(disk);
    return ram(disk, {
      caps: { flush: true },
      write: (buf, off) => { for (let i = 0; i < buf.byteLength; i += 512) cache.set(off + i, buf.slice(i, i + 512)); return buf.byteLength; },
      read: (buf, off) => {
        base.read(buf, off);
        for (let i = 0; i < buf.byteLength; i += 512) { const c = cache.get(off + i); if (c) buf.set(c, i); }
        return buf.byteLength;
      },
      flush: () => { for (const [o, b] of cache) disk.set(b, o); cache.clear(); },
    });
  };
  await checkTarget(good(), { ops: 400, size: 256 * 1024, reopen: () => ram(disk) });
});

test('seconds bounds the run; bad sizes are refused', async () => {
  const t0 = performance.now();
  const r = await checkTarget(memory.create({ size: '1M' }), { seconds: 0.3, depth: 4 });
  assert.ok(performance.now() - t0 < 5000 && r.ops.read + r.ops.write > 0);
  await assert.rejects(checkTarget(memory.create({ size: '1M' }), { size: 4 << 20 }), /within the target/);
  await assert.rejects(checkTarget(memory.create({ size: '1M' }), { size: 1000 }), /multiple of 512/);
});
