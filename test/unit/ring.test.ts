// Host-level tests of the Ring wrapper (io_uring only, no ublk).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { createRing } from '../../src/uring/ring.js';
import * as S from '../../src/uring/sqe.js';

test('reserve() submits queued SQEs first so a linked chain never straddles two submissions', () => {
  const ring = createRing(8, 0);
  try {
    for (let i = 0; i < 6; i++) S.prepNop(ring.sqes, ring.get());
    assert.equal(ring.unsubmitted, 6);
    ring.reserve(2);
    assert.equal(ring.unsubmitted, 6, 'room for 2 more: nothing submitted yet');
    ring.reserve(3);
    assert.equal(ring.unsubmitted, 0, 'no room for 3: the 6 queued were submitted');
    let seen = 0;
    ring.submit(6, true);
    ring.reap(() => void seen++);
    assert.equal(seen, 6);
    assert.throws(() => ring.reserve(9), /does not fit/);
  } finally {
    ring.close();
  }
});

/** A full GC, for checking what the ring keeps referenced. */
function gcNow(): () => void {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}
const tick = () => new Promise((r) => setImmediate(r));

test('the ring keeps what an SQE points at referenced until its completion, then lets go', async () => {
  const gc = gcNow();
  const ring = createRing(8, 0);
  try {
    // A ring op (promise) and a handler-routed SQE (hold), each pointing at a buffer nobody else keeps.
    const refs = ((): [WeakRef<ArrayBuffer>, WeakRef<ArrayBuffer>, Promise<number>] => {
      const a = new ArrayBuffer(4096);
      const b = new ArrayBuffer(4096);
      const p = ring.op((v, o) => S.prepNop(v, o), a);
      const o = ring.get();
      S.prepNop(ring.sqes, o);
      S.setUserData(ring.sqes, o, 5, 1);
      ring.hold(o, b);
      return [new WeakRef(a), new WeakRef(b), p];
    })();
    await tick();
    gc();
    assert.ok(refs[0].deref(), 'a ring op buffer is kept while its SQE is in flight');
    assert.ok(refs[1].deref(), 'a held buffer is kept while its SQE is in flight');
    ring.submit(2, true);
    let seen = 0;
    ring.reap(() => void seen++);
    assert.equal(seen, 1);
    assert.equal(await refs[2], 0);
    await tick();
    gc();
    assert.equal(refs[0].deref(), undefined, 'released after the CQE');
    assert.equal(refs[1].deref(), undefined, 'released after the CQE');
  } finally {
    ring.close();
  }
});
