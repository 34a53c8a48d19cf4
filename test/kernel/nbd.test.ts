// -t nbd against real nbdkit servers started here on private Unix sockets: fio verify per data
// mode and queue count, ext4 with the data in the server's file, simple replies, a read-only
// export, injected errors (EIO, never wrong data), and handshake failures that leave no device.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { kernelSkipReason, hasProgram, withCliDevice, fioVerify, sh, cli, listJson, ublkIds, lacks, waitFor, dmesgMark, dmesgProblems } from '../helpers/kernel.js';

const skip = kernelSkipReason() ?? (hasProgram('nbdkit') ? undefined : 'nbdkit is not installed');

interface Server {
  sock: string;
  dir: string;
}

/** Runs `body` with `nbdkit ARGS` on a socket in a private temp dir; stops nbdkit and removes the dir after. */
async function withNbdkit<T>(args: string[], body: (s: Server) => Promise<T> | T, dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ublkit-nbd-'))): Promise<T> {
  const sock = path.join(dir, 'nbd.sock');
  // Its stderr is kept for a failed start only: the error filter logs every injected error.
  // nbdkit writes its pidfile once it accepts connections; the socket file exists a little earlier.
  const kit: ChildProcess = spawn('nbdkit', ['--unix', sock, '-P', `${sock}.pid`, '--foreground', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let said = '';
  kit.stderr!.on('data', (d: Buffer) => void (said = (said + d.toString()).slice(-2000)));
  let exited = false;
  kit.on('exit', () => void (exited = true));
  try {
    await waitFor(() => fs.existsSync(`${sock}.pid`) || exited, 30_000, 'nbdkit to listen');
    if (exited) throw new Error(`nbdkit ${args.join(' ')} exited at start: ${said}`);
    return await body({ sock, dir });
  } finally {
    kit.kill('SIGTERM');
    await waitFor(() => exited, 30_000, 'nbdkit to exit').catch(() => kit.kill('SIGKILL'));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const modes: Array<[string, string[], string | undefined]> = [
  ['copy', [], undefined],
  ['user-copy', ['-u'], skip ? undefined : lacks('USER_COPY')],
];

for (const [mode, flags, lack] of modes) {
  for (const q of [1, 2]) {
    test(`nbd (${mode}, ${q} queue${q > 1 ? 's' : ''}): fio crc32c verify over nbdkit memory`, { skip: skip ?? lack }, () =>
      withNbdkit(['memory', '64M'], ({ sock }) =>
        withCliDevice(['-t', 'nbd', '--unix', sock, '-q', String(q), '-d', '32', ...flags], (id, dev) => {
          assert.equal(listJson(id).sizeBytes, 64 << 20);
          fioVerify(dev, '16M');
        })));
  }
}

test('nbd: nbdinfo reads the same size and flags the device shows', { skip: skip ?? (hasProgram('nbdinfo') ? undefined : 'nbdinfo is not installed') }, () =>
  withNbdkit(['memory', '48M'], ({ sock }) => {
    const info = JSON.parse(sh('nbdinfo', ['--json', `nbd+unix:///?socket=${sock}`])).exports[0];
    return withCliDevice(['-t', 'nbd', '--unix', sock, '-q', '1'], (id, dev) => {
      assert.equal(listJson(id).sizeBytes, info['export-size']);
      const name = path.basename(dev);
      const sys = (f: string) => fs.readFileSync(`/sys/block/${name}/${f}`, 'utf8').trim();
      assert.equal(sys('ro'), info.is_read_only ? '1' : '0');
      assert.equal(sys('queue/rotational'), info.is_rotational ? '1' : '0');
      assert.equal(sys('queue/write_cache'), info.can_flush ? 'write back' : 'write through');
      assert.equal(Number(sys('queue/discard_max_bytes')) > 0, info.can_trim);
      assert.equal(Number(sys('queue/write_zeroes_max_bytes')) > 0, info.can_zero);
    });
  }));

test('nbd: simple replies only (nbdkit --no-sr): fio verify', { skip }, () =>
  withNbdkit(['--no-sr', 'memory', '32M'], ({ sock }) =>
    withCliDevice(['-t', 'nbd', '--unix', sock, '-q', '1', '-d', '32'], (_id, dev) => void fioVerify(dev, '8M'))));

test('nbd: ext4 mkfs/mount/write/umount/fsck, and the data is in nbdkit\'s file after del', { skip: skip ?? (hasProgram('mkfs.ext4') ? undefined : 'mkfs.ext4 is not installed') }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ublkit-nbd-'));
  const img = path.join(dir, 'disk.img');
  fs.writeFileSync(img, '');
  fs.truncateSync(img, 64 << 20);
  const mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'ublkit-nbd-mnt-'));
  const payload = randomBytes(300 * 1024);
  const mark = dmesgMark('nbd-fs');
  try {
    await withNbdkit(['file', img], ({ sock }) =>
      withCliDevice(['-t', 'nbd', '--unix', sock, '-q', '2'], (_id, dev) => {
        sh('mkfs.ext4', ['-q', '-F', dev]);
        sh('mount', ['-t', 'ext4', dev, mnt]);
        try {
          fs.mkdirSync(path.join(mnt, 'd'));
          fs.writeFileSync(path.join(mnt, 'd', 'f.bin'), payload);
          sh('sync', []);
        } finally {
          sh('umount', [mnt]);
        }
        sh('fsck.ext4', ['-f', '-n', dev]);
      }), fs.mkdtempSync(path.join(dir, 's-')));
    // nbdkit is gone and the device deleted: the file system is in the server's backing file.
    sh('fsck.ext4', ['-f', '-n', img]);
    const out = spawnSync('debugfs', ['-R', 'cat /d/f.bin', img], { maxBuffer: 1 << 24 });
    assert.equal(createHash('sha256').update(out.stdout).digest('hex'), createHash('sha256').update(payload).digest('hex'));
    assert.deepEqual(dmesgProblems(mark), []);
  } finally {
    fs.rmSync(mnt, { recursive: true, force: true });
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('nbd: a read-only export (nbdkit -r) makes a read-only device that refuses writes', { skip }, () =>
  withNbdkit(['-r', 'memory', '16M'], ({ sock }) =>
    withCliDevice(['-t', 'nbd', '--unix', sock, '-q', '1'], (_id, dev) => {
      assert.equal(fs.readFileSync(`/sys/block/${path.basename(dev)}/ro`, 'utf8').trim(), '1');
      const w = spawnSync('dd', ['if=/dev/zero', `of=${dev}`, 'bs=4k', 'count=1', 'oflag=direct', 'status=none'], { encoding: 'utf8' });
      assert.notEqual(w.status, 0, 'the write is refused');
      const r = spawnSync('dd', [`if=${dev}`, 'of=/dev/null', 'bs=4k', 'count=4', 'iflag=direct', 'status=none']);
      assert.equal(r.status, 0, 'reads work');
    })));

test('nbd: nbdkit\'s error filter gives EIO, never wrong data', { skip }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ublkit-nbd-'));
  const img = path.join(dir, 'data.img');
  const bs = 64 * 1024;
  const blocks = 32;
  const data = randomBytes(bs * blocks);
  fs.writeFileSync(img, data);
  try {
    await withNbdkit(['-r', '--filter=error', 'file', img, 'error-pread-rate=10%', 'error=EIO'], ({ sock }) =>
      withCliDevice(['-t', 'nbd', '--unix', sock, '-q', '1'], (_id, dev) => {
        let failed = 0;
        for (let round = 0; round < 2; round++) {
          for (let i = 0; i < blocks; i++) {
            const r = spawnSync('dd', [`if=${dev}`, `bs=${bs}`, `skip=${i}`, 'count=1', 'iflag=direct', 'status=none'], { maxBuffer: 1 << 22 });
            if (r.status !== 0) {
              assert.match(String(r.stderr), /Input\/output error/);
              failed++;
              continue;
            }
            assert.ok(Buffer.compare(r.stdout, data.subarray(i * bs, (i + 1) * bs)) === 0, `block ${i}: wrong data`);
          }
        }
        assert.ok(failed > 0, 'some reads failed');
        assert.ok(failed < 2 * blocks, 'some reads succeeded');
      }), fs.mkdtempSync(path.join(dir, 's-')));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** `add` must fail with one line naming the cause and leave no device behind. */
function refused(args: string[], want: RegExp): void {
  const before = ublkIds();
  const r = cli(['add', '-t', 'nbd', ...args]);
  assert.notEqual(r.status, 0, `add ${args.join(' ')} succeeded: ${r.stdout}`);
  assert.match(r.stderr, want);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.deepEqual(ublkIds(), before, 'no device left behind');
}

test('nbd: no such socket, connection refused, unknown export, a server closing in the handshake: one-line errors, no device', { skip }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ublkit-nbd-'));
  try {
    refused(['--unix', path.join(dir, 'none')], /cannot connect to unix socket .*none: no such socket/);
    fs.writeFileSync(path.join(dir, 'plain'), '');
    refused(['--unix', path.join(dir, 'plain')], /cannot connect to unix socket .*plain: connection refused/);
    refused(['--host', '127.0.0.1', '--port', '1'], /cannot connect to 127\.0\.0\.1:1: connection refused/);
    await withNbdkit(['--filter=exportname', 'memory', '1M', 'exportname=a', 'exportname-strict=true'], ({ sock }) =>
      refused(['--unix', sock, '--export', 'b'], /nbd export 'b': unknown export/), fs.mkdtempSync(path.join(dir, 's-')));
    // Without CAN_MULTI_CONN a second queue thread may not open its own connection.
    await withNbdkit(['--filter=multi-conn', 'memory', '1M', 'multi-conn-mode=disable'], ({ sock }) =>
      refused(['--unix', sock, '-q', '2'], /does not allow several connections \(no CAN_MULTI_CONN\): use -q 1/), fs.mkdtempSync(path.join(dir, 's-')));
    // Zero copy needs a pass-through target; nbd must see the bytes.
    if (!lacks('ZERO_COPY')) {
      await withNbdkit(['memory', '1M'], ({ sock }) => refused(['--unix', sock, '-z'], /needs a pass-through target/), fs.mkdtempSync(path.join(dir, 's-')));
    }
    // A server that accepts and hangs up: served from a child process, since cli() blocks this thread.
    const closer = path.join(dir, 'closer.sock');
    const child = spawn(process.execPath, ['-e', `require('net').createServer((c) => c.destroy()).listen(${JSON.stringify(closer)})`], { stdio: 'ignore' });
    try {
      await waitFor(() => fs.existsSync(closer), 30_000, 'the closing server to listen');
      refused(['--unix', closer], /closed the connection during the handshake/);
    } finally {
      child.kill('SIGKILL');
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
