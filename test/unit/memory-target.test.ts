// The memory target without a kernel: IO at its end reports only the bytes really moved, and the
// CLI refuses recovery for it (the data dies with the server) before any device exists.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { create, prepare } from '../../src/targets/memory/index.js';
import { parseArgs } from '../../src/cli/args.js';
import { deviceOptions } from '../../src/cli/add-options.js';

const CLI = fileURLToPath(new URL('../../src/cli/ublkit.cjs', import.meta.url));

test('memory: a read or write crossing the end moves and reports only the bytes inside', () => {
  const t = create(prepare({ size: 1 << 20 }));
  const buf = new Uint8Array(8192).fill(0xee);
  assert.equal(t.write(new Uint8Array(8192).fill(7), (1 << 20) - 4096, { fua: false }), 4096);
  assert.equal(t.read(buf, (1 << 20) - 4096), 4096, 'half the buffer lies past the end');
  assert.ok(buf.subarray(0, 4096).every((b) => b === 7));
  assert.ok(buf.subarray(4096).every((b) => b === 0xee), 'bytes past the end are not touched');
  assert.equal(t.read(buf, 1 << 20), 0);
  assert.equal(t.read(buf, (1 << 20) + 65536), 0);
  assert.equal(t.write(buf, (1 << 20) + 65536, { fua: false }), 0);
});

test('memory: -r/-i/-e and recover are refused with one line, before any device is made', () => {
  const opts = (s: string) => deviceOptions(parseArgs(s.split(' ')));
  for (const r of ['-r 1', '-i 1', '-e 1']) assert.throws(() => opts(`add -t memory --size 16M ${r}`), /memory target cannot be recovered/);
  assert.throws(() => opts('recover -t memory --size 16M -n 0'), /memory target cannot be recovered/);
  assert.doesNotThrow(() => opts('add -t memory --size 16M -r 0'));
  assert.doesNotThrow(() => opts('add -t loop -r 1 disk.img'));
  // The CLI itself: one line on stderr, non-zero, and it stops before touching the driver.
  const r = spawnSync(process.execPath, [CLI, 'add', '-t', 'memory', '--size', '16M', '-i', '1'], { encoding: 'utf8' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /memory target cannot be recovered/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
});
