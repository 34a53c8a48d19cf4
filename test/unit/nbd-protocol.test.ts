// The NBD client's wire code on hand-built bytes: handshake (GO, EXPORT_NAME fallback, errors),
// request encoding, simple and structured replies split anywhere, out of order, interleaved.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as P from '../../src/targets/nbd/protocol.js';
import { negotiate, type HandshakeStream } from '../../src/targets/nbd/handshake.js';
import { ReplyParser, type Pending } from '../../src/targets/nbd/replies.js';
import { geometry } from '../../src/targets/nbd/index.js';

/** Big-endian byte builder for fixtures. */
class B {
  private readonly parts: number[] = [];
  u8(n: number) { this.parts.push(n & 0xff); return this; }
  u16(n: number) { return this.u8(n >> 8).u8(n); }
  u32(n: number) { return this.u16(Math.floor(n / 0x10000)).u16(n & 0xffff); }
  u64(n: bigint | number) { const b = BigInt(n); return this.u32(Number(b >> 32n)).u32(Number(b & 0xffffffffn)); }
  bytes(b: Uint8Array | string) { for (const x of typeof b === 'string' ? new TextEncoder().encode(b) : b) this.u8(x); return this; }
  get(): Uint8Array { return Uint8Array.from(this.parts); }
}

const greeting = (flags = 3) => new B().u64(P.NBDMAGIC).u64(P.IHAVEOPT).u16(flags);
const optReply = (b: B, option: number, type: number, data: Uint8Array = new Uint8Array(0)) =>
  b.u64(P.OPT_REPLY_MAGIC).u32(option).u32(type).u32(data.byteLength).bytes(data);
const infoExport = (size: number, flags: number) => new B().u16(P.INFO_EXPORT).u64(size).u16(flags).get();
const infoBlock = (min: number, pref: number, max: number) => new B().u16(P.INFO_BLOCK_SIZE).u32(min).u32(pref).u32(max).get();

/** A scripted server: the bytes it will send, and everything the client wrote. */
function script(serverBytes: Uint8Array): HandshakeStream & { sent: Uint8Array[] } {
  let at = 0;
  const sent: Uint8Array[] = [];
  return {
    sent,
    async read(n) {
      if (at + n > serverBytes.byteLength) throw new Error('the server closed the connection');
      at += n;
      return serverBytes.slice(at - n, at);
    },
    async write(b) {
      sent.push(b.slice());
    },
  };
}

test('nbd handshake: structured replies, GO with block sizes, INFO then ACK', async () => {
  const b = greeting(3);
  optReply(b, P.OPT_STRUCTURED_REPLY, P.REP_ACK);
  optReply(b, P.OPT_GO, P.REP_INFO, infoBlock(512, 4096, 1 << 20));
  optReply(b, P.OPT_GO, P.REP_INFO, new B().u16(99).u32(0).get()); // unknown info: ignored
  optReply(b, P.OPT_GO, P.REP_INFO, infoExport(1 << 30, 0x16d));
  optReply(b, P.OPT_GO, P.REP_ACK);
  const s = script(b.get());
  const info = await negotiate(s, 'disk');
  assert.deepEqual(info, { size: 1 << 30, flags: 0x16d, minBlock: 512, prefBlock: 4096, maxPayload: 1 << 20, structured: true });
  assert.deepEqual(s.sent[0], new B().u32(3).get(), 'fixed newstyle and no zeroes (offered)');
  assert.deepEqual(s.sent[1], new B().u64(P.IHAVEOPT).u32(8).u32(0).get());
  assert.deepEqual(s.sent[2], new B().u64(P.IHAVEOPT).u32(7).u32(4 + 4 + 2 + 2).u32(4).bytes('disk').u16(1).u16(3).get());
});

test('nbd handshake: no NO_ZEROES offered, structured replies refused, GO unsupported: EXPORT_NAME', async () => {
  const b = greeting(1);
  optReply(b, P.OPT_STRUCTURED_REPLY, P.REP_ERR_UNSUP);
  optReply(b, P.OPT_GO, P.REP_ERR_UNSUP, new TextEncoder().encode('what is GO'));
  b.u64(8 << 20).u16(0x3).bytes(new Uint8Array(124));
  const s = script(b.get());
  const info = await negotiate(s, 'x');
  assert.deepEqual(info, { ...P.DEFAULT_BLOCKS, size: 8 << 20, flags: 3, structured: false });
  assert.deepEqual(s.sent[0], new B().u32(1).get(), 'NO_ZEROES only when offered');
  assert.deepEqual(s.sent[3], new B().u64(P.IHAVEOPT).u32(1).u32(1).bytes('x').get());
});

