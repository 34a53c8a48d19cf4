// The library API: a custom TypeScript target object in this thread, and a module target in workers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Device, Control, builtinTargets } from '../../src/index.js';
import { create as createXor } from '../../examples/xor-file.js';
import { kernelSkipReason, sh, shAsync } from '../helpers/kernel.js';

const skip = kernelSkipReason();
const work = fs.mkdtempSync(path.join(os.homedir(), 'ublkit-lib-'));

test('example xor-file target: data reaches the file scrambled and reads back clear', { skip }, async () => {
  const file = path.join(work, 'xor.img');
  fs.writeFileSync(file, Buffer.alloc(8 << 20));
  const dev = await Device.create({ target: createXor({ file, key: 0x5a }), queues: 1, depth: 16 });
  try {
    assert.ok(fs.existsSync(dev.blockPath));
    const pattern = Buffer.alloc(1 << 20);
    for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 13) & 0xff;
    const src = path.join(work, 'pattern.bin');
    fs.writeFileSync(src, pattern);
    await shAsync('dd', [`if=${src}`, `of=${dev.blockPath}`, 'bs=64k', 'seek=1', 'oflag=direct', 'status=none']);
    const back = await shAsync('sh', ['-c', `dd if=${dev.blockPath} bs=64k skip=1 count=16 iflag=direct status=none | sha256sum`]);
    assert.equal(back.split(' ')[0], sh('sha256sum', [src]).split(' ')[0]);
    const raw = Buffer.alloc(16);
    const fd = fs.openSync(file, 'r');
    fs.readSync(fd, raw, 0, 16, 65536);
    fs.closeSync(fd);
    assert.deepEqual([...raw], [...pattern.subarray(0, 16)].map((b) => b ^ 0x5a));
  } finally {
    await dev.delete();
  }
  assert.ok(!fs.existsSync(dev.blockPath) && !fs.existsSync(dev.charPath));
});

test('module target served by two worker threads (memory, 2 queues)', { skip }, async () => {
  const dev = await Device.create({
    target: { module: new URL('../../src/targets/memory/index.js', import.meta.url).href, config: { size: 16 << 20 } },
    queues: 2, depth: 32,
  });
  try {
    assert.equal(dev.info.nrHwQueues, 2);
    const ctrl = new Control();
    try {
      const viaPath = await ctrl.getDevInfo2(dev.id);
      assert.equal(viaPath.devId, dev.id);
      assert.equal(viaPath.ublksrvPid, process.pid);
    } finally {
      ctrl.close();
    }
    sh('sh', ['-c', `dd if=/dev/urandom of=${work}/r.bin bs=1M count=4 status=none`]);
    sh('dd', [`if=${work}/r.bin`, `of=${dev.blockPath}`, 'bs=1M', 'oflag=direct', 'status=none']);
    const back = sh('sh', ['-c', `dd if=${dev.blockPath} bs=1M count=4 iflag=direct status=none | sha256sum`]);
    assert.equal(back.split(' ')[0], sh('sha256sum', [`${work}/r.bin`]).split(' ')[0]);
  } finally {
    await dev.delete();
  }
});

test('built-in targets by name through the catalogue passed in, in worker threads (null, 2 queues)', { skip }, async () => {
  // Each worker imports the catalogue again from builtinTargets.url: functions cannot cross threads.
  const dev = await Device.create({
    target: { module: 'ublkit:null', config: { size: 16 << 20 } }, targets: builtinTargets, queues: 2, depth: 8,
  });
  try {
    assert.equal(dev.info.nrHwQueues, 2);
    const nonZero = sh('sh', ['-c', `dd if=${dev.blockPath} bs=1M count=4 iflag=direct status=none | tr -d '\\000' | wc -c`]);
    assert.equal(nonZero.trim(), '0', 'the null target reads zeroes');
  } finally {
    await dev.delete();
  }
});

test('a target that throws or over-reports fails the IO with an error, never stale data', { skip }, async () => {
  let calls = 0;
  const dev = await Device.create({
    target: {
      size: 1 << 20,
      read(buf) {
        calls++;
        if (calls % 2) throw new Error('boom');
        return buf.byteLength + 512; // more than asked: must become -EIO
      },
      write: (buf) => buf.byteLength,
    },
    queues: 1, depth: 4, mode: 'copy',
  });
  try {
    await assert.rejects(shAsync('dd', [`if=${dev.blockPath}`, 'of=/dev/null', 'bs=4k', 'count=1', 'iflag=direct', 'status=none']));
  } finally {
    await dev.delete();
  }
});
