// The zoned target's model without a kernel: write pointers, conditions, open / active limits and
// the errnos the kernel expects; the blk_zone layout; the zoned params and command line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import * as Z from '../../src/uapi/blkzoned.js';
import * as U from '../../src/uapi/ublk.js';
import { create, prepare } from '../../src/targets/zoned/index.js';
import { buildParams, zonedFlag } from '../../src/ublk/params.js';
import { parseArgs } from '../../src/cli/args.js';
import { deviceOptions } from '../../src/cli/add-options.js';
import type { Target } from '../../src/target/types.js';

const MiB = 1 << 20;
const ZS = 2048; // 1 MiB zones, in sectors

function zoned(cfg: { conventional?: number; maxOpen?: number; maxActive?: number } = {}): Target {
  return create(prepare({ size: 8 * MiB, zoneSize: MiB, ...cfg }));
}

function report(t: Target, sector = 0, nr = 64): Z.BlkZone[] {
  const buf = new Uint8Array(nr * Z.BLK_ZONE.size);
  const n = t.reportZones!(sector, nr, buf) as number;
  const v = new DataView(buf.buffer);
  return Array.from({ length: n }, (_, i) => Z.decodeBlkZone(v, i * Z.BLK_ZONE.size));
}

const errno = (code: string) => (e: unknown) => (e as { code?: string }).code === code;
const sectors = (n: number) => new Uint8Array(n * 512).fill(0xab);

test('struct blk_zone: offsets and a record round trip', () => {
  assert.deepEqual({ ...Z.BLK_ZONE }, { start: 0, len: 8, wp: 16, type: 24, cond: 25, non_seq: 26, reset: 27, capacity: 32, size: 64 });
  const v = new DataView(new ArrayBuffer(64));
  new Uint8Array(v.buffer).fill(0xff);
  const z = { start: 2 ** 40, len: 2048, wp: 2 ** 40 + 8, type: 2, cond: 3, capacity: 2048 };
  Z.encodeBlkZone(v, 0, z);
  assert.deepEqual(Z.decodeBlkZone(v, 0), z);
  assert.equal(v.getUint32(28, true), 0, 'resv bytes zeroed');
  assert.ok(new Uint8Array(v.buffer, 40).every((b) => b === 0), 'reserved tail zeroed');
});

test('struct blk_zone: our offsets match <linux/blkzoned.h>', { skip: !fs.existsSync('/usr/include/linux/blkzoned.h') || spawnSync('sh', ['-c', 'command -v cc']).status !== 0 ? 'no blkzoned.h or no C compiler' : undefined }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ublkit-bz-'));
  const f = ['start', 'len', 'wp', 'type', 'cond', 'non_seq', 'reset', 'capacity'];
  const body = f.map((x) => `printf("${x} %zu\\n", offsetof(struct blk_zone, ${x}));`).join('\n') + 'printf("size %zu\\n", sizeof(struct blk_zone));' +
    'printf("c %d %d %d %d %d %d %d %d\\n", BLK_ZONE_COND_NOT_WP, BLK_ZONE_COND_EMPTY, BLK_ZONE_COND_IMP_OPEN, BLK_ZONE_COND_EXP_OPEN, BLK_ZONE_COND_CLOSED, BLK_ZONE_COND_READONLY, BLK_ZONE_COND_FULL, BLK_ZONE_COND_OFFLINE);' +
    'printf("e %d\\n", ETOOMANYREFS);printf("t %d %d %d\\n", BLK_ZONE_TYPE_CONVENTIONAL, BLK_ZONE_TYPE_SEQWRITE_REQ, BLK_ZONE_TYPE_SEQWRITE_PREF);';
  fs.writeFileSync(path.join(dir, 'p.c'), `#include <stdio.h>\n#include <stddef.h>\n#include <errno.h>\n#include <linux/blkzoned.h>\nint main(void){${body}return 0;}\n`);
  assert.equal(spawnSync('cc', ['-o', path.join(dir, 'p'), path.join(dir, 'p.c')]).status, 0);
  const out = spawnSync(path.join(dir, 'p'), { encoding: 'utf8' }).stdout.trim().split('\n');
  fs.rmSync(dir, { recursive: true });
  const m = new Map(out.map((l) => [l.split(' ')[0], l.split(' ').slice(1).map(Number)]));
  for (const x of [...f, 'size']) assert.equal(m.get(x)![0], (Z.BLK_ZONE as Record<string, number>)[x], x);
  assert.deepEqual(m.get('c'), [Z.BLK_ZONE_COND_NOT_WP, Z.BLK_ZONE_COND_EMPTY, Z.BLK_ZONE_COND_IMP_OPEN, Z.BLK_ZONE_COND_EXP_OPEN, Z.BLK_ZONE_COND_CLOSED, Z.BLK_ZONE_COND_READONLY, Z.BLK_ZONE_COND_FULL, Z.BLK_ZONE_COND_OFFLINE]);
  assert.deepEqual(m.get('e'), [Z.ETOOMANYREFS]);
  assert.deepEqual(m.get('t'), [Z.BLK_ZONE_TYPE_CONVENTIONAL, Z.BLK_ZONE_TYPE_SEQWRITE_REQ, Z.BLK_ZONE_TYPE_SEQWRITE_PREF]);
});

