// Integrity metadata (user copy) and shared-memory zero copy on the real driver.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { kernelSkipReason, hasProgram, withCliDevice, fioVerify, cli, sh, sparseFile } from '../helpers/kernel.js';

const skip = kernelSkipReason() ?? (hasProgram('fio') ? undefined : 'fio is not installed');
const work = fs.mkdtempSync(path.join(os.homedir(), 'ublkit-feat-'));
const features = skip ? '' : cli(['features']).stdout;

const img = (name: string, bytes: number) => sparseFile(work, name, bytes);

test('integrity: T10-DIF with reftag on loop; PI stored in the second file; corrupt PI fails the read', { skip: skip ?? (features.includes('INTEGRITY') ? undefined : 'kernel lacks integrity') }, async () => {
  const data = img('data.img', 32 << 20);
  const meta = img('meta.img', (32 << 20) / 512 * 8);
  await withCliDevice(['-t', 'loop', '-q', '1', '-u', '--metadata_size', '8', '--csum_type', 't10dif', '--integrity_reftag', '--integrity_capable', data, meta], (id, dev) => {
    const sys = `/sys/block/ublkb${id}/integrity`;
    assert.equal(fs.readFileSync(`${sys}/format`, 'utf8').trim(), 'T10-DIF-TYPE1-CRC');
    assert.equal(fs.readFileSync(`${sys}/device_is_integrity_capable`, 'utf8').trim(), '1');
    fioVerify(dev, '8M');
    // Block 0's tuple: the guard tag (CRC) is not 0xffff any more, it was generated on write.
    const fd = fs.openSync(meta, 'r+');
    const tuple = Buffer.alloc(8);
    fs.readSync(fd, tuple, 0, 8, 0);
    assert.notDeepEqual([...tuple], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    tuple[0] ^= 0xff;
    fs.writeSync(fd, tuple, 0, 8, 0);
    fs.closeSync(fd);
    const r = spawnSync('dd', [`if=${dev}`, 'of=/dev/null', 'bs=4k', 'count=1', 'iflag=direct'], { encoding: 'utf8' });
    assert.notEqual(r.status, 0, 'a read whose PI no longer matches must fail');
  });
});

test('shared-memory zero copy: fio with hugepage buffers registered by --htlb', { skip: skip ?? (features.includes('SHMEM_ZC') ? undefined : 'kernel lacks shmem zc') }, async (t) => {
  const mnt = path.join(work, 'huge');
  fs.mkdirSync(mnt);
  try {
    fs.writeFileSync('/proc/sys/vm/nr_hugepages', '32');
    sh('mount', ['-t', 'hugetlbfs', 'none', mnt]);
  } catch {
    t.skip('no hugetlbfs here');
    return;
  }
  try {
    const buf = path.join(mnt, 'buf');
    sh('fallocate', ['-l', '16M', buf]);
    await withCliDevice(['-t', 'loop', '-q', '1', '--shmem_zc', '--htlb', buf, img('shm.img', 32 << 20)], (_id, dev) => {
      fioVerify(dev, '8M', ['--ioengine=io_uring', '--bs=64k', '--iodepth=4', `--mem=mmaphuge:${buf}`]);
    });
  } finally {
    spawnSync('umount', [mnt]);
  }
});
