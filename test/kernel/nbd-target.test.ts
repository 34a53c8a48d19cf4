// The nbd target against a real nbdkit (skipped without it): its socket IO on a plain io_uring (no
// ublk), pipelined IO, simple and structured replies, errors, timeouts, bad servers. In the VM with
// the kernel tests: servers run there, never on the host, and each kernel's io_uring is exercised.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Kit, withNbdTarget as withTarget } from '../helpers/nbd.js';
import { create, nbdUri, prepare, type NbdConfig } from '../../src/targets/nbd/index.js';
import { checkTarget } from '../../src/testing/index.js';
import type { Target } from '../../src/target/types.js';

const HAVE_NBDKIT = spawnSync('nbdkit', ['--version']).status === 0;
const skip = HAVE_NBDKIT ? false : 'nbdkit is not installed';

async function waitFor(what: string, ok: () => boolean, ms = 10000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Runs `body` with an nbdkit on a private Unix socket; stops it and removes the directory after. */
async function withNbdkit(args: string[], body: (sock: string, dir: string) => Promise<void>): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nbd-'));
  const sock = path.join(dir, 'sock');
  const kit: ChildProcess = spawn('nbdkit', ['--unix', sock, '-P', `${sock}.pid`, '--foreground', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    await waitFor('nbdkit to listen', () => fs.existsSync(`${sock}.pid`));
    await body(sock, dir);
  } finally {
    kit.kill('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const pattern = (seed: number, n: number) => Uint8Array.from({ length: n }, (_, i) => (seed * 131 + i * 7 + (i >> 9)) & 0xff);

async function roundTrip(t: Target): Promise<void> {
  const n = 64;
  const bs = 16384;
  await Promise.all(Array.from({ length: n }, (_, i) => t.write(pattern(i, bs), i * bs * 3, { fua: i % 2 === 0 })));
  await t.flush!();
  const bufs = Array.from({ length: n }, () => new Uint8Array(bs).fill(0xaa));
  const got = await Promise.all(bufs.map((b, i) => t.read(b, i * bs * 3)));
  assert.ok(got.every((g) => g === bs));
  bufs.forEach((b, i) => assert.deepEqual(b, pattern(i, bs), `block ${i}`));
  // Never written: the server answers with zeroes (a hole chunk on a sparse memory export).
  const hole = new Uint8Array(bs).fill(0xaa);
  await t.read(hole, bs);
  assert.ok(hole.every((x) => x === 0));
  await t.writeZeroes!(0, bs, true);
  await t.discard!(3 * bs, bs);
  const z = new Uint8Array(2 * bs).fill(1);
  await t.read(z, 0);
  assert.ok(z.subarray(0, bs).every((x) => x === 0));
}

test('nbd target without ublk: 64 pipelined writes and reads, structured replies', { skip }, () =>
  withNbdkit(['memory', '64M'], (sock) => withTarget({ unix: sock }, async (t) => {
    assert.equal(t.size, 64 << 20);
    assert.deepEqual(t.caps, { flush: true, fua: true, readOnly: false, rotational: false, discard: true, writeZeroes: true });
    await roundTrip(t);
  })));

test('nbd target without ublk: ublkit/testing checkTarget over 2 connections, every op, then a reconnect reads what FLUSH and FUA kept', { skip }, () =>
  withNbdkit(['memory', '4M'], async (sock) => {
    const cfg = await prepare({ unix: sock, connections: 2 });
    // The harness closes the instances reopen gives, never the one it is handed.
    const t = create(cfg);
    const r = await checkTarget(t, { ops: 120, depth: 16, seed: 5, reopen: () => create(cfg) }).finally(() => t.close?.());
    assert.ok(r.crashChecked);
    assert.ok(r.ops.read > 0 && r.ops.write > 0 && r.ops.flush > 0 && r.ops.discard > 0 && r.ops.writeZeroes > 0, JSON.stringify(r.ops));
    assert.equal(Object.keys(r.errnos).length, 0, JSON.stringify(r.errnos));
  }));

test('nbd target without ublk: simple replies (nbdkit --no-sr)', { skip }, () =>
  withNbdkit(['--no-sr', 'memory', '64M'], (sock) => withTarget({ unix: sock }, (t) => roundTrip(t))));

test('nbd target without ublk: the error filter gives EIO or the right bytes, never wrong ones', { skip }, () =>
  withNbdkit(['--filter=error', 'memory', '16M', 'error-pread-rate=20%', 'error=EIO'], (sock) => withTarget({ unix: sock }, async (t) => {
    const bs = 4096;
    await Promise.all(Array.from({ length: 32 }, (_, i) => t.write(pattern(i, bs), i * bs, { fua: false })));
    let failed = 0;
    for (let round = 0; round < 4; round++) {
      await Promise.all(Array.from({ length: 32 }, async (_, i) => {
        const b = new Uint8Array(bs).fill(0xaa);
        try {
          await t.read(b, i * bs);
          assert.deepEqual(b, pattern(i, bs));
        } catch (err) {
          assert.equal((err as { code?: string }).code, 'EIO', String(err));
          failed++;
        }
      }));
    }
    assert.ok(failed > 0, 'some reads failed');
  })));

test('nbd target without ublk: a request past --timeout fails with EIO', { skip }, () =>
  withNbdkit(['--filter=delay', 'memory', '1M', 'rdelay=6'], (sock) => withTarget({ unix: sock, timeout: 1 }, async (t) => {
    const t0 = Date.now();
    await assert.rejects(Promise.resolve(t.read(new Uint8Array(512), 0)), (e: Error & { code?: string }) => e.code === 'EIO' && /no reply to READ/.test(e.message));
    assert.ok(Date.now() - t0 < 5000, 'failed near the deadline, before the reply');
    await t.write(new Uint8Array(512).fill(3), 0, { fua: false });
  })));

test('nbd target without ublk: TCP to 127.0.0.1, several connections when the server allows them', { skip }, async () => {
  const free = await new Promise<number>((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
  const kit = spawn('nbdkit', ['-i', '127.0.0.1', '-p', String(free), '--foreground', 'memory', '8M'], { stdio: 'ignore' });
  try {
    await waitFor('nbdkit to listen on TCP', () => spawnSync('nbdinfo', ['--size', `nbd://127.0.0.1:${free}`]).status === 0);
    await withTarget({ host: '127.0.0.1', port: free, connections: 3 }, async (t) => {
      assert.equal(t.size, 8 << 20);
      await roundTrip(t);
    });
  } finally {
    kit.kill('SIGKILL');
  }
});

test('nbd target without ublk: the probe and each connection end with NBD_CMD_DISC', { skip }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nbd-'));
  const sock = path.join(dir, 'sock');
  const kit = spawn('nbdkit', ['-v', '--unix', sock, '-P', `${sock}.pid`, '--foreground', 'memory', '1M'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  kit.stderr!.on('data', (d: Buffer) => void (log += d.toString()));
  try {
    await waitFor('nbdkit to listen', () => fs.existsSync(`${sock}.pid`));
    await withTarget({ unix: sock }, async (t) => void (await t.read(new Uint8Array(512), 0)));
    await waitFor('both goodbyes', () => (log.match(/client sent NBD_CMD_DISC/g) ?? []).length === 2);
    assert.doesNotMatch(log, /client closed input socket/);
  } finally {
    kit.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('nbd target without ublk: a server gone for good fails in-flight and later IO with EIO after the timeout', { skip }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nbd-'));
  const sock = path.join(dir, 'sock');
  const kit = spawn('nbdkit', ['--unix', sock, '-P', `${sock}.pid`, '--foreground', '--filter=delay', 'memory', '1M', 'rdelay=2'], { stdio: 'ignore' });
  try {
    await waitFor('nbdkit to listen', () => fs.existsSync(`${sock}.pid`));
    await withTarget({ unix: sock, timeout: 1 }, async (t) => {
      const pending = Promise.resolve(t.read(new Uint8Array(512), 0));
      kit.kill('SIGKILL');
      await assert.rejects(pending, (e: Error & { code?: string }) => e.code === 'EIO' && /the server is unreachable/.test(e.message));
      await assert.rejects(Promise.resolve(t.write(new Uint8Array(512), 0, { fua: false })), /the server is unreachable/);
    });
  } finally {
    kit.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('nbd target without ublk: redials to a server that never answers leave the thread serving; the held read completes once nbdkit is back', { skip }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nbd-'));
  const sock = path.join(dir, 'sock');
  const disk = path.join(dir, 'disk.img');
  fs.writeFileSync(disk, '');
  fs.truncateSync(disk, 1 << 20);
  const kit = new Kit(sock);
  // The listener that stands in for the server: killed and its socket removed, like a dead server's.
  const stopSilent = async (p: ChildProcess): Promise<void> => {
    if (p.exitCode === null && p.signalCode === null) {
      const gone = new Promise((r) => p.once('exit', r));
      p.kill('SIGKILL');
      await gone;
    }
    fs.rmSync(sock, { force: true });
  };
  let silent: ChildProcess | undefined;
  try {
    await kit.start(['file', disk]);
    await withTarget({ unix: sock, timeout: 120 }, async (t) => {
      await t.write(pattern(5, 4096), 0, { fua: true });
      await kit.stop();
      fs.rmSync(sock, { force: true });
      // Takes every connection and never says a word: each redial waits out its handshake.
      silent = spawn(process.execPath, ['-e', `require('net').createServer(() => process.stdout.write('c')).listen(${JSON.stringify(sock)})`], { stdio: ['ignore', 'pipe', 'ignore'] });
      let dials = 0;
      silent.stdout!.on('data', (d: Buffer) => void (dials += d.length));
      await waitFor('the silent listener', () => fs.existsSync(sock));
      const back = new Uint8Array(4096);
      const held = Promise.resolve(t.read(back, 0));
      // A dial that blocked the thread stopped its event loop for the whole handshake (2 s).
      let gap = 0;
      let last = performance.now();
      const tick = setInterval(() => {
        const now = performance.now();
        gap = Math.max(gap, now - last);
        last = now;
      }, 20);
      try {
        await waitFor('two redials to the silent listener', () => dials >= 2, 30_000);
      } finally {
        clearInterval(tick);
      }
      assert.ok(gap < 1000, `the event loop stood still for ${Math.round(gap)} ms during a redial`);
      await stopSilent(silent);
      await kit.start(['file', disk]);
      assert.equal(await held, 4096);
      assert.deepEqual(back, pattern(5, 4096));
    });
  } finally {
    if (silent) await stopSilent(silent);
    await kit.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('nbd prepare: no socket, refused, unknown export, closed during handshake: one-line errors', { skip }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nbd-'));
  try {
    await assert.rejects(prepare({ unix: path.join(dir, 'none') }), /nbd: cannot connect to unix socket .*none: no such socket$/);
    fs.writeFileSync(path.join(dir, 'file'), '');
    await assert.rejects(prepare({ unix: path.join(dir, 'file') }), /cannot connect to unix socket .*file: connection refused/);
    const closer = net.createServer((c) => c.destroy());
    await new Promise<void>((r) => closer.listen(path.join(dir, 'closer'), r));
    try {
      await assert.rejects(prepare({ unix: path.join(dir, 'closer') }), /the server closed the connection during the handshake/);
    } finally {
      closer.close();
    }
    await withNbdkit(['--filter=exportname', 'memory', '1M', 'exportname=a', 'exportname-strict=true'], async (sock) => {
      await assert.rejects(prepare({ unix: sock, export: 'b' }), (e: Error) => /^nbd export 'b': unknown export(: ".+")?$/.test(e.message) && !e.message.includes('\n'));
      assert.equal((await prepare({ unix: sock, export: 'a' })).info!.size, 1 << 20);
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('nbd command line: --unix or --host, text and integer options into the config; bad lines in one line', async () => {
  const { parseArgs } = await import('../../src/cli/args.js');
  const { deviceOptions } = await import('../../src/cli/add-options.js');
  const spec = (s: string) => deviceOptions(parseArgs(s.split(' '))).target as { module: string; config: unknown };
  assert.deepEqual(spec('add -t nbd --unix /run/s --export disk --timeout 5 --connections 2'), {
    module: 'ublkit:nbd', config: { unix: '/run/s', host: undefined, port: undefined, export: 'disk', connections: 2, timeout: 5 },
  });
  assert.deepEqual((spec('add -t nbd --host 127.0.0.1 --port 10810').config as NbdConfig).port, 10810);
  assert.throws(() => spec('add -t nbd'), /exactly one of --unix PATH or --host HOST/);
  assert.throws(() => spec('add -t nbd --unix /s --host h'), /exactly one of/);
  assert.throws(() => spec('add -t nbd --unix /s --port 1'), /--port goes with --host/);
  assert.throws(() => spec('add -t nbd --unix /s --size 1G'), /drop --size/);
  assert.throws(() => spec('add -t nbd --unix /s x.img'), /takes no backing files/);
  assert.throws(() => spec('add -t nbd --host h --port 70000'), /--port 70000: TCP port must be 1..65535/);
});

test('nbd backend URIs, as nbdinfo and qemu spell them', () => {
  assert.equal(nbdUri({ unix: '/run/a.sock', export: 'disk' }), 'nbd+unix:///disk?socket=/run/a.sock');
  assert.equal(nbdUri({ host: '127.0.0.1' }), 'nbd://127.0.0.1:10809/');
  assert.equal(nbdUri({ host: 'h', port: 10810, export: 'a b' }), 'nbd://h:10810/a%20b');
});
