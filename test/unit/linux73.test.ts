// Linux 7.3 additions without a kernel: --io_desc_size, --rotate_auto_buf and set_params parsing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseArgs } from '../../src/cli/args.js';
import { deviceOptions } from '../../src/cli/add-options.js';
import { SlotTable } from '../../src/ublk/engine/slots.js';
import { autoBufIndex } from '../../src/ublk/engine/auto-buf-reg.js';

const opts = (s: string) => deviceOptions(parseArgs(['add', ...s.split(' ')]));
const refusal = (s: string): string => {
  try {
    opts(s);
  } catch (e) {
    return (e as Error).message;
  }
  return '';
};

test('--io_desc_size: the kernel\'s sizes pass through, others are refused before ADD_DEV', () => {
  assert.equal(opts('-t null --io_desc_size 64').ioDescSize, 64);
  assert.equal(opts('-t null --io_desc_size=0x18').ioDescSize, 24);
  assert.equal(opts('-t null').ioDescSize, undefined, 'unset: no UBLK_F_IO_DESC_SIZE asked for');
  for (const n of ['16', '60', '264', '0']) {
    assert.equal(refusal(`-t null --io_desc_size ${n}`), `--io_desc_size ${n}: must be a multiple of 8 from 24 to 256`);
  }
  assert.match(refusal('-t null --io_desc_size 70000'), /--io_desc_size 70000: io descriptor size must be 0\.\.65535/);
  assert.match(refusal('-t null --io_desc_size x'), /integer/);
});

test('--rotate_auto_buf needs --auto_zc and --batch, worded as kublk', () => {
  const o = opts('-t loop f.img -q 1 --nthreads 1 -b --auto_zc --rotate_auto_buf');
  assert.equal(o.rotateAutoBuf, true);
  assert.equal(o.mode, 'auto-buf-reg');
  for (const s of ['-t null --rotate_auto_buf', '-t null -b --rotate_auto_buf', '-t null --auto_zc --rotate_auto_buf', '-t null -b -z --rotate_auto_buf']) {
    assert.equal(refusal(s), 'rotate_auto_buf requires --auto_zc and --batch', s);
  }
  assert.equal(opts('-t null -b --auto_zc').rotateAutoBuf, undefined);
});

test('buffer index rotation: each slot alternates between s and s + n; the fallback index stays 0xffff', () => {
  const t = new SlotTable([[0, 0], [0, 1], [1, 0]]);
  assert.deepEqual([...t.bufIndex], [0, 1, 2], 'PREP names the slot\'s own index');
  assert.equal(t.rotate(1), 4);
  assert.deepEqual([...t.bufIndex], [0, 4, 2], 'only the committed slot moves');
  assert.equal(t.rotate(1), 1);
  assert.equal(t.rotate(2), 5);
  assert.equal(t.rotate(0), 3);
  assert.equal(autoBufIndex(2, false, t.bufIndex[2]), 5);
  assert.equal(autoBufIndex(2, true, t.bufIndex[2]), 0xffff);
  assert.equal(autoBufIndex(2, false), 2);
});
