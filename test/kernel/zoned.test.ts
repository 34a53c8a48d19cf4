// Zoned devices on a real kernel: blkzone report/reset and zone ops, fio in zbd mode with verify,
// and zoned file systems (f2fs; btrfs, whose data goes by zone append) end to end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { kernelSkipReason, lacks, hasProgram, withCliDevice, sh, dmesgMark, dmesgProblems, cli, ublkIds } from '../helpers/kernel.js';

const skip = kernelSkipReason() ?? lacks('ZONED', 'USER_COPY');
const MiB = 1 << 20;

interface Zone { start: number; len: number; wp: number; cond: number; type: number }

/** `blkzone report` parsed: start, len and write pointer (offset in the zone) in sectors. */
function report(dev: string): Zone[] {
  const out = sh('blkzone', ['report', dev]);
  return out.trim().split('\n').map((l) => {
    const m = /start: (0x[0-9a-f]+), len (0x[0-9a-f]+), (?:cap 0x[0-9a-f]+, )?wptr (0x[0-9a-f]+).*zcond:\s*(\d+).*type:\s*(\d+)/.exec(l);
    if (!m) throw new Error(`unexpected blkzone line: ${l}`);
    return { start: Number(m[1]), len: Number(m[2]), wp: Number(m[3]), cond: Number(m[4]), type: Number(m[5]) };
  });
}

function dd(dev: string, offBytes: number, bytes: number): { status: number; stderr: string } {
  const r = spawnSync('dd', ['if=/dev/urandom', `of=${dev}`, 'bs=4096', `count=${bytes / 4096}`, `seek=${offBytes / 4096}`, 'oflag=direct', 'conv=notrunc'], { encoding: 'utf8' });
  return { status: r.status ?? 1, stderr: r.stderr };
}

function sysfs(dev: string, attr: string): string {
  return fs.readFileSync(`/sys/block/${path.basename(dev)}/queue/${attr}`, 'utf8').trim();
}

test('zoned: sysfs geometry, blkzone report, writes at the pointer only, open/close/finish/reset', { skip }, async () => {
  const mark = dmesgMark('zoned');
  await withCliDevice(['-t', 'zoned', '-u', '-q', '1', '--size', '64M', '--zone_size', '4M', '--conventional', '2', '--max_open', '4', '--max_active', '6'], (_id, dev) => {
    assert.equal(sysfs(dev, 'zoned'), 'host-managed');
    assert.equal(sysfs(dev, 'chunk_sectors'), String(8192));
    assert.equal(sysfs(dev, 'nr_zones'), '16');
    assert.equal(sysfs(dev, 'max_open_zones'), '4');
    assert.equal(sysfs(dev, 'max_active_zones'), '6');
    let zs = report(dev);
    assert.equal(zs.length, 16);
    assert.deepEqual(zs.map((z) => z.type), [1, 1, ...Array(14).fill(2)]);
    assert.deepEqual(zs.map((z) => z.cond), [0, 0, ...Array(14).fill(1)]);
    assert.ok(zs.every((z, i) => z.start === i * 8192 && z.len === 8192));
    assert.ok(zs.slice(2).every((z) => z.wp === 0));
    // Zone 2: a write at the pointer moves it; one elsewhere fails.
    assert.equal(dd(dev, 8 * MiB, MiB).status, 0);
    assert.notEqual(dd(dev, 8 * MiB + 2 * MiB, 4096).status, 0, 'a write off the write pointer fails');
    // After a failed write the kernel's zone write plug (6.10+) fails further writes to the zone
    // until a report zones resyncs its write pointer, as on any zoned disk.
    assert.equal(report(dev)[2].wp, 2048, 'the failed write moved nothing');
    assert.equal(dd(dev, 9 * MiB, 4096).status, 0, 'the next write at the pointer works');
    zs = report(dev);
    assert.deepEqual([zs[2].wp, zs[2].cond], [2048 + 8, 2]);
    // Conventional zone 0: anywhere, in any order.
    assert.equal(dd(dev, 2 * MiB, 4096).status, 0);
    assert.equal(dd(dev, 0, 4096).status, 0);
    // Zone management through the ioctls.
    sh('blkzone', ['open', '-o', String(3 * 8192), '-c', '1', dev]);
    assert.equal(report(dev)[3].cond, 3);
    sh('blkzone', ['close', '-o', String(2 * 8192), '-c', '1', dev]);
    assert.equal(report(dev)[2].cond, 4);
    sh('blkzone', ['finish', '-o', String(4 * 8192), '-c', '1', dev]);
    assert.deepEqual([report(dev)[4].cond, report(dev)[4].wp], [0xe, 8192]);
    assert.notEqual(dd(dev, 16 * MiB, 4096).status, 0, 'a full zone refuses writes');
    sh('blkzone', ['reset', '-o', String(2 * 8192), '-c', '3', dev]);
    zs = report(dev);
    assert.ok(zs.slice(2, 5).every((z) => z.cond === 1 && z.wp === 0), 'reset empties the zones');
    const back = Buffer.alloc(4096, 1);
    const fd = fs.openSync(dev, 'r');
    try {
      fs.readSync(fd, back, 0, 4096, 8 * MiB);
    } finally {
      fs.closeSync(fd);
    }
    assert.ok(back.every((b) => b === 0), 'a reset zone reads zeroes');
    sh('blkzone', ['reset', dev]);
    assert.ok(report(dev).slice(2).every((z) => z.cond === 1 && z.wp === 0));
  });
  assert.deepEqual(dmesgProblems(mark), []);
});

