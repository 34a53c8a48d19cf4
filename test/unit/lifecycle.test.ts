// Lifecycle pieces without a kernel: del -a's exit status, the recover fingerprint, the old-kernel message,
// options refused before any device exists.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from '../../src/cli/args.js';
import { deleteEach } from '../../src/cli/commands/del.js';
import { fingerprint } from '../../src/cli/fingerprint.js';
import { featuresError, OLDEST_KERNEL } from '../../src/ublk/control.js';
import { UblkError } from '../../src/errors.js';
import { Device } from '../../src/ublk/device.js';

test('del -a: one failed deletion makes the exit status non-zero, the others still run', async () => {
  const lines: string[] = [];
  const done: number[] = [];
  const one = async (id: number) => {
    if (id === 2) throw new UblkError('EBUSY', 'DEL_DEV (dev 2): EBUSY');
    done.push(id);
  };
  assert.equal(await deleteEach([1, 2, 3], one, (l) => lines.push(l)), 1);
  assert.deepEqual(done, [1, 3]);
  assert.deepEqual(lines, ['ublkit: del 2: DEL_DEV (dev 2): EBUSY\n']);
  assert.equal(await deleteEach([1, 3], one, (l) => lines.push(l)), 0);
});

test('recover fingerprint: type, files by identity and order, chunk size; not queues or modes', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ublkit-fp-'));
  const [a, b] = ['a.img', 'b.img'].map((n) => {
    const f = path.join(dir, n);
    fs.writeFileSync(f, Buffer.alloc(4096));
    return f;
  });
  const fp = (s: string) => fingerprint(parseArgs(['add', ...s.split(' ')]));
  const base = fp(`-t stripe --chunk_size 8192 ${a} ${b}`);
  assert.ok(base !== undefined && base >> 56n === 0xb1n);
  assert.equal(fp(`-t stripe -q 4 -z --chunk_size 8192 ${a} ${b}`), base);
  assert.notEqual(fp(`-t stripe --chunk_size 4096 ${a} ${b}`), base);
  assert.notEqual(fp(`-t stripe --chunk_size 8192 ${b} ${a}`), base);
  assert.notEqual(fp(`-t loop ${a}`), fp(`-t loop ${b}`));
  // Another path to the same file is the same file.
  fs.symlinkSync(a, path.join(dir, 'link'));
  assert.equal(fp(`-t loop ${path.join(dir, 'link')}`), fp(`-t loop ${a}`));
  assert.equal(fp(`-t loop ${path.join(dir, 'missing')}`), undefined);
  fs.rmSync(dir, { recursive: true });
});

test('recover fingerprint of nbd: the server and the export, not connections or timeout', () => {
  const fp = (s: string) => fingerprint(parseArgs(['add', '-t', 'nbd', ...s.split(' ')]));
  const base = fp('--unix /run/a.sock --export disk');
  assert.ok(base !== undefined);
  assert.equal(fp('--unix /run/a.sock --export disk --connections 2 --timeout 5 -q 2'), base);
  assert.notEqual(fp('--unix /run/b.sock --export disk'), base);
  assert.notEqual(fp('--unix /run/a.sock --export other'), base);
  assert.notEqual(fp('--host 127.0.0.1 --export disk'), base);
  assert.equal(fp('--host 127.0.0.1 --port 10809'), fp('--host 127.0.0.1'));
  assert.notEqual(fp('--host 127.0.0.1 --port 10810'), fp('--host 127.0.0.1'));
});

test('a kernel without GET_FEATURES is told the oldest kernel supported', () => {
  const e = featuresError(new UblkError('EOPNOTSUPP', 'GET_FEATURES (dev 4294967295): EOPNOTSUPP'), '6.1.0-13-amd64');
  assert.match(e.message, new RegExp(`Linux ${OLDEST_KERNEL} or newer, this is 6\\.1\\.0-13-amd64`));
  assert.equal(featuresError(new UblkError('EPERM'), 'x').code, 'EPERM');
});

test('Device.create refuses a maxIoBufBytes the kernel would round or overflow, before any device exists', async () => {
  const target = { size: 1 << 20, read: (b: Uint8Array) => b.byteLength, write: (b: Uint8Array) => b.byteLength };
  for (const maxIoBufBytes of [5000, 0, 64 << 20, 1.5]) {
    await assert.rejects(Device.create({ target, maxIoBufBytes }), (e: Error & { code?: string }) => e.code === 'EINVAL' && /maxIoBufBytes/.test(e.message));
  }
});
