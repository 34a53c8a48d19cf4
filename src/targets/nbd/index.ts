// nbd: a client of an NBD server (Unix socket or TCP); the export becomes the block device.
import { lookup } from 'node:dns/promises';
import { isIPv4 } from 'node:net';
import type { Target, TargetCaps, TargetContext, TargetLimits } from '../../target/types.js';
import { UblkError } from '../../errors.js';
import * as P from './protocol.js';
import { Connection } from './connection.js';
import { dial, describe, hangUp, type NbdAddress } from './socket.js';

export { nbdUri } from './uri.js';

export interface NbdConfig {
  /** Unix socket path of the server; or `host` (and `port`, default 10809). */
  unix?: string;
  host?: string;
  port?: number;
  /** Export name (default ''). */
  export?: string;
  /** Connections per serving thread (default 1); more than one needs the server's CAN_MULTI_CONN. */
  connections?: number;
  /** Seconds a request may wait for its reply before it fails with EIO (default 30). */
  timeout?: number;
  /** Set by prepare(): the resolved address and what the server said in the probe handshake. */
  address?: NbdAddress;
  info?: P.ExportInfo;
}

const MAX_CONNECTIONS = 16;

function timeoutMs(c: NbdConfig): number {
  return (c.timeout ?? 30) * 1000;
}


async function resolve(c: NbdConfig): Promise<NbdAddress> {
  if (c.unix !== undefined) return { unix: c.unix };
  const host = c.host!;
  if (isIPv4(host)) return { ipv4: host, port: c.port ?? 10809 };
  try {
    return { ipv4: (await lookup(host, { family: 4 })).address, port: c.port ?? 10809 };
  } catch {
    throw new UblkError('EINVAL', `nbd: cannot resolve host '${host}' to an IPv4 address`);
  }
}

/** Checks the config and shakes hands once, so the device is made with the server's size and flags. */
export async function prepare(config: NbdConfig): Promise<NbdConfig> {
  const c = config ?? {};
  if ((c.unix === undefined) === (c.host === undefined)) throw new UblkError('EINVAL', 'nbd target needs exactly one of --unix PATH or --host HOST');
  if (c.port !== undefined && !(Number.isInteger(c.port) && c.port > 0 && c.port < 65536)) throw new UblkError('EINVAL', `nbd: --port ${c.port} must be 1..65535`);
  const n = c.connections ?? 1;
  if (!(Number.isInteger(n) && n >= 1 && n <= MAX_CONNECTIONS)) throw new UblkError('EINVAL', `nbd: --connections ${n} must be 1..${MAX_CONNECTIONS}`);
  const t = c.timeout ?? 30;
  if (!(Number.isInteger(t) && t >= 1)) throw new UblkError('EINVAL', `nbd: --timeout ${t} must be a whole number of seconds, at least 1`);
  const address = await resolve(c);
  const { fd, info } = await dial(address, c.export ?? '', timeoutMs(c));
  await hangUp(fd, 1000);
  geometry(info, c);
  return { ...c, address, info };
}

