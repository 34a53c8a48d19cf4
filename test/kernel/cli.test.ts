// CLI lifecycle on the real driver: add/list/del, two devices, features, and bad input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { kernelSkipReason, cli, addDevice, delDevice, listJson, ublkNodes, ublkIds, freeId, lacks, dmesgMark, dmesgProblems } from '../helpers/kernel.js';

const skip = kernelSkipReason();
const work = fs.mkdtempSync(path.join(os.homedir(), 'ublkit-cli-'));

test('add, list, del: the device is LIVE when add returns and gone after del', { skip }, () => {
  const mark = dmesgMark('cli');
  const id = addDevice(['-t', 'null', '-q', '2', '-d', '32']);
  try {
    assert.ok(fs.existsSync(`/dev/ublkb${id}`), 'block device exists when add returns');
    const l = cli(['list', '-n', String(id)]);
    assert.equal(l.status, 0);
    const lines = l.stdout.split('\n');
    assert.match(lines[0], new RegExp(`^dev id ${id}: nr_hw_queues 2 queue_depth 32 block size 512 dev_capacity 524288000$`));
    assert.match(lines[1], /^\tmax rq size 1048576 daemon pid \d+ flags 0x[0-9a-f]+ state LIVE$/);
    assert.equal(lines[1].split(/\s+/).filter(Boolean)[10], 'LIVE', 'state is awk field 11');
    assert.match(lines[2], /^\tqueue 0: affinity\(\d+ \)$/);
    const j = listJson(id);
    assert.equal(j.state, 'LIVE');
    assert.equal(j.mode, 'copy');
    assert.ok(j.pid > 0);
    process.kill(j.pid, 0);
  } finally {
    delDevice(id);
  }
  assert.ok(!fs.existsSync(`/dev/ublkb${id}`) && !fs.existsSync(`/dev/ublkc${id}`), 'del leaves no /dev/ublk*ID behind');
  assert.equal(cli(['list', '-n', String(id)]).status !== 0, true, 'list of a deleted id fails');
  assert.deepEqual(dmesgProblems(mark), []);
});

test('the dmesg scan fails without its marker and reports a warning logged after it', { skip }, (t) => {
  assert.throws(() => dmesgProblems(`ublkit-test-never-written-${process.pid}-${Date.now()}`), /not in the kernel log/);
  const mark = dmesgMark('scan');
  assert.deepEqual(dmesgProblems(mark), []);
  // A fake warning in a real host's log would alarm whoever reads it: only in the throw-away VM.
  if (!process.env.UBLKIT_IN_VM) {
    t.skip('the positive case writes a fake WARNING to the kernel log: VM only');
    return;
  }
  fs.writeFileSync('/dev/kmsg', 'ublkit scan self-test: WARNING: not a real one\n');
  assert.equal(dmesgProblems(mark).length, 1);
});

