// ublkit del: stop and delete a device (or every device, or the orphans), returning once it is gone.
import { Control } from '../../ublk/control.js';
import { UblkError } from '../../errors.js';
import type { CliArgs } from '../args.js';
import { err as errOut } from '../out.js';
import { holders, isOrphan } from '../listing.js';
import { deviceIds, requireId, withControl } from '../session.js';

export const usage = `usage: ublkit del -n ID | -a | --orphans [-n ID]
Stop and delete device ID (-a: every ublk device; --orphans: those whose server is gone); returns
once it is gone. -a goes on past a failure, prints a line for each, and exits 1.
`;

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

export function run(a: CliArgs): Promise<number> {
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