test('nbd handshake: errors are one line naming the export and quoting the server', async () => {
  const b = greeting();
  optReply(b, P.OPT_STRUCTURED_REPLY, P.REP_ACK);
  optReply(b, P.OPT_GO, P.REP_ERR_BIT + 6, new TextEncoder().encode('no export named\n"nope"'));
  await assert.rejects(negotiate(script(b.get()), 'nope'), (e: Error & { code: string }) => {
    assert.equal(e.code, 'ENOENT');
    assert.equal(e.message, `nbd export 'nope': unknown export: "no export named "nope""`);
    return true;
  });
  const c = greeting();
  optReply(c, P.OPT_STRUCTURED_REPLY, P.REP_ACK);
  optReply(c, P.OPT_GO, P.REP_ERR_BIT + 2);
  await assert.rejects(negotiate(script(c.get()), 'e'), /nbd export 'e': refused by policy$/);
  await assert.rejects(negotiate(script(greeting().get().subarray(0, 10)), ''), /closed/);
  await assert.rejects(negotiate(script(new B().u64(1).u64(2).u16(1).get()), ''), /did not greet/);
  await assert.rejects(negotiate(script(new B().u64(P.NBDMAGIC).u64(0x420281861253n).u64(1 << 20).get()), ''), /old-style/);
  // EXPORT_NAME failure is a disconnect.
  const d = greeting(1);
  optReply(d, P.OPT_STRUCTURED_REPLY, P.REP_ACK);
  optReply(d, P.OPT_GO, P.REP_ERR_UNSUP);
  await assert.rejects(negotiate(script(d.get()), 'gone'), /nbd export 'gone': unknown export/);
});

test('nbd requests: 28-byte header, big endian, cookie in the low word', () => {
  const b = new Uint8Array(28);
  P.encodeRequest(P.view(b), 0, P.CMD_WRITE, P.CMD_FLAG_FUA, 0xdeadbeef, 2 ** 40 + 512, 65536);
  assert.deepEqual(b, new B().u32(0x25609513).u16(1).u16(1).u64(0xdeadbeef).u64(2 ** 40 + 512).u32(65536).get());
});

test('nbd wire errnos become the client errnos; unknown ones and ESHUTDOWN are EIO', () => {
  assert.deepEqual([1, 5, 12, 22, 28, 75, 95, 108, 4242].map(P.wireErrno), ['EPERM', 'EIO', 'ENOMEM', 'EINVAL', 'ENOSPC', 'EOVERFLOW', 'EOPNOTSUPP', 'EIO', 'EIO']);
});

const simple = (b: B, cookie: number, err = 0, data?: Uint8Array) => { b.u32(P.SIMPLE_REPLY_MAGIC).u32(err).u64(cookie); if (data) b.bytes(data); return b; };
const chunk = (b: B, cookie: number, type: number, done: boolean, payload: Uint8Array) =>
  b.u32(P.STRUCTURED_REPLY_MAGIC).u16(done ? 1 : 0).u16(type).u64(cookie).u32(payload.byteLength).bytes(payload);
const dataChunk = (offset: number, data: Uint8Array) => new B().u64(offset).bytes(data).get();
const holeChunk = (offset: number, n: number) => new B().u64(offset).u32(n).get();
const errChunk = (err: number, msg: string, offset?: number) => { const b = new B().u32(err).u16(msg.length).bytes(msg); if (offset !== undefined) b.u64(offset); return b.get(); };

/** Feeds `bytes` in pieces of `step` (0: whole) and collects the finished replies. */
function parse(reqs: Record<number, Pending>, bytes: Uint8Array, step = 0): Array<[number, string | undefined]> {
  const out: Array<[number, string | undefined]> = [];
  const p = new ReplyParser((c) => reqs[c], (c, _p, e) => {
    out.push([c, e]);
    delete reqs[c];
  });
  const n = step || bytes.byteLength;
  for (let i = 0; i < bytes.byteLength; i += n) p.feed(bytes.subarray(i, i + n));
  return out;
}

const read = (offset: number, length: number): Pending => ({ cmd: P.CMD_READ, offset, length, buf: new Uint8Array(length).fill(0xee), covered: 0 });
const other = (cmd: number): Pending => ({ cmd, offset: 0, length: 0, covered: 0 });

test('nbd replies: simple replies, out of order, split at every byte', () => {
  const data = Uint8Array.from({ length: 4096 }, (_, i) => i * 7);
  const b = new B();
  simple(b, 3, 0);
  simple(b, 1, 0, data);
  simple(b, 2, 28);
  simple(b, 4, 5);
  const bytes = b.get();
  for (const step of [0, 1, 3, 17]) {
    const reqs = { 1: read(0, 4096), 2: other(P.CMD_WRITE), 3: other(P.CMD_FLUSH), 4: read(0, 512) };
    const r1 = reqs[1];
    const r4 = reqs[4];
    assert.deepEqual(parse(reqs, bytes, step), [[3, undefined], [1, undefined], [2, 'ENOSPC'], [4, 'EIO']]);
    assert.deepEqual(r1.buf, data);
    assert.ok(r4.buf!.every((x) => x === 0xee), 'a failed simple READ carries no data');
  }
});

