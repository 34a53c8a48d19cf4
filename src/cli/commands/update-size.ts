// ublkit update_size: change the capacity of a device.
import { UblkError } from '../../errors.js';
import type { CliArgs } from '../args.js';
import { requireId, withControl } from '../session.js';

export const usage = `usage: ublkit update_size -n ID -s BYTES
Change the capacity of device ID (a multiple of its block size).
`;

export function run(a: CliArgs): Promise<number> {
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
