// NBD wire format: handshake pieces, requests and error numbers, encoded and decoded on plain bytes.
import { UblkError } from '../../errors.js';

export const NBDMAGIC = 0x4e42444d41474943n;
export const IHAVEOPT = 0x49484156454f5054n;
export const OPT_REPLY_MAGIC = 0x0003e889045565a9n;
export const REQUEST_MAGIC = 0x25609513;
export const SIMPLE_REPLY_MAGIC = 0x67446698;
export const STRUCTURED_REPLY_MAGIC = 0x668e33ef;

export const FLAG_FIXED_NEWSTYLE = 1;
export const FLAG_NO_ZEROES = 2;

export const OPT_EXPORT_NAME = 1;
export const OPT_ABORT = 2;
export const OPT_GO = 7;
export const OPT_STRUCTURED_REPLY = 8;

export const REP_ACK = 1;
export const REP_INFO = 3;
export const REP_ERR_BIT = 0x80000000;
export const REP_ERR_UNSUP = REP_ERR_BIT + 1;

export const INFO_EXPORT = 0;
export const INFO_BLOCK_SIZE = 3;

/** Transmission flags. */
export const TF = {
  HAS_FLAGS: 1 << 0, READ_ONLY: 1 << 1, SEND_FLUSH: 1 << 2, SEND_FUA: 1 << 3, ROTATIONAL: 1 << 4,
  SEND_TRIM: 1 << 5, SEND_WRITE_ZEROES: 1 << 6, SEND_DF: 1 << 7, CAN_MULTI_CONN: 1 << 8,
} as const;

export const CMD_READ = 0;
export const CMD_WRITE = 1;
export const CMD_DISC = 2;
export const CMD_FLUSH = 3;
export const CMD_TRIM = 4;
export const CMD_WRITE_ZEROES = 6;
export const CMD_FLAG_FUA = 1 << 0;
export const CMD_FLAG_NO_HOLE = 1 << 1;

export const CHUNK_NONE = 0;
export const CHUNK_OFFSET_DATA = 1;
export const CHUNK_OFFSET_HOLE = 2;
export const CHUNK_ERROR = 0x8001;
export const CHUNK_ERROR_OFFSET = 0x8002;
export const CHUNK_FLAG_DONE = 1;

export const REQUEST_HEADER = 28;
export const SIMPLE_REPLY_HEADER = 16;
export const CHUNK_HEADER = 20;

const REP_ERR_NAMES: Record<number, string> = {
  1: 'unsupported', 2: 'refused by policy', 3: 'invalid', 4: 'unsupported on this platform', 5: 'TLS required',
  6: 'unknown export', 7: 'server shutting down', 8: 'block size required', 9: 'too big',
};

/** What the server said about an export. */
export interface ExportInfo {
  size: number;
  flags: number;
  /** Block sizes (NBD_INFO_BLOCK_SIZE); the protocol's defaults when the server sent none. */
  minBlock: number;
  prefBlock: number;
  maxPayload: number;
  /** Structured replies were agreed. */
  structured: boolean;
}

export const DEFAULT_BLOCKS = { minBlock: 1, prefBlock: 4096, maxPayload: 32 << 20 };

/** The server's first 18 bytes: both magics and the handshake flags. */
export function parseGreeting(b: Uint8Array): number {
  const v = view(b);
  if (b.byteLength < 18 || v.getBigUint64(0) !== NBDMAGIC) throw protoError('the server did not greet as an NBD server');
  if (v.getBigUint64(8) !== IHAVEOPT) throw protoError('the server speaks only the old-style handshake');
  const flags = v.getUint16(16);
  if (!(flags & FLAG_FIXED_NEWSTYLE)) throw protoError('the server does not offer the fixed newstyle handshake');
  return flags;
}

/** Client flags: fixed newstyle, and no zeroes only when the server offered it. */
export function encodeClientFlags(serverFlags: number): Uint8Array {
  const b = new Uint8Array(4);
  view(b).setUint32(0, FLAG_FIXED_NEWSTYLE | (serverFlags & FLAG_NO_ZEROES));
  return b;
}

export function encodeOption(option: number, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const b = new Uint8Array(16 + data.byteLength);
  const v = view(b);
  v.setBigUint64(0, IHAVEOPT);
  v.setUint32(8, option);
  v.setUint32(12, data.byteLength);
  b.set(data, 16);
  return b;
}