/** Caps and limits from the transmission flags and block sizes; throws for an export ublk cannot present. */
export function geometry(info: P.ExportInfo, c: NbdConfig): { size: number; caps: TargetCaps; limits: TargetLimits } {
  const f = info.flags;
  const where = `nbd export '${c.export ?? ''}'`;
  const pow2 = (n: number) => n > 0 && (n & (n - 1)) === 0;
  const logical = Math.max(info.minBlock, 512);
  if (!pow2(logical) || logical > 4096) throw new UblkError('EINVAL', `${where}: minimum block size ${info.minBlock} is not a power of two up to 4096`);
  const pref = pow2(info.prefBlock) ? Math.min(Math.max(info.prefBlock, logical), 1 << 16) : Math.max(4096, logical);
  const maxIo = Math.floor(Math.min(info.maxPayload, 32 << 20) / logical) * logical;
  if (maxIo < 4096) throw new UblkError('EINVAL', `${where}: maximum payload ${info.maxPayload} is below one 4096-byte page`);
  const size = Math.floor(info.size / logical) * logical;
  if (size === 0) throw new UblkError('EINVAL', `${where}: size ${info.size} is less than one ${logical}-byte block`);
  if (f & P.TF.HAS_FLAGS) {
    if ((c.connections ?? 1) > 1 && !(f & P.TF.CAN_MULTI_CONN)) throw new UblkError('EINVAL', `${where}: the server does not allow several connections (no CAN_MULTI_CONN): drop --connections`);
  }
  const has = (bit: number) => (f & P.TF.HAS_FLAGS) !== 0 && (f & bit) !== 0;
  const caps: TargetCaps = {
    flush: has(P.TF.SEND_FLUSH), fua: has(P.TF.SEND_FLUSH) && has(P.TF.SEND_FUA), readOnly: has(P.TF.READ_ONLY),
    rotational: has(P.TF.ROTATIONAL), discard: has(P.TF.SEND_TRIM) && !has(P.TF.READ_ONLY), writeZeroes: has(P.TF.SEND_WRITE_ZEROES) && !has(P.TF.READ_ONLY),
  };
  const shift = (n: number) => Math.log2(n);
  const limits: TargetLimits = {
    logicalBlockShift: shift(logical), physicalBlockShift: shift(pref), ioMinShift: shift(logical), ioOptShift: shift(pref),
    maxIoBytes: maxIo, discardGranularity: Math.max(logical, pref),
  };
  return { size, caps, limits };
}

// TRIM and WRITE_ZEROES lengths are u32 on the wire; larger ranges go as several requests.
const MAX_RANGE = 2 ** 31;

export function create(config: NbdConfig): Target {
  const info = config.info;
  if (!info || !config.address) throw new UblkError('EINVAL', 'nbd target: create() needs the config returned by prepare()');
  const g = geometry(info, config);
  const multi = (info.flags & P.TF.CAN_MULTI_CONN) !== 0;
  const conns: Connection[] = [];
  let next = 0;
  const pick = (): Connection => {
    const c = conns[next];
    next = next + 1 === conns.length ? 0 : next + 1;
    return c;
  };
  const ranged = async (cmd: number, flags: number, offset: number, length: number): Promise<void> => {
    for (let at = 0; at < length; at += MAX_RANGE) await pick().request(cmd, flags, offset + at, Math.min(MAX_RANGE, length - at));
  };
  const t: Target = {
    size: g.size,
    caps: g.caps,
    limits: g.limits,
    async open(ctx: TargetContext) {
      const n = config.connections ?? 1;
      if (ctx.thread > 0 && !multi) {
        throw new UblkError('EINVAL', `nbd export '${config.export ?? ''}' on ${describe(config.address!)}: the server does not allow several connections (no CAN_MULTI_CONN): use -q 1`);
      }
      for (let i = 0; i < n; i++) {
        const { fd, info: again } = await dial(config.address!, config.export ?? '', timeoutMs(config));
        conns.push(new Connection(ctx.ring, fd, timeoutMs(config), { address: config.address!, exportName: config.export ?? '', info }));
        if (again.size !== info.size || again.flags !== info.flags || again.structured !== info.structured) {
          throw new UblkError('EIO', `nbd export '${config.export ?? ''}' changed between connections (size or flags)`);
        }
      }
    },
    // The request's own promise resolves with the byte count: no async wrapper and its extra promise per IO.
    read: (buf, offset) => pick().request(P.CMD_READ, 0, offset, buf.byteLength, undefined, buf),
    write: (buf, offset, flags) => pick().request(P.CMD_WRITE, flags.fua && g.caps.fua ? P.CMD_FLAG_FUA : 0, offset, buf.byteLength, buf),
    async close() {
      await Promise.all(conns.map((c) => c.close()));
    },
  };
  if (g.caps.flush) t.flush = () => Promise.all(conns.map((c) => c.request(P.CMD_FLUSH, 0, 0, 0)));
  if (g.caps.discard) t.discard = (offset, length) => ranged(P.CMD_TRIM, 0, offset, length);
  if (g.caps.writeZeroes) t.writeZeroes = (offset, length, noUnmap) => ranged(P.CMD_WRITE_ZEROES, noUnmap ? P.CMD_FLAG_NO_HOLE : 0, offset, length);
  return t;
}
