// -t nbd against NBD servers other than nbdkit (qemu-nbd on a qcow2 image, nbd-server on a file),
// each on a private Unix socket: fio verify over several connections, and the device's size and
// flags against nbdinfo's independent reading of the same export.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { kernelSkipReason, hasProgram, withCliDevice, fioVerify, sh, waitFor } from '../helpers/kernel.js';

const base = kernelSkipReason();
const needs = (...progs: string[]): string | undefined => base ?? progs.filter((p) => !hasProgram(p)).map((p) => `${p} is not installed`)[0];

const alive = (pid: number): boolean => {
  try { process.kill(pid, 0); return true; } catch { return false; }
};

/**
 * Starts a server that daemonizes: its stdio goes to a file, not a pipe, which the daemon would keep
 * open and so hold the call until it exits.
 */
function startDaemon(dir: string, cmd: string, args: string[]): void {
  const logFile = path.join(dir, `${cmd}.log`);
  const fd = fs.openSync(logFile, 'w');
  try {
    const r = spawnSync(cmd, args, { timeout: 60_000, stdio: ['ignore', fd, fd] });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}): ${fs.readFileSync(logFile, 'utf8').trim()}`);
  } finally {
    fs.closeSync(fd);
  }
}

/** Runs `body` with a server that daemonizes and writes `pidFile`; stops it and removes `dir` after. */
async function withDaemon<T>(dir: string, start: () => void, pidFile: string, sock: string, body: () => Promise<T> | T): Promise<T> {
  let pid = 0;
  try {
    start();
    await waitFor(() => fs.existsSync(sock) && fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8').trim() !== '', 30_000, 'the server to listen');
    pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
    return await body();
  } finally {
    if (pid > 0 && alive(pid)) {
      process.kill(pid, 'SIGTERM');
      await waitFor(() => !alive(pid), 30_000, 'the server to exit').catch(() => process.kill(pid, 'SIGKILL'));
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The ublk device shows what nbdinfo reads from the server: size, read-only, flush, FUA, trim. */
function assertMatchesNbdinfo(uri: string, dev: string): void {
  const info = JSON.parse(sh('nbdinfo', ['--json', uri])).exports[0];
  // NBD_OPT_INFO (what --json asks) is answered with size 0 by nbd-server 3.24; --size goes through NBD_OPT_GO.
  const size = Number(sh('nbdinfo', ['--size', uri]).trim());
  assert.ok(size > 0, `nbdinfo --size ${uri}: ${size}`);
  const name = path.basename(dev);
  const sys = (f: string): string => fs.readFileSync(`/sys/block/${name}/${f}`, 'utf8').trim();
  assert.equal(Number(sh('blockdev', ['--getsize64', dev]).trim()), size);
  assert.equal(sh('blockdev', ['--getro', dev]).trim(), info.is_read_only ? '1' : '0');
  assert.equal(sys('queue/write_cache'), info.can_flush ? 'write back' : 'write through');
  assert.equal(sys('queue/fua'), info.can_flush && info.can_fua ? '1' : '0');
  assert.equal(Number(sys('queue/discard_max_bytes')) > 0, info.can_trim && !info.is_read_only);
}

test('nbd: qemu-nbd serving a qcow2 image, 2 queues x 2 connections: fio verify, flags as nbdinfo reads them', { skip: needs('qemu-nbd', 'qemu-img', 'nbdinfo') }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ublkit-qnbd-'));
  const img = path.join(dir, 'disk.qcow2');
  const sock = path.join(dir, 'sock');
  const pidFile = path.join(dir, 'pid');
  sh('qemu-img', ['create', '-q', '-f', 'qcow2', img, '64M']);
  // -t: the handshake that sizes the device hangs up before the serving connections dial in;
  // without it qemu-nbd exits at that first disconnect. -e: up to 8 clients at once.
  await withDaemon(dir, () => startDaemon(dir, 'qemu-nbd', ['-k', sock, '-e', '8', '-t', '--fork', '--pid-file', pidFile, '-f', 'qcow2', img]), pidFile, sock, () =>
    withCliDevice(['-t', 'nbd', '--unix', sock, '-q', '2', '--connections', '2', '-d', '32'], (_id, dev) => {
      assertMatchesNbdinfo(`nbd+unix:///?socket=${sock}`, dev);
      fioVerify(dev, '8M');
    }));
});

test('nbd: nbd-server (config file, Unix socket), 2 connections: fio verify, flags as nbdinfo reads them', { skip: needs('nbd-server', 'nbdinfo') }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ublkit-nbdsrv-'));
  const file = path.join(dir, 'disk.img');
  const sock = path.join(dir, 'sock');
  const pidFile = path.join(dir, 'pid');
  const conf = path.join(dir, 'config');
  const uri = `nbd+unix:///disk?socket=${sock}`;
  fs.writeFileSync(file, '');
  fs.truncateSync(file, 48 << 20);
  // unixsock: the server listens on this socket only, no TCP port.
  fs.writeFileSync(conf, `[generic]\nunixsock = ${sock}\n[disk]\nexportname = ${file}\nflush = true\nfua = true\ntrim = true\n`);
  await withDaemon(dir, () => startDaemon(dir, 'nbd-server', ['-C', conf, '-p', pidFile]), pidFile, sock, () => {
    // nbd-server 3.24 listens, then makes its TLS Diffie-Hellman parameters before it accepts
    // anyone: a prime search that took over 30 s under TCG (gdb: gnutls_dh_params_generate2 from
    // main). Connections wait in the backlog until then, so one handshake says it is ready.
    const ready = spawnSync('nbdinfo', ['--size', uri], { encoding: 'utf8', timeout: 240_000 });
    assert.equal(ready.status, 0, `nbd-server did not answer a handshake within 240 s: ${ready.stderr ?? ready.error}`);
    return withCliDevice(['-t', 'nbd', '--unix', sock, '--export', 'disk', '-q', '1', '--connections', '2', '-d', '32'], (_id, dev) => {
      assertMatchesNbdinfo(uri, dev);
      fioVerify(dev, '8M');
    });
  });
});
