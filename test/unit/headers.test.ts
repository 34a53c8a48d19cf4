// Our constants against the kernel's installed uapi headers, where those are present (gcc + headers).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import * as U from '../../src/uapi/ublk.js';
import * as IO from '../../src/uapi/io-uring.js';

const HDR = '/usr/include/linux/ublk_cmd.h';
const cc = spawnSync('sh', ['-c', 'command -v cc']).status === 0;
const skip = !fs.existsSync(HDR) ? `no ${HDR}` : !cc ? 'no C compiler' : undefined;

/** Compiles a program printing each macro the installed headers define; returns name -> value. */
function headerValues(header: string, names: string[]): Map<string, bigint> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ublkit-hdr-'));
  const body = names.map((n) => `#ifdef ${n}\n  printf("${n} %llu\\n", (unsigned long long)(${n}));\n#endif`).join('\n');
  fs.writeFileSync(path.join(dir, 'p.c'), `#include <stdio.h>\n#include <errno.h>\n#include <${header}>\nint main(void){\n${body}\nreturn 0;}\n`);
  const b = spawnSync('cc', ['-o', path.join(dir, 'p'), path.join(dir, 'p.c')], { encoding: 'utf8' });
  assert.equal(b.status, 0, b.stderr);
  const out = spawnSync(path.join(dir, 'p'), { encoding: 'utf8' }).stdout;
  fs.rmSync(dir, { recursive: true });
  return new Map(out.trim().split('\n').filter(Boolean).map((l) => {
    const [k, v] = l.split(' ');
    return [k, BigInt(v)];
  }));
}

test('ublk constants match <linux/ublk_cmd.h> for every name it defines', { skip }, () => {
  const ours = Object.entries(U).filter(([k, v]) => typeof v === 'number' && /^(UBLK|UBLKSRV)_/.test(k)) as Array<[string, number]>;
  const theirs = headerValues('linux/ublk_cmd.h', ours.map(([k]) => k));
  assert.ok(theirs.size > 20, `compared ${theirs.size} names`);
  for (const [k, v] of theirs) {
    const mine = BigInt.asUintN(64, BigInt(ours.find(([n]) => n === k)![1]));
    assert.equal(mine, BigInt.asUintN(64, v), k);
  }
});

test('io_uring constants match <linux/io_uring.h>', { skip }, () => {
  const ours = Object.entries(IO).filter(([k, v]) => typeof v === 'number' && /^(IORING|IOSQE)_/.test(k)) as Array<[string, number]>;
  const theirs = headerValues('linux/io_uring.h', ours.map(([k]) => k));
  assert.ok(theirs.size > 15);
  for (const [k, v] of theirs) assert.equal(BigInt(ours.find(([n]) => n === k)![1]), v, k);
});