test('zoned: report shows conventional then empty sequential zones; a partial report from a later zone', () => {
  const t = zoned({ conventional: 2 });
  const zs = report(t);
  assert.equal(zs.length, 8);
  assert.deepEqual(zs.map((z) => z.type), [1, 1, 2, 2, 2, 2, 2, 2]);
  assert.deepEqual(zs.map((z) => z.cond), [0, 0, 1, 1, 1, 1, 1, 1]);
  assert.deepEqual(zs.map((z) => z.start), zs.map((_, i) => i * ZS));
  assert.ok(zs.slice(2).every((z) => z.wp === z.start && z.len === ZS && z.capacity === ZS));
  assert.deepEqual(report(t, 6 * ZS, 64).map((z) => z.start), [6 * ZS, 7 * ZS], 'cut at the last zone');
  assert.equal(report(t, 0, 3).length, 3);
});

test('zoned: sequential writes only at the pointer, reads past it are zeroes, a full zone refuses writes', () => {
  const t = zoned({ conventional: 1 });
  const z1 = ZS * 512;
  assert.throws(() => t.write(sectors(8), z1 + 4096, { fua: false }), errno('EIO'), 'off the write pointer');
  assert.equal(t.write(sectors(8), z1, { fua: false }), 4096);
  assert.equal(report(t)[1].cond, Z.BLK_ZONE_COND_IMP_OPEN);
  assert.equal(report(t)[1].wp, ZS + 8);
  const r = new Uint8Array(8192).fill(0x11);
  t.read(r, z1);
  assert.ok(r.subarray(0, 4096).every((b) => b === 0xab) && r.subarray(4096).every((b) => b === 0), 'zeroes past the pointer');
  assert.throws(() => t.write(sectors(8), z1, { fua: false }), errno('EIO'), 'rewrite behind the pointer');
  assert.throws(() => t.write(sectors(ZS), z1 + 4096, { fua: false }), errno('EIO'), 'crosses the zone end');
  t.write(sectors(ZS - 8), z1 + 4096, { fua: false });
  assert.equal(report(t)[1].cond, Z.BLK_ZONE_COND_FULL);
  assert.throws(() => t.zoneAppend!(sectors(8), ZS), errno('EIO'), 'append to a full zone');
  // Conventional zone 0: anywhere, in any order; append is refused there.
  t.write(sectors(8), 65536, { fua: false });
  t.write(sectors(8), 0, { fua: false });
  assert.equal(report(t)[0].cond, Z.BLK_ZONE_COND_NOT_WP);
  assert.throws(() => t.zoneAppend!(sectors(8), 0), errno('EIO'));
});

test('zoned: zone append lands at the write pointer and says where', () => {
  const t = zoned();
  assert.deepEqual(t.zoneAppend!(sectors(16), 3 * ZS), { bytes: 8192, sector: 3 * ZS });
  assert.deepEqual(t.zoneAppend!(sectors(8), 3 * ZS), { bytes: 4096, sector: 3 * ZS + 16 });
  assert.equal(report(t)[3].wp, 3 * ZS + 24);
});

test('zoned: open, close, finish and reset move conditions; reset zeroes the data', () => {
  const t = zoned();
  t.zoneOpen!(0);
  assert.equal(report(t)[0].cond, Z.BLK_ZONE_COND_EXP_OPEN);
  t.zoneClose!(0);
  assert.equal(report(t)[0].cond, Z.BLK_ZONE_COND_EMPTY, 'closing an unwritten zone empties it');
  t.write(sectors(8), 0, { fua: false });
  t.zoneClose!(0);
  assert.equal(report(t)[0].cond, Z.BLK_ZONE_COND_CLOSED);
  t.write(sectors(8), 4096, { fua: false });
  assert.equal(report(t)[0].cond, Z.BLK_ZONE_COND_IMP_OPEN, 'a write reopens a closed zone');
  t.zoneFinish!(0);
  assert.deepEqual([report(t)[0].cond, report(t)[0].wp], [Z.BLK_ZONE_COND_FULL, ZS]);
  t.zoneReset!(0);
  assert.deepEqual([report(t)[0].cond, report(t)[0].wp], [Z.BLK_ZONE_COND_EMPTY, 0]);
  const r = new Uint8Array(4096).fill(1);
  t.read(r, 0);
  assert.ok(r.every((b) => b === 0));
  t.write(sectors(8), ZS * 512, { fua: false });
  t.write(sectors(8), 2 * ZS * 512, { fua: false });
  t.zoneResetAll!();
  assert.ok(report(t).every((z) => z.cond === Z.BLK_ZONE_COND_EMPTY && z.wp === z.start));
  assert.throws(() => t.zoneOpen!(8), errno('EIO'), 'not a zone start');
});

