// ublkit stop: STOP_DEV (or TRY_STOP_DEV with --safe) of a device.
import type { CliArgs } from '../args.js';
import { requireId, withControl } from '../session.js';

export const usage = `usage: ublkit stop -n ID [--safe]
Stop device ID (--safe: only if its block device is not open).
`;

export function run(a: CliArgs): Promise<number> {
  return withControl(async (c) => {
    const id = requireId(a, 'stop');
    await c.getDevInfo(id);
    await (a.safe ? c.tryStopDev(id) : c.stopDev(id));
    return 0;
  });
}
