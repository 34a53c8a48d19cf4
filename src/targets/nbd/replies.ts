// A push parser for the transmission phase: bytes in as they arrive (any split), replies out by
// cookie; simple replies and structured chunks in any order, READ data copied straight to its buffer.
import * as P from './protocol.js';

/** A request waiting for its reply, as the parser needs it. */
export interface Pending {
  cmd: number;
  offset: number;
  length: number;
  /** A READ's destination; undefined once abandoned (timed out): its data is read and dropped. */
  buf?: Uint8Array;
  /** READ bytes the server has answered (data or hole), structured replies. */
  covered: number;
  /** The first chunk's start; with several chunks, every chunk's [start, end): counted bytes prove coverage only without overlap. */
  first?: number;
  chunks?: number[];
  /** The first error the server reported, as an errno name. */
  errno?: string;
}

export type ReplyDone = (cookie: number, p: Pending, errno: string | undefined) => void;

const S_HEADER = 0;
const S_FIXED = 1;
const S_DATA = 2;
const S_SKIP = 3;

// Error chunks carry a message for people; one that large is garbage.
const MAX_ERROR_CHUNK = 1 << 16;

export class ReplyParser {
  private state = S_HEADER;
  private readonly acc = new Uint8Array(MAX_ERROR_CHUNK);
  private have = 0;
  private need = 4;
  private cookie = 0;
  private p: Pending | undefined;
  private chunkType = -1;
  private chunkFlags = 0;
  private chunkLength = 0;
  /** S_DATA: where the next byte goes in p.buf (-1: nowhere), and how many are left. */
  private dst = 0;
  private left = 0;

  constructor(
    private readonly lookup: (cookie: number) => Pending | undefined,
    private readonly done: ReplyDone,
  ) {}

  /** Consumes `b` whole (it may be reused after); throws a protocol error on a reply that makes no sense. */
  feed(b: Uint8Array): void {
    let i = 0;
    while (i < b.byteLength) {
      if (this.state === S_DATA || this.state === S_SKIP) {
        const n = Math.min(this.left, b.byteLength - i);
        if (this.state === S_DATA && this.p?.buf) this.p.buf.set(b.subarray(i, i + n), this.dst);
        this.dst += n;
        this.left -= n;
        i += n;
        if (this.left === 0) this.endPayload();
        continue;
      }
      const n = Math.min(this.need - this.have, b.byteLength - i);
      this.acc.set(b.subarray(i, i + n), this.have);
      this.have += n;
      i += n;
      if (this.have === this.need) this.state === S_HEADER ? this.header() : this.fixed();
    }
  }

  private header(): void {
    const v = P.view(this.acc);
    const magic = v.getUint32(0);
    if (magic !== P.SIMPLE_REPLY_MAGIC && magic !== P.STRUCTURED_REPLY_MAGIC) throw P.protoError(`bad reply magic 0x${magic.toString(16)}`);
    const size = magic === P.SIMPLE_REPLY_MAGIC ? P.SIMPLE_REPLY_HEADER : P.CHUNK_HEADER;
    if (this.have < size) {
      this.need = size;
      return;
    }
    // Both headers carry the cookie at byte 8.
    if (v.getUint32(8) !== 0) throw P.protoError('reply for a cookie never sent');
    this.cookie = v.getUint32(12);
    const p = this.lookup(this.cookie);
    if (!p) throw P.protoError(`reply for cookie ${this.cookie}, which is not in flight`);
    this.p = p;
    if (magic === P.SIMPLE_REPLY_MAGIC) {
      const err = v.getUint32(4);
      if (err) p.errno ??= P.wireErrno(err);
      this.chunkType = -1;
      this.chunkFlags = P.CHUNK_FLAG_DONE;
      if (p.cmd === P.CMD_READ && !err) {
        p.covered = p.length;
        return this.payload(S_DATA, 0, p.length);
      }
      return this.finish();
    }
    this.chunkFlags = v.getUint16(4);
    this.chunkType = v.getUint16(6);
    this.chunkLength = v.getUint32(16);
    this.startChunk();
  }

