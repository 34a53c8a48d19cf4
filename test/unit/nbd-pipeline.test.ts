// The nbd target's pipelining without ublk, against nbdkit on a private Unix socket (skipped without
// it): writes queued behind the send in flight go out gathered in one SENDMSG, whole and in order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Kit, withNbdTarget } from '../helpers/nbd.js';

const skip = spawnSync('nbdkit', ['--version']).status === 0 ? false : 'nbdkit is not installed';

function pattern(seed: number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 13 + seed * 101 + (i >> 12)) & 0xff;
  return b;
}

test('nbd: 16 pipelined 256 KiB writes, most sent gathered behind the first, read back intact', { skip }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nbd-pipe-'));
  const kit = new Kit(path.join(dir, 'sock'));
  try {
    await kit.start(['memory', 'size=8M']);
    await withNbdTarget({ unix: kit.sock }, async (t) => {
      const n = 256 * 1024;
      // Sizes vary so an iovec out of place or cut short shows as a shifted pattern.
      const lens = Array.from({ length: 16 }, (_, i) => n - (i % 4) * 4096);
      await Promise.all(lens.map((len, i) => t.write(pattern(i, len), i * n, { fua: false })));
      const back = await Promise.all(lens.map(async (len, i) => {
        const b = new Uint8Array(len);
        await t.read(b, i * n);
        return b;
      }));
      back.forEach((b, i) => assert.deepEqual(b, pattern(i, lens[i]), `write ${i}`));
    });
  } finally {
    await kit.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
