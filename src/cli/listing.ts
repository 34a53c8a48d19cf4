// The device listing printed by add, recover and list: kublk's exact text, or JSON for scripts.
import * as fs from 'node:fs';
import type { Control } from '../ublk/control.js';
import * as U from '../uapi/ublk.js';
import { modeOfFlags } from '../ublk/modes.js';
import { parseArgs } from './args.js';
import { nbdUri } from '../targets/nbd/uri.js';

const STATES = ['DEAD', 'LIVE', 'QUIESCED', 'FAIL_IO'];

export interface Listing {
  id: number;
  nrHwQueues: number;
  queueDepth: number;
  blockSize: number;
  capacitySectors: number;
  sizeBytes: number;
  maxIoBufBytes: number;
  /** Set when the slot size was negotiated (UBLK_F_IO_DESC_SIZE). */
  ioDescSize?: number;
  pid: number;
  flags: number;
  state: string;
  mode: string;
  queues: Array<{ id: number; affinity: number[] }>;
  blockPath: string;
  charPath: string;
  /** No server: the daemon's pid is gone and no process holds /dev/ublkcN (`del --orphans`). */
  orphan?: boolean;
  /** Where the data lives, for targets that name it (nbd: its URI). */
  backend?: string;
}

/**
 * The backend, read from the serving process's own command line (`add` or `recover` and what
 * follows): the kernel keeps no trace of the target's configuration.
 */
export function backendOf(pid: number): string | undefined {
  let argv: string[];
  try {
    argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(1);
  } catch {
    return undefined;
  }
  const at = argv.findIndex((x) => x === 'add' || x === 'recover');
  if (at < 0) return undefined;
  try {
    const a = parseArgs(argv.slice(at));
    if (a.type !== 'nbd') return undefined;
    const t = a.targetOpts;
    return nbdUri({ unix: t.unix, host: t.host, port: t.port === undefined ? undefined : Number(t.port), export: t.export });
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Pids of the processes that have `path` open (from /proc/PID/fd). */
export function holders(path: string): number[] {
  const found: number[] = [];
  let pids: string[] = [];
  try {
    pids = fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  } catch { /* no /proc */ }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === path) {
          found.push(Number(pid));
          break;
        }
      } catch { /* closed meanwhile */ }
    }
  }
  return found;
}

// A device in its first moments has no server yet (ADD_DEV comes before the open of ublkc and
// START_DEV sets the pid): one whose node is this young is not called an orphan.
const STARTING_GRACE_MS = 5000;

/** Whether the device has no server left: its pid is dead and nothing holds /dev/ublkcN. */
export function isOrphan(id: number, pid: number): boolean {
  if (alive(pid)) return false;
  const charPath = `/dev/ublkc${id}`;
  try {
    if (Date.now() - fs.statSync(charPath).ctimeMs < STARTING_GRACE_MS) return false;
  } catch { /* no node: nothing can hold it */ }
  return holders(charPath).length === 0;
}

/** Gathers one device's listing; throws if any of GET_DEV_INFO, GET_PARAMS, affinity fails. */
export async function gather(ctrl: Control, id: number): Promise<Listing> {
  const info = await ctrl.getDevInfo(id);
  const params = await ctrl.getParams(id);
  const queues = [];
  for (let q = 0; q < info.nrHwQueues; q++) queues.push({ id: q, affinity: await ctrl.getQueueAffinity(id, q) });
  return {
    id: info.devId,
    nrHwQueues: info.nrHwQueues,
    queueDepth: info.queueDepth,
    blockSize: 1 << params.basic.logicalBsShift,
    capacitySectors: params.basic.devSectors,
    sizeBytes: params.basic.devSectors * 512,
    maxIoBufBytes: info.maxIoBufBytes,
    ioDescSize: info.flags & U.UBLK_F_IO_DESC_SIZE ? info.ioDescSize : undefined,
    pid: info.ublksrvPid,
    flags: info.flags,
    state: STATES[info.state] ?? 'UNKNOWN',
    mode: modeOfFlags(info.flags),
    queues,
    blockPath: `/dev/ublkb${info.devId}`,
    charPath: `/dev/ublkc${info.devId}`,
    orphan: isOrphan(info.devId, info.ublksrvPid),
    backend: info.ublksrvPid > 0 ? backendOf(info.ublksrvPid) : undefined,
  };
}

/** kublk's three-part dump; `quiet` drops the first two lines, as kublk's --quiet does. */
export function formatListing(l: Listing, quiet = false): string {
  let out = '';
  if (!quiet) {
    out += `dev id ${l.id}: nr_hw_queues ${l.nrHwQueues} queue_depth ${l.queueDepth} block size ${l.blockSize} dev_capacity ${l.capacitySectors}\n`;
    // After kublk's 11 fields, so that scripts reading `$11` still get the state.
    out += `\tmax rq size ${l.maxIoBufBytes} daemon pid ${l.pid} flags 0x${l.flags.toString(16)} state ${l.state}${l.orphan ? ' orphan' : ''}\n`;
    if (l.ioDescSize !== undefined) out += `\tio_desc_size ${l.ioDescSize}\n`;
  }
  // kublk prints only the first CPU of each queue's mask, each CPU followed by a space.
  for (const q of l.queues) out += `\tqueue ${q.id}: affinity(${q.affinity.length ? q.affinity[0] + ' ' : ''})\n`;
  return out;
}

/** The `features` text: one line per bit, ascending. */
export function formatFeatures(bits: number): string {
  let out = `ublk_drv features: 0x${bits.toString(16)}\n`;
  for (let i = 0; i < 64; i++) {
    const v = 2 ** i;
    if (Math.floor(bits / v) % 2 === 1) out += `0x${v.toString(16).padEnd(16)}: ${U.UBLK_F_NAMES[i] ?? 'unknown'}\n`;
  }
  return out;
}