test('zoned: open limit closes an implicitly open zone, else ETOOMANYREFS; active limit is EOVERFLOW', () => {
  const t = zoned({ maxOpen: 2, maxActive: 3 });
  t.zoneOpen!(0);
  t.zoneOpen!(ZS);
  assert.throws(() => t.zoneOpen!(2 * ZS), errno('ETOOMANYREFS'), 'two explicitly open zones');
  assert.throws(() => t.write(sectors(8), 2 * ZS * 512, { fua: false }), errno('ETOOMANYREFS'));
  t.zoneClose!(ZS); // empty again: not active
  t.write(sectors(8), 2 * ZS * 512, { fua: false });
  t.write(sectors(8), 3 * ZS * 512, { fua: false });
  // 0 exp open, 2 imp open (the first implicitly closed to make room), so zone 2 is now closed.
  const zs = report(t);
  assert.equal(zs[0].cond, Z.BLK_ZONE_COND_EXP_OPEN);
  assert.equal(zs[2].cond, Z.BLK_ZONE_COND_CLOSED);
  assert.equal(zs[3].cond, Z.BLK_ZONE_COND_IMP_OPEN);
  // Active: zones 0, 2, 3. A fourth is refused.
  assert.throws(() => t.write(sectors(8), 4 * ZS * 512, { fua: false }), errno('EOVERFLOW'));
  assert.throws(() => t.zoneOpen!(4 * ZS), errno('EOVERFLOW'));
  t.zoneFinish!(2 * ZS);
  t.write(sectors(8), 4 * ZS * 512, { fua: false });
});

test('zoned: params carry the zone size and limits; UBLK_F_ZONED needs user copy and the kernel bit', () => {
  const t = zoned({ maxOpen: 2, maxActive: 4 });
  const p = buildParams(t, MiB);
  assert.equal(p.basic.chunkSectors, ZS);
  assert.equal(p.basic.devSectors, 8 * ZS);
  assert.deepEqual(p.zoned, { maxOpenZones: 2, maxActiveZones: 4, maxZoneAppendSectors: ZS });
  assert.equal(buildParams(t, 256 << 10).zoned!.maxZoneAppendSectors, 512, 'capped by the largest request');
  assert.equal(zonedFlag(t, 'user-copy', U.UBLK_F_ZONED, 0), U.UBLK_F_ZONED);
  assert.throws(() => zonedFlag(t, 'copy', U.UBLK_F_ZONED, 0), /needs user copy mode/);
  assert.throws(() => zonedFlag(t, 'user-copy', 0, 0), /no zoned support/);
  assert.throws(() => zonedFlag(t, 'user-copy', U.UBLK_F_ZONED, U.UBLK_F_BATCH_IO), /batch/);
  assert.equal(zonedFlag({ size: 4096, read: () => 0, write: () => 0 }, 'copy', 0, 0), 0);
  const bad = { ...t, limits: { zoned: { zoneSectors: 3000 } } };
  assert.throws(() => buildParams(bad, MiB), /power of two/);
  const noReport = { ...t, reportZones: undefined };
  assert.throws(() => buildParams(noReport, MiB), /reportZones/);
});

test('zoned: bad geometry and command lines fail with one line', () => {
  assert.throws(() => prepare({ size: 8 * MiB, zoneSize: 3 * MiB }), /power of two/);
  assert.throws(() => prepare({ size: 9 * MiB, zoneSize: MiB * 2 }), /multiple/);
  assert.throws(() => prepare({ size: 8 * MiB, zoneSize: MiB, conventional: 8 }), /conventional/);
  assert.throws(() => prepare({ size: 8 * MiB, zoneSize: MiB, maxOpen: 9 }), /max open/);
  const opts = (s: string) => deviceOptions(parseArgs(s.split(' ')));
  assert.throws(() => opts('add -t zoned --size 64M -u'), /--zone_size/);
  assert.throws(() => opts('add -t zoned --size 64M --zone_size 4M -u -r 1'), /cannot be recovered/);
  const o = opts('add -t zoned --size 64M --zone_size 4M --conventional 2 --max_open 3 --max_active 5 -u');
  assert.deepEqual((o.target as { config: unknown }).config, { size: '64M', zoneSize: '4M', conventional: 2, maxOpen: 3, maxActive: 5 });
});