test('zoned: fio zonemode=zbd sequential writes with crc32c verify', { skip: skip ?? (hasProgram('fio') ? undefined : 'fio is not installed') }, async () => {
  const mark = dmesgMark('zoned-fio');
  await withCliDevice(['-t', 'zoned', '-u', '-q', '2', '--size', '64M', '--zone_size', '4M', '--max_open', '8'], (_id, dev) => {
    const args = ['--name=zbd', `--filename=${dev}`, '--zonemode=zbd', '--direct=1', '--rw=write', '--bs=64k', '--ioengine=libaio',
      '--iodepth=4', '--max_open_zones=4', '--verify=crc32c', '--do_verify=1', '--verify_state_save=0', '--size=32M'];
    const r = spawnSync('fio', args, { encoding: 'utf8', timeout: 600_000 });
    assert.equal(r.status, 0, `fio failed:\n${r.stdout}\n${r.stderr}`);
    const zs = report(dev);
    assert.ok(zs.slice(0, 8).every((z) => z.cond === 0xe), 'the first 32 MiB of zones written to the end');
    assert.ok(zs.slice(8).every((z) => z.cond === 1), 'the rest untouched');
  });
  assert.deepEqual(dmesgProblems(mark), []);
});

function writeTree(dir: string): Map<string, string> {
  const sums = new Map<string, string>();
  for (let d = 0; d < 3; d++) {
    fs.mkdirSync(path.join(dir, `d${d}`), { recursive: true });
    for (let f = 0; f < 6; f++) {
      const data = Buffer.alloc(4096 * (1 + ((d * 6 + f) * 37) % 200));
      for (let i = 0; i < data.length; i++) data[i] = (i * 31 + d * 7 + f) & 0xff;
      const p = path.join(dir, `d${d}`, `f${f}.bin`);
      fs.writeFileSync(p, data);
      sums.set(`d${d}/f${f}.bin`, sh('sha256sum', [p]).split(' ')[0]);
    }
  }
  return sums;
}

function checkTree(dir: string, sums: Map<string, string>): void {
  for (const [rel, sum] of sums) assert.equal(sh('sha256sum', [path.join(dir, rel)]).split(' ')[0], sum, rel);
}

/** mkfs, mount, a tree of files, umount, fsck, remount and compare. */
async function fsRoundTrip(fsType: string, addArgs: string[], mkfs: string[], fsck: string[]): Promise<void> {
  const mark = dmesgMark(`zoned-${fsType}`);
  const mnt = fs.mkdtempSync(path.join(os.tmpdir(), `ublkit-zoned-${fsType}-`));
  try {
    await withCliDevice(['-t', 'zoned', '-u', '-q', '1', ...addArgs], (_id, dev) => {
      sh(mkfs[0], [...mkfs.slice(1), dev]);
      sh('mount', ['-t', fsType, dev, mnt]);
      let sums: Map<string, string>;
      try {
        sums = writeTree(mnt);
        sh('sync', []);
      } finally {
        sh('umount', [mnt]);
      }
      sh(fsck[0], [...fsck.slice(1), dev]);
      sh('mount', ['-t', fsType, dev, mnt]);
      try {
        checkTree(mnt, sums);
      } finally {
        sh('umount', [mnt]);
      }
    });
  } finally {
    fs.rmSync(mnt, { recursive: true, force: true });
  }
  assert.deepEqual(dmesgProblems(mark), []);
}

test('zoned: f2fs end to end (mkfs -m, files, umount, fsck, remount, compare)', { skip: skip ?? (hasProgram('mkfs.f2fs') ? undefined : 'mkfs.f2fs is not installed (f2fs-tools)') }, async () => {
  // f2fs keeps its metadata in conventional zones and its sections match the zones.
  await fsRoundTrip('f2fs', ['--size', '256M', '--zone_size', '4M', '--conventional', '8'], ['mkfs.f2fs', '-q', '-f', '-m'], ['fsck.f2fs', '-f']);
});

test('zoned: btrfs end to end, data by zone append (mkfs -O zoned, files, umount, check, remount, compare)', { skip: skip ?? (hasProgram('mkfs.btrfs') ? undefined : 'mkfs.btrfs is not installed (btrfs-progs)') }, async () => {
  await fsRoundTrip('btrfs', ['--size', '512M', '--zone_size', '4M'], ['mkfs.btrfs', '-q', '-f', '-O', 'zoned', '-d', 'single', '-m', 'single'], ['btrfs', 'check', '--readonly']);
});

test('zoned: without -u the add fails with one line and leaves no device', { skip }, () => {
  const before = ublkIds();
  const r = cli(['add', '-t', 'zoned', '--size', '64M', '--zone_size', '4M']);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /user copy/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  assert.deepEqual(ublkIds(), before);
});