  private startChunk(): void {
    const len = this.chunkLength;
    switch (this.chunkType) {
      case P.CHUNK_NONE:
        if (len !== 0 || !(this.chunkFlags & P.CHUNK_FLAG_DONE)) throw P.protoError('NONE chunk with a payload or without DONE');
        return this.finish();
      case P.CHUNK_OFFSET_DATA:
        if (len <= 8) throw P.protoError('empty OFFSET_DATA chunk');
        return this.fixedPart(8);
      case P.CHUNK_OFFSET_HOLE:
        if (len !== 12) throw P.protoError('OFFSET_HOLE chunk of the wrong size');
        return this.fixedPart(12);
      case P.CHUNK_ERROR:
      case P.CHUNK_ERROR_OFFSET:
        if (len < 6 || len > MAX_ERROR_CHUNK) throw P.protoError('error chunk of a bad size');
        return this.fixedPart(len);
      default:
        // An unknown chunk type: the request cannot be trusted, the stream still can.
        this.p!.errno ??= 'EIO';
        return this.payload(S_SKIP, 0, len);
    }
  }

  private fixedPart(n: number): void {
    this.state = S_FIXED;
    this.have = 0;
    this.need = n;
  }

  private fixed(): void {
    const v = P.view(this.acc);
    const p = this.p!;
    if (this.chunkType === P.CHUNK_OFFSET_DATA || this.chunkType === P.CHUNK_OFFSET_HOLE) {
      const at = v.getUint32(0) * 0x100000000 + v.getUint32(4);
      const n = this.chunkType === P.CHUNK_OFFSET_DATA ? this.chunkLength - 8 : v.getUint32(8);
      if (p.cmd !== P.CMD_READ || at < p.offset || at + n > p.offset + p.length || n === 0) {
        throw P.protoError(`chunk for bytes ${at}+${n} outside the request ${p.offset}+${p.length}`);
      }
      if (p.first === undefined) p.first = at;
      else (p.chunks ??= [p.first, p.first + p.covered]).push(at, at + n);
      p.covered += n;
      if (this.chunkType === P.CHUNK_OFFSET_DATA) return this.payload(S_DATA, at - p.offset, n);
      p.buf?.fill(0, at - p.offset, at - p.offset + n);
      return this.endPayload();
    }
    const err = v.getUint32(0);
    const msgLen = v.getUint16(4);
    if (6 + msgLen + (this.chunkType === P.CHUNK_ERROR_OFFSET ? 8 : 0) > this.chunkLength) throw P.protoError('error chunk message overruns the chunk');
    p.errno ??= err ? P.wireErrno(err) : 'EIO';
    this.endPayload();
  }

  private payload(state: number, dst: number, n: number): void {
    this.state = state;
    this.dst = dst;
    this.left = n;
    if (n === 0) this.endPayload();
  }

  private endPayload(): void {
    if (this.chunkFlags & P.CHUNK_FLAG_DONE) this.finish();
    else this.reset();
  }

  private finish(): void {
    const p = this.p!;
    const short = p.cmd === P.CMD_READ && !p.errno && (p.covered !== p.length || overlaps(p.chunks));
    const cookie = this.cookie;
    this.reset();
    this.done(cookie, p, p.errno ?? (short ? 'EIO' : undefined));
  }

  private reset(): void {
    this.state = S_HEADER;
    this.have = 0;
    this.need = 4;
    this.p = undefined;
  }
}

/**
 * Whether chunks [start, end, ...] overlap: a server that sends a range twice could reach the
 * request's length while leaving a gap, whose bytes would be the slot's last request's.
 */
function overlaps(chunks: number[] | undefined): boolean {
  if (!chunks || chunks.length <= 2) return false;
  const order = Array.from({ length: chunks.length / 2 }, (_, i) => i).sort((a, b) => chunks[2 * a] - chunks[2 * b]);
  for (let i = 1; i < order.length; i++) if (chunks[2 * order[i]] < chunks[2 * order[i - 1] + 1]) return true;
  return false;
}
