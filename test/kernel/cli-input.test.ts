// CLI input on the real driver: --opt=value reaches the daemon; bad values fail before any device exists.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { kernelSkipReason, cli, addDevice, delDevice, ublkNodes } from '../helpers/kernel.js';

const skip = kernelSkipReason();

test('--opt=value: the daemon re-reads the same command line and serves what was asked', { skip }, () => {
  const id = addDevice(['--type=null', '--queues=1', '--depth=16', '--max_io_buf_bytes=65536']);
  try {
    const l = cli(['list', `--number=${id}`]);
    assert.equal(l.status, 0);
    const lines = l.stdout.split('\n');
    assert.match(lines[0], new RegExp(`^dev id ${id}: nr_hw_queues 1 queue_depth 16 block size 512 dev_capacity 524288000$`));
    assert.match(lines[1], /^\tmax rq size 65536 daemon pid \d+ flags 0x[0-9a-f]+ state LIVE$/);
  } finally {
    delDevice(id);
  }
});

test('out-of-range and unknown options: one line, -EINVAL, no device added', { skip }, () => {
  const before = ublkNodes();
  const cases: Array<[string[], RegExp]> = [
    [['add', '-t', 'null', '--max_io_buf_bytes', '5000'], /^ublkit: --max_io_buf_bytes 5000: must be a multiple of the \d+-byte page size/],
    [['add', '-t', 'null', '--max_io_buf_bytes=2048'], /^ublkit: --max_io_buf_bytes 2048: /],
    [['add', '-t', 'null', `--max_io_buf_bytes=${(32 << 20) + 4096}`], /^ublkit: --max_io_buf_bytes \d+: /],
    [['add', '-t', 'null', '--queues=0'], /^ublkit: --queues 0: number of queues must be 1\.\.32$/],
    [['add', '-t', 'null', '-n', String(2 ** 20)], /^ublkit: -n 1048576: device id must be -1\.\.1048575$/],
    [['add', '-t', 'null', '--no_such_option', '1'], /^ublkit: unknown option '--no_such_option'$/],
    [['del', '-n', 'x'], /^ublkit: -n x: device id must be an integer$/],
  ];
  for (const [args, re] of cases) {
    const r = cli(args);
    assert.equal(r.status, 234, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr.trimEnd(), re);
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line for ${args.join(' ')}`);
    assert.equal(r.stdout, '');
  }
  assert.deepEqual(ublkNodes(), before, 'no device left behind');
});
