// The daemon killed with SIGKILL mid-IO: the kernel tears the device down, nothing hangs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { kernelSkipReason, hasProgram, addDevice, delDevice, listJson, waitFor, ublkNodes } from '../helpers/kernel.js';

const skip = kernelSkipReason() ?? (hasProgram('fio') ? undefined : 'fio is not installed');
const work = fs.mkdtempSync(path.join(os.homedir(), 'ublkit-kill-'));

function ioCount(id: number): number {
  try {
    const f = fs.readFileSync(`/sys/block/ublkb${id}/stat`, 'utf8').trim().split(/\s+/).map(Number);
    return f[0] + f[4];
  } catch {
    return 0;
  }
}

for (const flags of [[], ['-z']]) {
  test(`SIGKILL of the daemon under fio (${flags.join(' ') || 'copy'}): device goes away, fio ends, del works`, { skip }, async () => {
    const img = path.join(work, 'k.img');
    fs.writeFileSync(img, '');
    fs.truncateSync(img, 64 << 20);
    const id = addDevice(['-t', 'loop', '-q', '2', ...flags, img]);
    try {
      const { pid } = listJson(id);
      const fio = spawn('fio', ['--name=k', `--filename=/dev/ublkb${id}`, '--rw=randrw', '--direct=1', '--ioengine=libaio',
        '--bs=4k', '--iodepth=64', '--numjobs=2', '--time_based', '--runtime=60'], { stdio: 'ignore' });
      const fioDone = new Promise<number | null>((r) => fio.once('exit', (code) => r(code)));
      await waitFor(() => ioCount(id) > 1000, 60_000, 'IO to flow');
      process.kill(pid, 'SIGKILL');
      await waitFor(() => !fs.existsSync(`/dev/ublkb${id}`), 30_000, 'the block device to go away');
      const code = await Promise.race([fioDone, new Promise((r) => setTimeout(() => r('hung'), 30_000))]);
      assert.notEqual(code, 'hung', 'fio must not hang after the server died');
      assert.equal(listJson(id).state, 'DEAD');
    } finally {
      delDevice(id);
    }
    assert.ok(!ublkNodes().includes(`ublkc${id}`), 'del removed the char device');
    fs.rmSync(img);
  });
}
