// -t nbd when the server fails: nbdkit killed and restarted under fio verify, a server gone past
// --timeout and then back, injected errors (EIO, never a verify mismatch), the daemon SIGKILLed and
// recovered onto the same server; and list --json naming the backend. Servers run here, in the VM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { kernelSkipReason, hasProgram, addDevice, delDevice, cli, listJson, waitFor } from '../helpers/kernel.js';
import { Kit } from '../helpers/nbd.js';

const skip = kernelSkipReason() ?? (!hasProgram('nbdkit') ? 'nbdkit is not installed' : !hasProgram('fio') ? 'fio is not installed' : undefined);

/** A private directory with a backing file for nbdkit's file plugin; the server and the directory go after. */
async function scene(mib: number, body: (kit: Kit, img: string, dir: string) => Promise<void>): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ublkit-nbdf-'));
  const kit = new Kit(path.join(dir, 'nbd.sock'));
  const img = path.join(dir, 'disk.img');
  fs.writeFileSync(img, '');
  fs.truncateSync(img, mib << 20);
  try {
    await body(kit, img, dir);
  } finally {
    await kit.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function withDevice(args: string[], body: (id: number, dev: string) => Promise<void>): Promise<void> {
  const id = addDevice(args);
  try {
    await body(id, `/dev/ublkb${id}`);
  } finally {
    delDevice(id);
  }
}

function completedWrites(id: number): number {
  try {
    return Number(fs.readFileSync(`/sys/block/ublkb${id}/stat`, 'utf8').trim().split(/\s+/)[4]);
  } catch {
    return 0;
  }
}

/** fio randwrite then verify on `dev`, in the background; resolves with its exit status and output. */
function fioInBackground(dev: string, size: string): Promise<{ status: number | null; out: string }> {
  const fio = spawn('fio', ['--name=nbdf', `--filename=${dev}`, '--rw=randwrite', '--direct=1', '--ioengine=libaio',
    '--bs=8k', '--iodepth=32', `--size=${size}`, '--verify=crc32c', '--do_verify=1', '--verify_state_save=0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  fio.stdout.on('data', (d) => (out += d));
  fio.stderr.on('data', (d) => (out += d));
  return new Promise((r) => fio.once('exit', (status) => r({ status, out })));
}

const dd = (args: string[]) => spawnSync('dd', [...args, 'status=none'], { encoding: 'utf8', timeout: 120_000 });

test('nbd: nbdkit killed and restarted on its socket mid-fio: fio finishes and verifies; list names the backend', { skip }, () =>
  scene(64, async (kit, img) => {
    await kit.start(['file', img]);
    await withDevice(['-t', 'nbd', '--unix', kit.sock, '-q', '1', '-d', '32'], async (id, dev) => {
      assert.equal((listJson(id) as { backend?: string }).backend, `nbd+unix:///?socket=${kit.sock}`);
      const fio = fioInBackground(dev, '32M');
      await waitFor(() => completedWrites(id) > 500, 120_000, 'writes to flow');
      await kit.stop();
      await kit.start(['file', img]);
      const r = await fio;
      assert.equal(r.status, 0, `fio must finish and verify:\n${r.out}`);
    });
  }));

test('nbd: a server gone past --timeout fails IO with EIO; once it is back IO works again', { skip }, () =>
  scene(16, async (kit, img, dir) => {
    await kit.start(['file', img]);
    await withDevice(['-t', 'nbd', '--unix', kit.sock, '-q', '1', '--timeout', '3'], async (_id, dev) => {
      await kit.stop();
      const t0 = Date.now();
      const r = dd([`if=${dev}`, 'of=/dev/null', 'bs=4k', 'count=1', 'skip=100', 'iflag=direct']);
      assert.notEqual(r.status, 0, 'the read fails while the server is away');
      assert.match(r.stderr, /Input\/output error/);
      assert.ok(Date.now() - t0 >= 2500, `failed after the timeout, not at once (${Date.now() - t0} ms)`);
      await kit.start(['file', img]);
      const pattern = path.join(dir, 'p.bin');
      fs.writeFileSync(pattern, Buffer.alloc(4096, 0x5a));
      // The first tries may still wait out a backoff step.
      await waitFor(() => dd([`if=${pattern}`, `of=${dev}`, 'bs=4k', 'seek=7', 'oflag=direct']).status === 0, 60_000, 'a write to go through again');
      const back = spawnSync('dd', [`if=${dev}`, 'bs=4k', 'skip=7', 'count=1', 'iflag=direct', 'status=none']);
      assert.equal(back.status, 0);
      assert.ok(Buffer.compare(back.stdout, fs.readFileSync(pattern)) === 0, 'the data read back is what was written');
    });
  }));

test('nbd: nbdkit\'s error filter at 10 % during the verify pass: EIO, never a verify mismatch', { skip }, () =>
  scene(16, async (kit, img, dir) => {
    // Errors start when the trigger file exists: the write pass is clean, the verify pass is not.
    const trigger = path.join(dir, 'inject');
    await kit.start(['--filter=error', 'file', img, 'error-rate=10%', 'error=EIO', `error-file=${trigger}`]);
    await withDevice(['-t', 'nbd', '--unix', kit.sock, '-q', '1'], async (_id, dev) => {
      const job = ['--name=nbde', `--filename=${dev}`, '--rw=randwrite', '--direct=1', '--ioengine=libaio', '--bs=8k', '--iodepth=16',
        '--size=8M', '--verify=crc32c', '--verify_state_save=0', '--output-format=json'];
      const w = spawnSync('fio', [...job, '--do_verify=0'], { encoding: 'utf8', timeout: 600_000 });
      assert.equal(w.status, 0, w.stdout + w.stderr);
      fs.writeFileSync(trigger, '');
      // fio stops at its first error: each pass verifies what it read before that. A mismatch
      // would be a verify error (EILSEQ, 84), never EIO.
      let failed = 0;
      let verified = 0;
      for (let pass = 0; pass < 3; pass++) {
        const v = spawnSync('fio', [...job, '--verify_only'], { encoding: 'utf8', timeout: 300_000 });
        assert.doesNotMatch(v.stdout + v.stderr, /verify failed|bad magic|bad header|crc32c: verify/i);
        const j = JSON.parse(v.stdout.slice(v.stdout.indexOf('{'))).jobs[0];
        assert.ok(j.error === 0 || j.error === 5, `only EIO: error ${j.error}\n${v.stderr}`);
        if (j.error === 5) {
          assert.notEqual(v.status, 0, 'fio exits non-zero on EIO');
          failed++;
        }
        verified += j.read.total_ios;
      }
      assert.ok(failed > 0, 'some pass saw EIO');
      assert.ok(verified > 0, 'some reads were verified');
    });
  }));

const features = skip ? '' : cli(['features']).stdout;

test('nbd: -r 1 -i 1: the daemon SIGKILLed under fio verify, recovered onto the same server: no acknowledged write lost', { skip: skip ?? (features.includes('USER_RECOVERY') ? undefined : 'kernel lacks user recovery') }, () =>
  scene(32, async (kit, img) => {
    await kit.start(['file', img]);
    const args = ['-t', 'nbd', '--unix', kit.sock, '-q', '1', '-d', '32', '-r', '1', '-i', '1'];
    await withDevice(args, async (id, dev) => {
      const fio = fioInBackground(dev, '8M');
      await waitFor(() => completedWrites(id) > 250, 120_000, 'writes to flow');
      process.kill(listJson(id).pid, 'SIGKILL');
      await waitFor(() => listJson(id).state === 'QUIESCED', 60_000, 'QUIESCED after the kill');
      const r = cli(['recover', '-n', String(id), ...args]);
      assert.equal(r.status, 0, `${r.stderr.trim()}; ${kit.status()}`);
      assert.equal(listJson(id).state, 'LIVE');
      const f = await fio;
      assert.equal(f.status, 0, `fio must finish and verify:\n${f.out}`);
    });
  }));
