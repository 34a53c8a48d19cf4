// Host-level tests of the Ring wrapper (io_uring only, no ublk).
import { test } from 'node:test';
import assert from 'node:assert/strict';
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
