// The nbd target's reconnect without ublk, against nbdkit on a private Unix socket (skipped without
// it): requests in flight when the server dies are sent again to its successor, FLUSH after the
// replayed writes; past the timeout IO fails and works again once the server is back; an export
// that changed size across the reconnect fails everything.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { withNbdTarget as withTarget } from '../helpers/nbd.js';

const skip = spawnSync('nbdkit', ['--version']).status === 0 ? false : 'nbdkit is not installed';

async function waitFor(what: string, ok: () => boolean | Promise<boolean>, ms = 15000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** nbdkit on `sock`, started afresh each time (a SIGKILLed one leaves its socket file: removed first). */
class Kit {
  private p: ChildProcess | undefined;
  private exited = true;
  constructor(readonly sock: string) {}

  async start(args: string[]): Promise<void> {
    fs.rmSync(this.sock, { force: true });
    fs.rmSync(`${this.sock}.pid`, { force: true });
    this.exited = false;
    const p = spawn('nbdkit', ['--unix', this.sock, '-P', `${this.sock}.pid`, '--foreground', ...args], { stdio: 'ignore' });
    p.on('exit', () => void (this.exited = true));
    this.p = p;
    await waitFor('nbdkit to listen', () => fs.existsSync(`${this.sock}.pid`) || this.exited);
    assert.ok(!this.exited, `nbdkit ${args.join(' ')} exited at start`);
  }

  async kill(): Promise<void> {
    if (this.exited) return;
    this.p!.kill('SIGKILL');
    await waitFor('nbdkit to die', () => this.exited);
  }
}

async function scene(body: (kit: Kit, dir: string, img: string) => Promise<void>): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nbd-re-'));
  const kit = new Kit(path.join(dir, 'sock'));
  const img = path.join(dir, 'img');
  fs.writeFileSync(img, '');
  fs.truncateSync(img, 4 << 20);
  try {
    await body(kit, dir, img);
  } finally {
    await kit.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const block = (seed: number, n = 4096) => new Uint8Array(n).fill(seed);
const settled = (p: Promise<unknown>) => p.then(() => 'ok', (e: Error) => e.message);

test('nbd reconnect: writes and a FLUSH in flight when the server dies reach its successor, FLUSH last', { skip }, () =>
  scene(async (kit, dir, img) => {
    const log = path.join(dir, 'log');
    await kit.start(['--filter=log', '--filter=delay', 'file', img, `logfile=${log}`, 'wdelay=10']);
    await withTarget({ unix: kit.sock }, async (t) => {
      const writes = Array.from({ length: 8 }, (_, i) => settled(Promise.resolve(t.write(block(i + 1), i * 8192, { fua: i === 3 }))));
      await waitFor('the writes to reach the server', () => fs.existsSync(log) && (fs.readFileSync(log, 'utf8').match(/ Write id=/g) ?? []).length === 8);
      const flush = settled(Promise.resolve(t.flush!()));
      await waitFor('the flush to reach the server', () => / Flush id=/.test(fs.readFileSync(log, 'utf8')));
      await kit.kill();
      fs.rmSync(log);
      await kit.start(['--filter=log', 'file', img, `logfile=${log}`]);
      assert.deepEqual(await Promise.all(writes), Array(8).fill('ok'));
      assert.equal(await flush, 'ok');
      const data = fs.readFileSync(img);
      for (let i = 0; i < 8; i++) assert.ok(data.subarray(i * 8192, i * 8192 + 4096).every((x) => x === i + 1), `block ${i}`);
      // On the new server every replayed write was answered before the FLUSH was sent.
      const lines = fs.readFileSync(log, 'utf8').split('\n');
      const flushAt = lines.findIndex((l) => / Flush id=/.test(l));
      const lastWriteDone = lines.map((l, i) => (/\.\.\.Write id=.*return=0/.test(l) ? i : -1)).reduce((a, b) => Math.max(a, b), -1);
      assert.ok(flushAt > lastWriteDone && lastWriteDone >= 0, lines.join('\n'));
      assert.equal(lines.filter((l) => / Write id=/.test(l)).length, 8, 'each write sent once more');
    });
  }));

test('nbd reconnect: past --timeout a request fails with EIO while the server is away; IO works once it is back', { skip }, () =>
  scene(async (kit, _dir, img) => {
    await kit.start(['file', img]);
    await withTarget({ unix: kit.sock, timeout: 1 }, async (t) => {
      await t.write(block(7), 0, { fua: false });
      await kit.kill();
      const t0 = Date.now();
      const r = await settled(Promise.resolve(t.read(new Uint8Array(4096), 0)));
      assert.match(r, /no reply to READ 0\+4096 in 1s: the server is unreachable/);
      assert.ok(Date.now() - t0 < 5000, 'failed near the deadline');
      await kit.start(['file', img]);
      const b = new Uint8Array(4096);
      // The first tries may still wait out a backoff step longer than the timeout.
      await waitFor('a read to go through again', async () => (await settled(Promise.resolve(t.read(b, 0)))) === 'ok');
      assert.ok(b.every((x) => x === 7));
      await t.write(block(9), 4096, { fua: true });
    });
  }));

test('nbd reconnect: an export whose size changed across the reconnect fails all IO with EIO, said once', { skip }, () =>
  scene(async (kit, _dir, img) => {
    await kit.start(['file', img]);
    await withTarget({ unix: kit.sock }, async (t) => {
      await kit.kill();
      fs.truncateSync(img, 8 << 20);
      await kit.start(['file', img]);
      const said: string[] = [];
      const was = console.error;
      console.error = (...a: unknown[]) => void said.push(a.join(' '));
      try {
        const err = await settled(Promise.resolve(t.read(new Uint8Array(512), 0)));
        assert.match(err, /changed across a reconnect \(size 4194304 -> 8388608/);
        assert.match(await settled(Promise.resolve(t.write(block(1, 512), 0, { fua: false }))), /changed across a reconnect/);
      } finally {
        console.error = was;
      }
      assert.equal(said.length, 1, said.join('\n'));
    });
  }));
