// Our constants and struct layouts against the kernel's installed uapi headers, where present (cc + headers).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import * as U from '../../src/uapi/ublk.js';
import * as IO from '../../src/uapi/io-uring.js';
import { IO_DESC } from '../../src/uapi/io-desc.js';
import { IO_CMD } from '../../src/uapi/io-cmd.js';
import { BATCH_IO, ELEM_HEADER } from '../../src/uapi/batch.js';
import { IO_URING_BUF, IO_URING_BUF_REG } from '../../src/uapi/buf-ring.js';
import { SHMEM_BUF_REG } from '../../src/uapi/structs.js';
import * as SK from '../../src/uapi/socket.js';

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

/**
 * Compiles a program printing offsetof() of each field (and sizeof) of `struct name` from the
 * installed header; returns field -> offset, with 'size' for sizeof.
 */
function headerOffsets(header: string, name: string, fields: string[]): Map<string, number> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ublkit-off-'));
  const body = fields.map((f) => `  printf("${f} %zu\\n", offsetof(struct ${name}, ${f}));`).join('\n');
  fs.writeFileSync(path.join(dir, 'p.c'), `#include <stdio.h>\n#include <stddef.h>\n#include <${header}>\nint main(void){\n${body}\n  printf("size %zu\\n", sizeof(struct ${name}));\nreturn 0;}\n`);
  const b = spawnSync('cc', ['-o', path.join(dir, 'p'), path.join(dir, 'p.c')], { encoding: 'utf8' });
  assert.equal(b.status, 0, b.stderr);
  const out = spawnSync(path.join(dir, 'p'), { encoding: 'utf8' }).stdout;
  fs.rmSync(dir, { recursive: true });
  return new Map(out.trim().split('\n').map((l) => {
    const [k, v] = l.split(' ');
    return [k, Number(v)];
  }));
}

/** Our layout tables (field -> byte offset, plus size), each against the header that defines the struct. */
const layouts: Array<[string, string, Record<string, number>]> = [
  ['linux/ublk_cmd.h', 'ublksrv_io_desc', IO_DESC],
  ['linux/ublk_cmd.h', 'ublksrv_io_cmd', IO_CMD],
  ['linux/ublk_cmd.h', 'ublk_batch_io', BATCH_IO],
  ['linux/ublk_cmd.h', 'ublk_elem_header', ELEM_HEADER],
  ['linux/ublk_cmd.h', 'ublk_shmem_buf_reg', SHMEM_BUF_REG],
  ['linux/io_uring.h', 'io_uring_buf', IO_URING_BUF],
  ['linux/io_uring.h', 'io_uring_buf_reg', IO_URING_BUF_REG],
  ['linux/io_uring.h', 'io_uring_sqe', IO.SQE],
  ['linux/io_uring.h', 'io_uring_rsrc_register', IO.RSRC_REGISTER],
];

for (const [header, name, ours] of layouts) {
  const text = fs.existsSync(`/usr/include/${header}`) ? fs.readFileSync(`/usr/include/${header}`, 'utf8') : '';
  const why = skip ?? (!text.includes(`struct ${name} {`) ? `no struct ${name} in the installed <${header}> (older kernel headers)` : undefined);
  test(`struct ${name}: our offsets match <${header}>`, { skip: why }, () => {
    const fields = Object.keys(ours).filter((f) => f !== 'size');
    const theirs = headerOffsets(header, name, fields);
    for (const f of fields) assert.equal(ours[f], theirs.get(f), `${name}.${f}`);
    if ('size' in ours) assert.equal(ours.size, theirs.get('size'), `sizeof(struct ${name})`);
  });
}

// The libc structs of the nbd target's SENDMSG (headers always present where a compiler is).
for (const [header, name, ours] of [['sys/socket.h', 'msghdr', SK.MSGHDR], ['sys/uio.h', 'iovec', SK.IOVEC]] as const) {
  test(`struct ${name}: our offsets match <${header}>`, { skip: cc ? undefined : 'no C compiler' }, () => {
    const fields = Object.keys(ours).filter((f) => f !== 'size');
    const theirs = headerOffsets(header, name, fields);
    for (const f of fields) assert.equal((ours as Record<string, number>)[f], theirs.get(f), `${name}.${f}`);
    assert.equal(ours.size, theirs.get('size'), `sizeof(struct ${name})`);
  });
}
