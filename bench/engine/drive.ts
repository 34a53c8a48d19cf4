// One engine-benchmark process: a QueueEngine and a built-in target served by the fake kernel,
// N requests of one kind pushed through it in bursts; bench/engine/run.mjs runs it under callgrind.
//
//   node dist/bench/engine/drive.js --mode copy --target null --op read --requests 2000
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { FakeKernel } from './fake-kernel.js';
import { QueueEngine } from '../../src/ublk/queue.js';
import { newStatsBuffer } from '../../src/ublk/engine/stats.js';
import type { DataMode } from '../../src/ublk/modes.js';
import type { Target } from '../../src/target/types.js';
import * as U from '../../src/uapi/ublk.js';
import { create as createNull } from '../../src/targets/null/index.js';
import { create as createLoop } from '../../src/targets/loop/index.js';

const MODES: DataMode[] = ['copy', 'get-data', 'user-copy', 'zero-copy', 'auto-buf-reg'];
const TARGETS = ['null', 'loop'];
const OPS = ['read', 'write'];
const OPCODES = { NOP: 0, READ_FIXED: 4, WRITE_FIXED: 5, READ: 22, WRITE: 23 };
const CMDS = { FETCH: 0x20, COMMIT: 0x21, GET_DATA: 0x22, REG_BUF: 0x23, UNREG_BUF: 0x24, PREP_CMDS: 0x25, COMMIT_CMDS: 0x26, FETCH_CMDS: 0x27 };

function fail(msg: string): never {
  process.stderr.write(`drive: ${msg}\n`);
  process.exit(2);
}

const { values: a } = parseArgs({
  options: {
    mode: { type: 'string', default: 'copy' },
    target: { type: 'string', default: 'null' },
    op: { type: 'string', default: 'read' },
    requests: { type: 'string', default: '2000' },
    depth: { type: 'string', default: '128' },
    burst: { type: 'string', default: '16' },
    bs: { type: 'string', default: '4096' },
    batch: { type: 'boolean', default: false },
    // Count every request as a CLI device does (ublkit stats); off, as a library device with stats: false.
    stats: { type: 'boolean', default: false },
  },
});
const mode = a.mode as DataMode;
if (!MODES.includes(mode)) fail(`--mode must be one of ${MODES.join(', ')}`);
if (!TARGETS.includes(a.target!)) fail(`--target must be one of ${TARGETS.join(', ')}`);
if (!OPS.includes(a.op!)) fail(`--op must be one of ${OPS.join(', ')}`);
const [requests, depth, burst, bs] = [a.requests, a.depth, a.burst, a.bs].map(Number);
if (!(Number.isInteger(requests) && requests >= 0)) fail('--requests must be a whole number');
if (!(Number.isInteger(depth) && depth >= 1 && depth <= 4096)) fail('--depth must be 1..4096');
if (!(Number.isInteger(burst) && burst >= 1 && burst <= depth)) fail('--burst must be 1..depth');
if (!(Number.isInteger(bs) && bs >= 512 && bs % 512 === 0 && bs <= 1 << 20)) fail('--bs must be a multiple of 512 up to 1 MiB');

const kernel = new FakeKernel(depth, mode, a.batch);
kernel.install();

let dir: string | undefined;
function makeTarget(): Target {
  if (a.target === 'null') return createNull({});
  // A real file for the loop target to open and probe; the fake kernel never reads or writes it.
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ublkit-bench-engine-'));
  const file = path.join(dir, 'disk.img');
  fs.writeFileSync(file, '');
  fs.truncateSync(file, 64 << 20);
  return createLoop({ file });
}

async function main(): Promise<void> {
  const target = makeTarget();
  const errors: Error[] = [];
  const engine = new QueueEngine({
    ublkcFd: kernel.ublkcFd, queueDepth: depth, maxIoBufBytes: 1 << 20, mode, target, batch: a.batch,
    slots: Array.from({ length: depth }, (_, t) => [0, t] as [number, number]),
    stats: a.stats ? newStatsBuffer(1) : undefined,
    onError: (e) => errors.push(e),
  });
  await target.open?.(engine.context([0], 0));
  engine.start();
  const op = a.op === 'read' ? U.UBLK_IO_OP_READ : U.UBLK_IO_OP_WRITE;
  const blocks = Math.floor(target.size / bs);
  // A fixed pseudo-random walk over the device (an LCG): the same offsets in every run.
  let x = 12345;
  for (let done = 0; done < requests;) {
    const k = Math.min(burst, requests - done, kernel.armed);
    for (let i = 0; i < k; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      kernel.deliver({ op, off: (x % blocks) * bs, len: bs });
    }
    kernel.signal();
    await kernel.drained();
    done += k;
  }
  if (errors.length) fail(`engine error: ${errors[0].message}`);
  if (kernel.commits !== requests || kernel.badCommits) fail(`${kernel.commits} commits (${kernel.badCommits} not the full length) for ${requests} requests`);
  target.close?.();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  // What the path submitted per request (the start-up FETCHes left out): a check that the run
  // took the path it claims to measure.
  const per = (x: number) => Math.round((x / requests) * 100) / 100;
  const sqes: Record<string, number> = {};
  for (const [name, k] of Object.entries(OPCODES)) if (kernel.opCount[k]) sqes[name] = per(kernel.opCount[k]);
  for (const [name, k] of Object.entries(CMDS)) if (kernel.cmdCount[k] && (k !== 0x20 || kernel.cmdCount[k] > depth)) sqes[name] = per(kernel.cmdCount[k] - (k === 0x20 ? depth : 0));
  sqes.enter = per(kernel.enters);
  process.stdout.write(`${JSON.stringify({ mode, target: a.target, op: a.op, batch: a.batch, requests, commits: kernel.commits, perRequest: sqes })}\n`);
}

main().catch((e: Error) => fail(e.stack ?? e.message));