/** NBD_OPT_GO's data: the export name and the info types asked for. */
export function encodeGo(name: string, infos: number[]): Uint8Array {
  const n = new TextEncoder().encode(name);
  const b = new Uint8Array(4 + n.byteLength + 2 + 2 * infos.length);
  const v = view(b);
  v.setUint32(0, n.byteLength);
  b.set(n, 4);
  v.setUint16(4 + n.byteLength, infos.length);
  infos.forEach((t, i) => v.setUint16(6 + n.byteLength + 2 * i, t));
  return b;
}

export interface OptionReplyHeader {
  option: number;
  type: number;
  length: number;
}

export function parseOptionReply(b: Uint8Array): OptionReplyHeader {
  const v = view(b);
  if (v.getBigUint64(0) !== OPT_REPLY_MAGIC) throw protoError('bad option reply magic from the server');
  return { option: v.getUint32(8), type: v.getUint32(12), length: v.getUint32(16) };
}

/** Applies one NBD_REP_INFO payload to `info` (unknown info types are ignored, as the protocol asks). */
export function applyInfo(info: Partial<ExportInfo>, data: Uint8Array): void {
  if (data.byteLength < 2) throw protoError('short NBD_REP_INFO');
  const v = view(data);
  const type = v.getUint16(0);
  if (type === INFO_EXPORT) {
    if (data.byteLength < 12) throw protoError('short NBD_INFO_EXPORT');
    info.size = bigToNumber(v.getBigUint64(2));
    info.flags = v.getUint16(10);
  } else if (type === INFO_BLOCK_SIZE) {
    if (data.byteLength < 14) throw protoError('short NBD_INFO_BLOCK_SIZE');
    info.minBlock = v.getUint32(2);
    info.prefBlock = v.getUint32(6);
    info.maxPayload = v.getUint32(10);
  }
}

/** NBD_OPT_EXPORT_NAME's reply: size and flags (the 124 zero bytes, if any, are not needed). */
export function parseExportNameReply(b: Uint8Array): { size: number; flags: number } {
  if (b.byteLength < 10) throw protoError('short reply to NBD_OPT_EXPORT_NAME');
  const v = view(b);
  return { size: bigToNumber(v.getBigUint64(0)), flags: v.getUint16(8) };
}

/** An error reply to an option, as one line naming the export and quoting the server. */
export function optionError(type: number, message: Uint8Array, exportName: string): UblkError {
  const why = REP_ERR_NAMES[type - REP_ERR_BIT] ?? `error 0x${type.toString(16)}`;
  const said = new TextDecoder().decode(message).replace(/\s+/g, ' ').trim();
  const code = type === REP_ERR_BIT + 6 ? 'ENOENT' : type === REP_ERR_BIT + 2 ? 'EACCES' : 'EINVAL';
  return new UblkError(code, `nbd export '${exportName}': ${why}${said ? `: "${said}"` : ''}`);
}

/** Writes a request header at `o` of `v`. Cookies stay below 2^32 (the high word is 0). */
export function encodeRequest(v: DataView, o: number, type: number, flags: number, cookie: number, offset: number, length: number): void {
  v.setUint32(o, REQUEST_MAGIC);
  v.setUint16(o + 4, flags);
  v.setUint16(o + 6, type);
  v.setUint32(o + 8, 0);
  v.setUint32(o + 12, cookie >>> 0);
  v.setUint32(o + 16, Math.floor(offset / 0x100000000));
  v.setUint32(o + 20, offset >>> 0);
  v.setUint32(o + 24, length >>> 0);
}

// The wire's errno numbers, by name here: the client's errno comes from the local table.
const WIRE_ERRNO: Record<number, string> = {
  1: 'EPERM', 5: 'EIO', 12: 'ENOMEM', 22: 'EINVAL', 28: 'ENOSPC', 75: 'EOVERFLOW', 95: 'EOPNOTSUPP',
};

/** The client's errno name for an NBD error number; anything unknown (and ESHUTDOWN) is EIO. */
export function wireErrno(n: number): string {
  return WIRE_ERRNO[n] ?? 'EIO';
}

export function protoError(msg: string): UblkError {
  return new UblkError('EPROTO', `nbd: ${msg}`);
}

export function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

function bigToNumber(n: bigint): number {
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw protoError(`export size ${n} is too large`);
  return Number(n);
}
