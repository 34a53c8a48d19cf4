// A real file system on ublkit: mkfs.ext4, a tree of files, umount/fsck/remount, data kept in the file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { kernelSkipReason, hasProgram, withCliDevice, sh, dmesgMark, dmesgProblems, cli } from '../helpers/kernel.js';

const skip = kernelSkipReason() ?? (hasProgram('mkfs.ext4') ? undefined : 'mkfs.ext4 is not installed');
const work = fs.mkdtempSync(path.join(os.homedir(), 'ublkit-fs-'));

function writeTree(dir: string): Map<string, string> {
  const sums = new Map<string, string>();
  for (let d = 0; d < 4; d++) {
    fs.mkdirSync(path.join(dir, `d${d}`), { recursive: true });
    for (let f = 0; f < 8; f++) {
      const p = path.join(dir, `d${d}`, `f${f}.bin`);
      const data = Buffer.alloc(1024 * (1 + ((d * 8 + f) * 37) % 300));
      for (let i = 0; i < data.length; i++) data[i] = (i * 31 + d * 7 + f) & 0xff;
      fs.writeFileSync(p, data);
      sums.set(`d${d}/f${f}.bin`, sh('sha256sum', [p]).split(' ')[0]);
    }
  }
  return sums;
}

function checkTree(dir: string, sums: Map<string, string>): void {
  for (const [rel, sum] of sums) assert.equal(sh('sha256sum', [path.join(dir, rel)]).split(' ')[0], sum, rel);
}

const features = skip ? '' : cli(['features']).stdout;

for (const [mode, flags] of [['copy', []], ['zero-copy', ['-z']]] as Array<[string, string[]]>) {
  const why = skip ?? (flags.length && !features.includes('ZERO_COPY') ? 'kernel lacks zero copy' : undefined);
  test(`ext4 on loop (${mode}): mkfs, files, umount, fsck, remount, and the data stays in the file after del`, { skip: why }, async () => {
    const mark = dmesgMark('fs');
    const img = path.join(work, `${mode}.img`);
    fs.writeFileSync(img, '');
    fs.truncateSync(img, 128 << 20);
    const mnt = fs.mkdtempSync(path.join(work, 'mnt-'));
    let sums = new Map<string, string>();
    await withCliDevice(['-t', 'loop', '-q', '2', ...flags, img], (_id, dev) => {
      sh('mkfs.ext4', ['-q', '-F', dev]);
      sh('mount', ['-t', 'ext4', dev, mnt]);
      try {
        sums = writeTree(mnt);
        sh('sync', []);
      } finally {
        sh('umount', [mnt]);
      }
      sh('fsck.ext4', ['-f', '-n', dev]);
      sh('mount', ['-t', 'ext4', dev, mnt]);
      try {
        checkTree(mnt, sums);
      } finally {
        sh('umount', [mnt]);
      }
    });
    // A new device over the same file sees the same file system: the data lived in the file.
    await withCliDevice(['-t', 'loop', '-q', '1', img], (_id, dev) => {
      sh('fsck.ext4', ['-f', '-n', dev]);
      sh('mount', ['-t', 'ext4', '-o', 'ro', dev, mnt]);
      try {
        checkTree(mnt, sums);
      } finally {
        sh('umount', [mnt]);
      }
    });
    fs.rmSync(img);
    assert.deepEqual(dmesgProblems(mark), []);
  });
}
