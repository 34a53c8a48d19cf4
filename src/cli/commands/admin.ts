// del, list, features, stop, quiesce, update_size: one control command or a few each.
import * as fs from 'node:fs';
import { Control } from '../../ublk/control.js';
import * as U from '../../uapi/ublk.js';
import { UblkError } from '../../errors.js';
import type { CliArgs } from '../args.js';
import { out, err as errOut } from '../out.js';
import { gather, formatListing, formatFeatures, holders, isOrphan, type Listing } from '../listing.js';

/** Feature bits ublkit implements; `features` prints the kernel's bits masked by these. */
export const IMPLEMENTED_FEATURES =
  U.UBLK_F_SUPPORT_ZERO_COPY | U.UBLK_F_URING_CMD_COMP_IN_TASK | U.UBLK_F_NEED_GET_DATA |
  U.UBLK_F_CMD_IOCTL_ENCODE | U.UBLK_F_USER_COPY | U.UBLK_F_UPDATE_SIZE | U.UBLK_F_AUTO_BUF_REG |
  U.UBLK_F_PER_IO_DAEMON | U.UBLK_F_BUF_REG_OFF_DAEMON | U.UBLK_F_SAFE_STOP_DEV |
  U.UBLK_F_USER_RECOVERY | U.UBLK_F_USER_RECOVERY_REISSUE | U.UBLK_F_USER_RECOVERY_FAIL_IO |
  U.UBLK_F_QUIESCE | U.UBLK_F_NO_AUTO_PART_SCAN | U.UBLK_F_BATCH_IO | U.UBLK_F_SHMEM_ZC | U.UBLK_F_INTEGRITY;

async function withControl<T>(fn: (c: Control) => Promise<T>): Promise<T> {
  const c = new Control();
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

/** Ids of the ublk devices that exist now (from the ublk-char class, else /dev). */
export function deviceIds(): number[] {
  let names: string[] = [];
  try {
    names = fs.readdirSync('/sys/class/ublk-char');
  } catch {
    try {
      names = fs.readdirSync('/dev');
    } catch { /* none */ }
  }
  return names.map((n) => /^ublkc(\d+)$/.exec(n)).filter((m) => m).map((m) => Number(m![1])).sort((x, y) => x - y);
}

function requireId(a: CliArgs, cmd: string): number {
  if (a.number < 0) throw new UblkError('EINVAL', `${cmd} needs a device id: -n ID`);
  return a.number;
}

async function delOne(c: Control, id: number): Promise<void> {
  await c.getDevInfo(id);
  await c.stopDev(id);
  // DEL_DEV returns once the server has closed /dev/ublkcN and the id is free; bounded, and a
  // timeout names who still holds it.
  await c.delDev(id).catch((err: UblkError) => {
    if (err.code !== 'ETIMEDOUT') throw err;
    const by = holders(`/dev/ublkc${id}`);
    throw new UblkError('ETIMEDOUT', `${err.message}${by.length ? ` (held by pid ${by.join(', ')})` : ''}`);
  });
}

/** Deletes each id, going on past failures; each failure is one stderr line, and the result is non-zero. */
export async function deleteEach(ids: number[], one: (id: number) => Promise<void>, warn: (line: string) => void): Promise<number> {
  let failed = 0;
  for (const id of ids) {
    try {
      await one(id);
    } catch (err) {
      failed++;
      warn(`ublkit: del ${id}: ${(err as Error).message}\n`);
    }
  }
  return failed ? 1 : 0;
}

export function del(a: CliArgs): Promise<number> {
  return withControl(async (c) => {
    const one = (id: number) => delOne(c, id);
    // A device that went away meanwhile (its daemon deleted it) is not a failure of del -a.
    const gone = (id: number) => one(id).catch((e: UblkError) => {
      if (e.code !== 'ENODEV') throw e;
    });
    if (a.orphans) {
      const ids: number[] = [];
      if (a.number >= 0) {
        const info = await c.getDevInfo(a.number);
        if (!isOrphan(a.number, info.ublksrvPid)) throw new UblkError('EBUSY', `device ${a.number} is not an orphan: its server is alive or something holds /dev/ublkc${a.number}`);
      }
      for (const id of a.number >= 0 ? [a.number] : deviceIds()) {
        const info = await c.getDevInfo(id).catch(() => undefined);
        if (info && isOrphan(id, info.ublksrvPid)) ids.push(id);
      }
      return deleteEach(ids, gone, errOut);
    }
    if (a.all && a.number < 0) return deleteEach(deviceIds(), gone, errOut);
    await delOne(c, requireId(a, 'del'));
    return 0;
  });
}

export function list(a: CliArgs): Promise<number> {
  return withControl(async (c) => {
    const ids = a.number >= 0 ? [a.number] : deviceIds();
    const found: Listing[] = [];
    for (const id of ids) {
      try {
        found.push(await gather(c, id));
      } catch (err) {
        if (a.number >= 0) throw err;
      }
    }
    if (a.json) out(JSON.stringify(a.number >= 0 ? found[0] : found, null, 2) + '\n');
    else for (const l of found) out(formatListing(l));
    return 0;
  });
}

export function features(): Promise<number> {
  return withControl(async (c) => {
    out(formatFeatures((await c.getFeatures()) & IMPLEMENTED_FEATURES));
    return 0;
  });
}

export function stop(a: CliArgs): Promise<number> {
  return withControl(async (c) => {
    const id = requireId(a, 'stop');
    await c.getDevInfo(id);
    await (a.safe ? c.tryStopDev(id) : c.stopDev(id));
    return 0;
  });
}

export function quiesce(a: CliArgs): Promise<number> {
  return withControl(async (c) => {
    await c.quiesce(requireId(a, 'quiesce'), 10000);
    return 0;
  });
}

export function updateSize(a: CliArgs): Promise<number> {
  return withControl(async (c) => {
    const id = requireId(a, 'update_size');
    const bytes = a.size === undefined ? NaN : Number(a.size);
    if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new UblkError('EINVAL', 'update_size needs the new size in bytes: -s BYTES');
    const p = await c.getParams(id);
    const bs = 1 << p.basic.logicalBsShift;
    if (bytes % bs !== 0) throw new UblkError('EINVAL', `new size ${bytes} is not a multiple of the ${bs}-byte block size`);
    await c.updateSize(id, bytes / 512);
    return 0;
  });
}
