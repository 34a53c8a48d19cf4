// The loop target without a kernel: integrity file checks and initialisation, FLUSH of both files,
// write-zeroes and discard fallbacks (real io_uring on tmpfs), and same-file checks across opens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { prepare, create, type LoopConfig } from '../../src/targets/loop/index.js';
import * as stripe from '../../src/targets/stripe/index.js';
import { createRing } from '../../src/uring/ring.js';
import { FileIo } from '../../src/uring/file-io.js';
import type { Target, TargetContext } from '../../src/target/types.js';
import * as IO from '../../src/uapi/io-uring.js';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ublkit-loop-'));
process.on('exit', () => fs.rmSync(work, { recursive: true, force: true }));
const EOPNOTSUPP = -95;

function sparse(name: string, bytes: number, dir = work): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, '');
  fs.truncateSync(f, bytes);
  return f;
}
const hash = (f: string) => createHash('sha256').update(fs.readFileSync(f)).digest('hex');
const integrity = (file: string, metaFile: string, extra: Partial<LoopConfig> = {}): LoopConfig =>
  ({ file, metaFile, metadataSize: 8, csumType: 2, integrityFlags: 2, ...extra });

/** A FileIo stand-in: records calls; fallocate answers from `fallocate`, read/write go to the file. */
function spyIo(fallocate: (mode: number) => number = () => 0) {
  const calls: Array<{ op: string; fd: number; mode?: number; off?: number; len?: number }> = [];
  const io = {
    fsync: async (fd: number) => (calls.push({ op: 'fsync', fd }), 0),
    fallocate: async (fd: number, mode: number, off: number, len: number) => (calls.push({ op: 'fallocate', fd, mode, off, len }), fallocate(mode)),
    write: async (fd: number, buf: Uint8Array, off: number) => (calls.push({ op: 'write', fd, off, len: buf.byteLength }), fs.writeSync(fd, buf, 0, buf.byteLength, off)),
    read: async (fd: number, buf: Uint8Array, off: number) => (calls.push({ op: 'read', fd, off, len: buf.byteLength }), fs.readSync(fd, buf, 0, buf.byteLength, off)),
  };
  return { calls, ctx: { io: io as unknown as FileIo, ring: undefined, queues: [0], thread: 0 } as unknown as TargetContext };
}

/** Real io_uring on this host: completions wake the event loop through the ring's eventfd. */
function ringIo(): { ctx: TargetContext; close(): void } {
  const ring = createRing(64, 0);
  let queued = false;
  ring.onQueue = () => {
    if (queued) return;
    queued = true;
    queueMicrotask(() => {
      queued = false;
      ring.submit();
    });
  };
  ring.watch(() => void ring.reap(() => {}), true);
  return { ctx: { io: new FileIo(ring), ring, queues: [0], thread: 0 }, close: () => ring.close() };
}

test('a backing path swapped to another file between prepare() and create() is refused (loop, integrity, stripe)', () => {
  const a = sparse('s-a.img', 1 << 20);
  const b = sparse('s-b.img', 1 << 20);
  const link = path.join(work, 's-link.img');
  fs.symlinkSync(a, link);
  const cfg = prepare({ file: link });
  create(cfg).close!();
  fs.unlinkSync(link);
  fs.symlinkSync(b, link);
  assert.throws(() => create(cfg), /s-link\.img is no longer the file opened at start-up/);

  const m = sparse('s-m.pi', (1 << 20) / 512 * 8);
  const m2 = sparse('s-m2.pi', (1 << 20) / 512 * 8);
  const mlink = path.join(work, 's-mlink.pi');
  fs.symlinkSync(m, mlink);
  const icfg = prepare(integrity(a, mlink));
  fs.renameSync(m2, m);
  assert.throws(() => create(icfg), /integrity file .*s-mlink\.pi is no longer the file/);

  const c = sparse('s-c.img', 1 << 20);
  const slink = path.join(work, 's-slink.img');
  fs.symlinkSync(c, slink);
  const scfg = stripe.prepare({ files: [a, slink] });
  fs.unlinkSync(slink);
  fs.symlinkSync(b, slink);
  assert.throws(() => stripe.create(scfg), /s-slink\.img is no longer the file/);
  assert.throws(() => stripe.prepare({ files: [a, a] }), /given twice/);
});