test('two devices at once: each its own id, both listed, del -n removes only its own', { skip }, () => {
  const ids: number[] = [];
  try {
    ids.push(addDevice(['-t', 'null', '-q', '1']));
    ids.push(addDevice(['-t', 'memory', '--size', '16M', '-q', '1']));
    const [a, b] = ids;
    assert.notEqual(a, b);
    const all = JSON.parse(cli(['list', '--json']).stdout) as Array<{ id: number }>;
    assert.ok(all.some((d) => d.id === a) && all.some((d) => d.id === b));
    const r = cli(['del', '-n', String(a)]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(!ublkIds().includes(a), `ublkc${a} is gone`);
    assert.equal(listJson(b).state, 'LIVE', 'the other device is untouched');
  } finally {
    for (const id of ids) delDevice(id);
  }
  for (const id of ids) assert.ok(!ublkIds().includes(id), `ublkc${id} is gone`);
});

// No test runs `del -a`: it deletes every ublk device on the machine, the test's or not. Its
// status rules (one line per failure, exit 1) are tested without a kernel (test/unit/lifecycle).

const cpusAllowed = (statusFile: string): string => /Cpus_allowed_list:\s*(\S+)/.exec(fs.readFileSync(statusFile, 'utf8'))![1];

test('each queue thread runs on its queue\'s first CPU, as kublk\'s; --no_pin leaves every thread unbound', {
  skip: skip ?? (os.cpus().length < 2 ? 'needs two CPUs' : undefined),
}, () => {
  const mine = cpusAllowed('/proc/self/status');
  for (const pin of [true, false]) {
    const id = addDevice(['-t', 'null', '-q', '2', ...(pin ? [] : ['--no_pin'])]);
    try {
      const first = [...cli(['list', '-n', String(id)]).stdout.matchAll(/queue (\d+): affinity\((\d+)/g)].map((m) => m[2]);
      assert.equal(first.length, 2);
      const pid = listJson(id).pid;
      const threads = fs.readdirSync(`/proc/${pid}/task`).map((t) => cpusAllowed(`/proc/${pid}/task/${t}/status`));
      if (pin) {
        assert.equal(cpusAllowed(`/proc/${pid}/status`), first[0], 'the daemon thread serves queue 0 on its CPU');
        assert.ok(threads.includes(first[1]), `a thread serves queue 1 on CPU ${first[1]}: ${threads.join(' ')}`);
      } else {
        assert.deepEqual([...new Set(threads)], [mine], 'no thread bound');
      }
    } finally {
      delDevice(id);
    }
  }
});

test('features prints the kernel bits ublkit implements, kublk format', { skip }, () => {
  const r = cli(['features']);
  assert.equal(r.status, 0);
  const lines = r.stdout.trim().split('\n');
  assert.match(lines[0], /^ublk_drv features: 0x[0-9a-f]+$/);
  for (const l of lines.slice(1)) assert.match(l, /^0x[0-9a-f ]{16}: UBLK_F_[A-Z_]+$/);
  assert.ok(r.stdout.includes('UBLK_F_CMD_IOCTL_ENCODE'));
  assert.ok(!r.stdout.includes('unknown'));
});

test('bad input: one-line error, non-zero exit, no device left behind', { skip }, () => {
  const before = ublkNodes();
  const empty = path.join(work, 'empty.img');
  fs.writeFileSync(empty, '');
  const odd = path.join(work, 'odd.img');
  fs.writeFileSync(odd, Buffer.alloc(1000));
  const cases: Array<[string[], RegExp]> = [
    [['add', '-t', 'loop', path.join(work, 'missing.img')], /does not exist/],
    [['add', '-t', 'loop', empty], /empty/],
    [['add', '-t', 'loop', odd], /not a multiple/],
    [['add', '-t', 'loop'], /exactly one backing file/],
    [['add', '-t', 'nosuch'], /no such tgt type/],
    [['add', '-t', 'null', '-q', '0'], /number of queues/],
    [['add', '-t', 'null', '-d', '5000'], /queue depth/],
    [['add', '-t', 'memory'], /--size/],
    [['add', '-t', 'memory', '--size', '1000'], /multiple of 512/],
    // The kernel's lack of zero copy (6.12) is reported before the target's.
    [['add', '-t', 'memory', '-z', '--size', '1M'], lacks('ZERO_COPY') ? /needs UBLK_F_SUPPORT_ZERO_COPY .* which this kernel lacks/ : /pass-through/],
    [['add', '-t', 'null', '-z', '-u'], /too many data copy modes/],
    // An id no device has: a fixed one could be someone else's device.
    [['del', '-n', String(freeId())], /ENODEV/],
    [['bogus'], /unknown command/],
  ];
  for (const [args, re] of cases) {
    const r = cli(args);
    assert.notEqual(r.status, 0, `${args.join(' ')} must fail`);
    const err = r.stderr.trim();
    assert.match(err, re, `${args.join(' ')}: ${err}`);
    assert.equal(err.split('\n').length, 1, `one line for ${args.join(' ')}: ${err}`);
  }
  assert.deepEqual(ublkNodes(), before);
});