test('nbd replies: structured READ in chunks out of order, holes as zeroes, interleaved cookies', () => {
  const b = new B();
  chunk(b, 9, P.CHUNK_OFFSET_DATA, false, dataChunk(4096 + 3072, new Uint8Array(1024).fill(4)));
  chunk(b, 8, P.CHUNK_OFFSET_HOLE, false, holeChunk(0, 512));
  chunk(b, 9, P.CHUNK_OFFSET_HOLE, false, holeChunk(4096 + 1024, 2048));
  chunk(b, 8, P.CHUNK_OFFSET_DATA, true, dataChunk(512, new Uint8Array(512).fill(2)));
  chunk(b, 9, P.CHUNK_OFFSET_DATA, false, dataChunk(4096, new Uint8Array(1024).fill(1)));
  chunk(b, 7, P.CHUNK_NONE, true, new Uint8Array(0));
  chunk(b, 9, P.CHUNK_NONE, true, new Uint8Array(0));
  const bytes = b.get();
  for (const step of [0, 1, 5, 29]) {
    const reqs = { 7: other(P.CMD_WRITE), 8: read(0, 1024), 9: read(4096, 4096) };
    const [r8, r9] = [reqs[8], reqs[9]];
    assert.deepEqual(parse(reqs, bytes, step), [[8, undefined], [7, undefined], [9, undefined]]);
    assert.deepEqual(r8.buf, Uint8Array.from({ length: 1024 }, (_, i) => (i < 512 ? 0 : 2)));
    assert.deepEqual(r9.buf, Uint8Array.from({ length: 4096 }, (_, i) => (i < 1024 ? 1 : i < 3072 ? 0 : 4)));
  }
});

test('nbd replies: ERROR and ERROR_OFFSET chunks give the errno; a READ not fully answered (or answered twice in part) is EIO', () => {
  const b = new B();
  chunk(b, 1, P.CHUNK_ERROR_OFFSET, false, errChunk(5, 'bad sector', 512));
  chunk(b, 1, P.CHUNK_OFFSET_DATA, true, dataChunk(0, new Uint8Array(512)));
  chunk(b, 2, P.CHUNK_ERROR, true, errChunk(1, 'read only'));
  chunk(b, 3, P.CHUNK_OFFSET_DATA, true, dataChunk(0, new Uint8Array(512)));
  chunk(b, 4, 77, true, new Uint8Array(3));
  // The same half twice adds up to the length but leaves the other half unanswered.
  chunk(b, 5, P.CHUNK_OFFSET_DATA, false, dataChunk(0, new Uint8Array(512)));
  chunk(b, 5, P.CHUNK_OFFSET_HOLE, true, holeChunk(256, 512));
  const reqs = { 1: read(0, 1024), 2: other(P.CMD_WRITE), 3: read(0, 1024), 4: other(P.CMD_FLUSH), 5: read(0, 1024) };
  assert.deepEqual(parse(reqs, b.get(), 2), [[1, 'EIO'], [2, 'EPERM'], [3, 'EIO'], [4, 'EIO'], [5, 'EIO']]);
});

test('nbd replies: garbage is a protocol error, not wrong data', () => {
  const bad = (bytes: Uint8Array, reqs: Record<number, Pending>) => assert.throws(() => parse(reqs, bytes), /nbd:/);
  bad(simple(new B(), 5).get(), {});
  bad(new B().u32(0x12345678).u32(0).u64(1).get(), { 1: other(P.CMD_FLUSH) });
  bad(chunk(new B(), 1, P.CHUNK_OFFSET_DATA, true, dataChunk(4096, new Uint8Array(512))).get(), { 1: read(0, 1024) });
  bad(chunk(new B(), 1, P.CHUNK_OFFSET_HOLE, true, holeChunk(512, 1024)).get(), { 1: read(0, 1024) });
  bad(chunk(new B(), 1, P.CHUNK_NONE, false, new Uint8Array(0)).get(), { 1: other(P.CMD_WRITE) });
});

test('nbd geometry: flags to caps, block sizes to limits', () => {
  const info = { size: (1 << 30) + 100, flags: 0x17f, minBlock: 1, prefBlock: 65536, maxPayload: 1 << 20, structured: true };
  const g = geometry(info, {});
  assert.equal(g.size, 1 << 30, 'rounded down to the logical block');
  assert.deepEqual(g.caps, { flush: true, fua: true, readOnly: true, rotational: true, discard: false, writeZeroes: false });
  assert.deepEqual(g.limits, { logicalBlockShift: 9, physicalBlockShift: 16, ioMinShift: 9, ioOptShift: 16, maxIoBytes: 1 << 20, discardGranularity: 65536 });
  const g2 = geometry({ ...info, flags: 0x1 | 0x4 | 0x20 | 0x40, minBlock: 4096, prefBlock: 4096, maxPayload: 10000 }, {});
  assert.deepEqual(g2.caps, { flush: true, fua: false, readOnly: false, rotational: false, discard: true, writeZeroes: true });
  assert.equal(g2.limits.logicalBlockShift, 12);
  assert.equal(g2.limits.maxIoBytes, 8192);
  assert.throws(() => geometry({ ...info, minBlock: 8192 }, {}), /minimum block size 8192/);
  assert.throws(() => geometry({ ...info, flags: 1 }, { connections: 2 }), /CAN_MULTI_CONN/);
});
