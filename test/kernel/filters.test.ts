// Filter stacks on the real driver: fio verify through cow over loop (base file unchanged), the
// error filter's EIO reaching fio with no wrong data, and an offset window in zero copy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { kernelSkipReason, hasProgram, withCliDevice, fioVerify, sha256File, sparseFile, sh, lacks, listJson, cli, ublkIds } from '../helpers/kernel.js';

const skip = kernelSkipReason() ?? (hasProgram('fio') ? undefined : 'fio is not installed');
const work = fs.mkdtempSync(path.join(os.homedir(), 'ublkit-filters-'));
process.on('exit', () => fs.rmSync(work, { recursive: true, force: true }));

/** A backing file with non-zero content, so a cow that read zeroes instead of the base would show. */
function patterned(name: string, bytes: number): string {
  const f = sparseFile(work, name, bytes);
  const fd = fs.openSync(f, 'r+');
  for (let o = 0; o < bytes; o += 1 << 20) fs.writeSync(fd, Buffer.alloc(4096, 1 + ((o >> 20) & 0x7f)), 0, 4096, o);
  fs.closeSync(fd);
  return f;
}

const devSize = (dev: string) => Number(sh('blockdev', ['--getsize64', dev]).trim());

test('cow over loop: fio verify passes through the overlay and the base file is unchanged', { skip }, async () => {
  const base = patterned('base.img', 64 << 20);
  const overlay = path.join(work, 'overlay.img');
  const before = sha256File(base);
  await withCliDevice(['-t', 'loop', '-q', '1', '--filter', `cow:file=${overlay}`, base], (_id, dev) => {
    fioVerify(dev, '32M');
    // Reads of blocks nobody wrote come from the base.
    const r = spawnSync('dd', [`if=${dev}`, 'bs=4096', 'skip=15616', 'count=1', 'iflag=direct', 'status=none'], { maxBuffer: 1 << 20 });
    assert.equal(r.status, 0);
    assert.ok(r.stdout.every((x: number) => x === 1 + 61), 'block at 61 MiB reads the base');
  });
  assert.equal(sha256File(base), before, 'base file unchanged');
  // The overlay, non-empty now, is refused next time: one line, non-zero, no device left behind.
  const ids = ublkIds();
  const r = cli(['add', '-t', 'loop', '-q', '1', '--filter', `cow:file=${overlay}`, base]);
  const made = ublkIds().filter((i) => !ids.includes(i));
  for (const id of made) cli(['del', '-n', String(id)]);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /exists and is not empty/);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.deepEqual(made, []);
  assert.equal(sha256File(base), before);
});

test('error filter: EIO reaches fio, and no wrong data does', { skip }, async () => {
  await withCliDevice(['-t', 'memory', '-s', '64M', '-q', '1', '--filter', 'error:rate=0.02,op=read,errno=EIO,seed=3'], (_id, dev) => {
    const args = ['--name=verify', `--filename=${dev}`, '--rw=randwrite', '--direct=1', '--ioengine=libaio', '--bs=8k',
      '--iodepth=16', '--verify=crc32c', '--do_verify=1', '--verify_state_save=0', '--size=16M'];
    const r = spawnSync('fio', args, { encoding: 'utf8', timeout: 600_000 });
    const out = `${r.stdout}\n${r.stderr}`;
    assert.notEqual(r.status, 0, `fio should fail on EIO:\n${out}`);
    assert.match(out, /Input\/output error|error=EIO|err= *5/);
    assert.doesNotMatch(out, /verify failed|bad magic|bad header|verify: bad/, out);
  });
  // Writes in a byte range fail; writes outside it succeed.
  await withCliDevice(['-t', 'memory', '-s', '16M', '-q', '1', '--filter', 'error:op=write,from=4M,to=8M'], (_id, dev) => {
    const dd = (seek: number) => spawnSync('dd', ['if=/dev/zero', `of=${dev}`, 'bs=1M', `seek=${seek}`, 'count=1', 'oflag=direct', 'status=none'], { encoding: 'utf8' });
    assert.equal(dd(1).status, 0);
    const bad = dd(5);
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /Input\/output error/);
  });
});

test('offset window over loop in zero copy: route remapped, data lands inside the window only', { skip: skip ?? lacks('ZERO_COPY') }, async () => {
  const file = sparseFile(work, 'window.img', 64 << 20);
  await withCliDevice(['-t', 'loop', '-q', '1', '-z', '--filter', 'offset:offset=8M,range=16M', file], (id, dev) => {
    assert.equal(devSize(dev), 16 << 20);
    assert.match(listJson(id).mode, /zero/);
    fioVerify(dev, '16M');
  });
  const data = fs.readFileSync(file);
  assert.ok(data.subarray(0, 8 << 20).every((x) => x === 0), 'nothing before the window');
  assert.ok(data.subarray(24 << 20).every((x) => x === 0), 'nothing after the window');
  assert.ok(data.subarray(8 << 20, 24 << 20).some((x) => x !== 0), 'fio wrote inside the window');
});

test('rate filter: fio measures the read bandwidth within 10 % of read_bps', { skip }, async () => {
  // A limit far below what the device does even in a loaded emulator, and enough requests queued
  // that one always waits on the budget: what fio measures is then the limiter, not the machine.
  await withCliDevice(['-t', 'memory', '-s', '64M', '-q', '1', '--filter', 'rate:read_bps=2M'], (_id, dev) => {
    const r = spawnSync('fio', ['--name=rate', `--filename=${dev}`, '--rw=read', '--bs=64k', '--direct=1', '--ioengine=libaio',
      '--iodepth=16', '--ramp_time=1', '--runtime=6', '--time_based', '--output-format=json'], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    const bw = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))).jobs[0].read.bw_bytes as number;
    const want = 2 << 20;
    assert.ok(Math.abs(bw - want) <= want * 0.1, `read bandwidth ${bw} B/s, limit ${want} B/s`);
  });
});
