// The fixed-newstyle handshake as a client, over any byte stream: structured replies, then GO
// (with block sizes) or, when the server does not know GO, EXPORT_NAME.
import * as P from './protocol.js';

/** What the handshake needs from a connection: exact reads and whole writes. */
export interface HandshakeStream {
  /** Resolves with exactly `n` bytes, or rejects (the server closed or failed). */
  read(n: number): Promise<Uint8Array>;
  write(b: Uint8Array): Promise<void>;
}

// An option reply's data is read whole; anything larger than this is not a sane reply.
const MAX_OPTION_REPLY = 1 << 20;

async function reply(s: HandshakeStream, option: number): Promise<{ type: number; data: Uint8Array }> {
  const h = P.parseOptionReply(await s.read(20));
  if (h.option !== option) throw P.protoError(`the server answered option ${h.option} to option ${option}`);
  if (h.length > MAX_OPTION_REPLY) throw P.protoError(`option reply of ${h.length} bytes`);
  return { type: h.type, data: h.length ? await s.read(h.length) : new Uint8Array(0) };
}

/** Negotiates `exportName`; resolves when transmission may start. Errors are one-line UblkErrors. */
export async function negotiate(s: HandshakeStream, exportName: string): Promise<P.ExportInfo> {
  const serverFlags = P.parseGreeting(await s.read(18));
  await s.write(P.encodeClientFlags(serverFlags));

  await s.write(P.encodeOption(P.OPT_STRUCTURED_REPLY));
  const sr = await reply(s, P.OPT_STRUCTURED_REPLY);
  if (sr.type !== P.REP_ACK && !(sr.type & P.REP_ERR_BIT)) throw P.protoError(`unexpected reply ${sr.type} to NBD_OPT_STRUCTURED_REPLY`);
  const structured = sr.type === P.REP_ACK;

  await s.write(P.encodeOption(P.OPT_GO, P.encodeGo(exportName, [P.INFO_BLOCK_SIZE])));
  const info: Partial<P.ExportInfo> = {};
  for (;;) {
    const r = await reply(s, P.OPT_GO);
    if (r.type === P.REP_INFO) P.applyInfo(info, r.data);
    else if (r.type === P.REP_ACK) break;
    else if (r.type === P.REP_ERR_UNSUP) return exportName0(s, exportName, serverFlags, structured);
    else if (r.type & P.REP_ERR_BIT) throw P.optionError(r.type, r.data, exportName);
    else throw P.protoError(`unexpected reply ${r.type} to NBD_OPT_GO`);
  }
  if (info.size === undefined || info.flags === undefined) throw P.protoError('the server finished NBD_OPT_GO without NBD_INFO_EXPORT');
  return { ...P.DEFAULT_BLOCKS, ...info, structured } as P.ExportInfo;
}

/** The old way in: no reply on failure (the server just closes), no block sizes. */
async function exportName0(s: HandshakeStream, exportName: string, serverFlags: number, structured: boolean): Promise<P.ExportInfo> {
  await s.write(P.encodeOption(P.OPT_EXPORT_NAME, new TextEncoder().encode(exportName)));
  let b: Uint8Array;
  try {
    b = await s.read(serverFlags & P.FLAG_NO_ZEROES ? 10 : 134);
  } catch (err) {
    throw P.optionError(P.REP_ERR_BIT + 6, new TextEncoder().encode(`the server closed the connection (${(err as Error).message})`), exportName);
  }
  return { ...P.DEFAULT_BLOCKS, ...P.parseExportNameReply(b), structured };
}
