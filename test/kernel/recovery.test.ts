// Recovery and quiesce: a new server takes over a device whose server died or was quiesced, and
// no acknowledged write is lost (fio verifies across a SIGKILL); stripe and fault_inject targets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { CLI, sparseFile, kernelSkipReason, hasProgram, addDevice, cli, delDevice, listJson, waitFor, withCliDevice, fioVerify } from '../helpers/kernel.js';

const skip = kernelSkipReason() ?? (hasProgram('fio') ? undefined : 'fio is not installed');
const work = fs.mkdtempSync(path.join(os.homedir(), 'ublkit-rec-'));
const features = skip ? '' : cli(['features']).stdout;

const img = (name: string, mib: number) => sparseFile(work, name, mib << 20);

function writes(id: number): number {
  try {
    return Number(fs.readFileSync(`/sys/block/ublkb${id}/stat`, 'utf8').trim().split(/\s+/)[4]);
  } catch {
    return 0;
  }
}

for (const flags of [['-i', '1'], ['-i', '1', '-z']]) {
  const why = skip ?? (!features.includes('USER_RECOVERY') ? 'kernel lacks user recovery' : flags.includes('-z') && !features.includes('ZERO_COPY') ? 'no zero copy' : undefined);
  test(`SIGKILL under fio verify, recover ${flags.join(' ')}: no acknowledged write lost`, { skip: why }, async () => {
    const file = img('rec.img', 64);
    const args = ['-t', 'loop', '-q', '2', ...flags, file];
    const id = addDevice(args);
    try {
      const fio = spawn('fio', ['--name=rec', `--filename=/dev/ublkb${id}`, '--rw=randwrite', '--direct=1', '--ioengine=libaio',
        '--bs=8k', '--iodepth=32', '--size=32M', '--verify=crc32c', '--do_verify=1', '--verify_state_save=0'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      fio.stdout.on('data', (d) => (out += d));
      fio.stderr.on('data', (d) => (out += d));
      const done = new Promise<number | null>((r) => fio.once('exit', (c) => r(c)));
      await waitFor(() => writes(id) > 500, 60_000, 'writes to flow');
      process.kill(listJson(id).pid, 'SIGKILL');
      await waitFor(() => listJson(id).state === 'QUIESCED', 30_000, 'QUIESCED after the kill');
      const r = cli(['recover', '-n', String(id), ...args]);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(listJson(id).state, 'LIVE');
      assert.equal(await done, 0, `fio must finish and verify cleanly:\n${out}`);
    } finally {
      delDevice(id);
    }
  });
}

test('quiesce then recover: the device comes back LIVE and keeps its data', { skip: skip ?? (!features.includes('QUIESCE') ? 'kernel lacks quiesce' : undefined) }, async () => {
  const file = img('q.img', 32);
  const args = ['-t', 'loop', '-q', '1', '-r', '1', file];
  const id = addDevice(args);
  try {
    spawnSync('sh', ['-c', `dd if=/dev/urandom of=${work}/p.bin bs=1M count=4 status=none && dd if=${work}/p.bin of=/dev/ublkb${id} bs=1M oflag=direct status=none`]);
    assert.equal(cli(['quiesce', '-n', String(id)]).status, 0);
    await waitFor(() => listJson(id).state === 'QUIESCED', 30_000, 'QUIESCED');
    assert.equal(cli(['recover', '-n', String(id), ...args]).status, 0);
    const same = spawnSync('bash', ['-c', `cmp <(dd if=/dev/ublkb${id} bs=1M count=4 iflag=direct status=none) ${work}/p.bin`], { encoding: 'utf8' });
    assert.equal(same.status, 0, same.stdout + same.stderr);
  } finally {
    delDevice(id);
  }
});

test('recovery with fail-io (-e 1): IO fails while no server, works again after recover', { skip: skip ?? (!features.includes('FAIL_IO') ? 'kernel lacks fail-io recovery' : undefined) }, async () => {
  const file = img('e.img', 16);
  const args = ['-t', 'loop', '-q', '1', '-e', '1', file];
  const id = addDevice(args);
  try {
    process.kill(listJson(id).pid, 'SIGKILL');
    await waitFor(() => listJson(id).state === 'FAIL_IO', 30_000, 'FAIL_IO');
    assert.notEqual(spawnSync('dd', [`if=/dev/ublkb${id}`, 'of=/dev/null', 'bs=4k', 'count=1', 'iflag=direct'], { timeout: 30_000 }).status, 0);
    assert.equal(cli(['recover', '-n', String(id), ...args]).status, 0);
    assert.equal(spawnSync('dd', [`if=/dev/ublkb${id}`, 'of=/dev/null', 'bs=4k', 'count=1', 'iflag=direct'], { timeout: 30_000 }).status, 0);
  } finally {
    delDevice(id);
  }
});

for (const flags of [[], ['-z']]) {
  test(`stripe over 3 files ${flags.join(' ') || 'copy'}: fio verify`, { skip }, async () => {
    const files = [img('s0', 16), img('s1', 16), img('s2', 16)];
    await withCliDevice(['-t', 'stripe', '--chunk_size', '8192', ...flags, ...files], (id, dev) => {
      assert.equal(listJson(id).sizeBytes, 48 << 20);
      fioVerify(dev, '32M', ['--bs=32k']);
    });
  });
}

test('fault_inject: --delay_us slows IO; --die_during_fetch dies with SIGKILL (137) and leaves the device deletable', { skip }, async () => {
  await withCliDevice(['-t', 'fault_inject', '-q', '1', '--delay_us', '20000'], (_id, dev) => {
    const t0 = Date.now();
    spawnSync('dd', [`if=${dev}`, 'of=/dev/null', 'bs=4k', 'count=20', 'iflag=direct']);
    assert.ok(Date.now() - t0 >= 20 * 20, 'each IO waited its delay');
  });
  const r = spawnSync(process.execPath, [CLI, 'add', '-t', 'fault_inject', '-q', '1', '-r', '1', '--die_during_fetch', '1', '--foreground'], { timeout: 60_000 });
  assert.equal(r.status ?? 128 + 9, 137);
  assert.equal(cli(['del', '-a']).status, 0);
});
