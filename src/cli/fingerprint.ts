// The fingerprint of a target configuration: `add` stores it in the kernel (ublksrv_flags) and
// `recover` refuses a command line whose fingerprint differs, since that would serve other data.
import * as fs from 'node:fs';
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import type { CliArgs } from './args.js';
import { nbdUri } from '../targets/nbd/uri.js';

/** Top byte of a stored fingerprint: ublkit's mark, version 1 (0 means "nothing recorded"). */
const MARK = 0xb1n << 56n;

/** A file's identity: which inode (or which block device), not which path names it. */
function identity(file: string): [string | number, number] {
  const st = fs.statSync(file);
  return st.isBlockDevice() ? ['blk', st.rdev] : [st.dev, st.ino];
}

/** An nbd device's server and export, as a URI (the socket by absolute path). */
function nbdServer(o: Record<string, string>): string {
  const port = o.port === undefined ? undefined : Number(o.port);
  return nbdUri({ unix: o.unix === undefined ? undefined : path.resolve(o.unix), host: o.host, port, export: o.export });
}

/**
 * What decides where each byte lives: target type, backing files by identity and in order, the
 * stripe chunk, the integrity tuple format, an nbd device's server and export. Not the size or
 * block size (recover checks those against the kernel's params), nor options that change no byte
 * (queues, modes, buffered IO). Undefined when a file cannot be read: the target reports that better.
 */
export function fingerprint(a: CliArgs): bigint | undefined {
  let files: Array<[string | number, number]>;
  try {
    files = a.files.map(identity);
  } catch {
    return undefined;
  }
  const layout = {
    type: a.type,
    files,
    chunk: a.type === 'stripe' ? Number(a.targetOpts.chunk_size ?? 65536) : 0,
    meta: a.metadataSize ? [a.metadataSize, a.piOffset ?? 0, a.csumType ?? '', a.tagSize ?? 0] : [],
    // nbd: which server and export hold the bytes (the socket by path: a restarted server makes a new one)
    ...(a.type === 'nbd' ? { server: nbdServer(a.targetOpts) } : {}),
  };
  const h = createHash('sha256').update(JSON.stringify(layout)).digest();
  return MARK | (h.readBigUInt64LE(0) & ((1n << 56n) - 1n));
}
