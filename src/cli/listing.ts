// The device listing printed by add, recover and list: kublk's exact text, or JSON for scripts.
import type { Control } from '../ublk/control.js';
import * as U from '../uapi/ublk.js';
import { modeOfFlags } from '../ublk/modes.js';

const STATES = ['DEAD', 'LIVE', 'QUIESCED', 'FAIL_IO'];

export interface Listing {
  id: number;
  nrHwQueues: number;
  queueDepth: number;
  blockSize: number;
  capacitySectors: number;
  sizeBytes: number;
  maxIoBufBytes: number;
  pid: number;
  flags: number;
  state: string;
  mode: string;
  queues: Array<{ id: number; affinity: number[] }>;
  blockPath: string;
  charPath: string;
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
    pid: info.ublksrvPid,
    flags: info.flags,
    state: STATES[info.state] ?? 'UNKNOWN',
    mode: modeOfFlags(info.flags),
    queues,
    blockPath: `/dev/ublkb${info.devId}`,
    charPath: `/dev/ublkc${info.devId}`,
  };
}

/** kublk's three-part dump; `quiet` drops the first two lines, as kublk's --quiet does. */
export function formatListing(l: Listing, quiet = false): string {
  let out = '';
  if (!quiet) {
    out += `dev id ${l.id}: nr_hw_queues ${l.nrHwQueues} queue_depth ${l.queueDepth} block size ${l.blockSize} dev_capacity ${l.capacitySectors}\n`;
    out += `\tmax rq size ${l.maxIoBufBytes} daemon pid ${l.pid} flags 0x${l.flags.toString(16)} state ${l.state}\n`;
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
