// Linux 7.3 additions without a kernel: --io_desc_size, --rotate_auto_buf and set_params parsing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
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

test('set_params: kublk\'s defaults, --param_types, and values into struct ublk_params', async () => {
  const { setParamsRequest, parseParamTypes } = await import('../../src/cli/commands/set-params.js');
  const U = await import('../../src/uapi/ublk.js');
  const req = (s: string) => setParamsRequest(parseArgs(['set_params', ...s.split(' ').filter(Boolean)]));
  const d = req('-q 1 -d 2');
  assert.equal(d.types, U.UBLK_PARAM_TYPE_BASIC);
  assert.deepEqual(d.params.basic, { attrs: 0, logicalBsShift: 9, physicalBsShift: 12, ioMinShift: 9, ioOptShift: 12, maxSectors: 2048, chunkSectors: 128, devSectors: 2048, virtBoundaryMask: 0 });
  assert.deepEqual(d.params.zoned, { maxOpenZones: 0, maxActiveZones: 0, maxZoneAppendSectors: 8 });
  assert.equal(parseParamTypes('none'), 0);
  assert.equal(parseParamTypes('basic,zoned'), U.UBLK_PARAM_TYPE_BASIC | U.UBLK_PARAM_TYPE_ZONED);
  assert.equal(parseParamTypes('zoned'), U.UBLK_PARAM_TYPE_ZONED);
  assert.throws(() => parseParamTypes('basic,discard'), /--param_types basic,discard: use basic, zoned/);
  const z = req('-u --zoned --param_types basic,zoned --chunk_sectors 96 --dev_sectors 1536 --max_open_zones 5 --max_active_zones 6 --max_zone_append_sectors 0 --logical_bs_shift 12 --physical_bs_shift 9 --max_sectors 2049');
  assert.equal(z.params.basic.chunkSectors, 96);
  assert.equal(z.params.basic.devSectors, 1536);
  assert.equal(z.params.basic.logicalBsShift, 12);
  assert.equal(z.params.basic.physicalBsShift, 9);
  assert.equal(z.params.basic.maxSectors, 2049);
  assert.deepEqual(z.params.zoned, { maxOpenZones: 5, maxActiveZones: 6, maxZoneAppendSectors: 0 });
  assert.throws(() => req('--logical_bs_shift 256'), /--logical_bs_shift 256: logical block shift must be 0\.\.255/);
  assert.throws(() => req('--max_sectors -1'), /max sectors must be 0\.\./);
});

test('set_params encodes the types word as given, even without the basic type', async () => {
  const S = await import('../../src/uapi/structs.js');
  const U = await import('../../src/uapi/ublk.js');
  const v = new DataView(new ArrayBuffer(U.SIZEOF_UBLK_PARAMS));
  const basic = { attrs: 0, logicalBsShift: 9, physicalBsShift: 12, ioMinShift: 9, ioOptShift: 12, maxSectors: 2048, chunkSectors: 128, devSectors: 2048, virtBoundaryMask: 0 };
  S.encodeParams(v, 0, { basic, zoned: { maxOpenZones: 1, maxActiveZones: 2, maxZoneAppendSectors: 8 } }, 0);
  assert.equal(v.getUint32(4, true), 0);
  assert.equal(v.getUint32(84, true), 8, 'values are written all the same');
  S.encodeParams(v, 0, { basic, zoned: { maxOpenZones: 1, maxActiveZones: 2, maxZoneAppendSectors: 8 } });
  assert.equal(v.getUint32(4, true), U.UBLK_PARAM_TYPE_BASIC | U.UBLK_PARAM_TYPE_ZONED);
});

test('set_params is in the command table: help, usage, and a bad --param_types exits 234 before any kernel call', () => {
  const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
  const run = (args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
  const h = run(['help', 'set_params']);
  assert.equal(h.status, 0);
  assert.match(h.stdout, /^usage: ublkit set_params /);
  assert.match(run(['help']).stdout, /\n  set_params /);
  const b = run(['set_params', '--param_types', 'zoned,bogus']);
  assert.equal(b.status, 234, 'kublk: main() returns -EINVAL');
  assert.equal(b.stderr, 'ublkit: --param_types zoned,bogus: use basic, zoned (comma-separated) or none\n');
  assert.equal(b.stdout, '');
});
