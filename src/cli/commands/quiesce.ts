// ublkit quiesce: QUIESCE_DEV of a recoverable device.
import type { CliArgs } from '../args.js';
import { requireId, withControl } from '../session.js';

export const usage = `usage: ublkit quiesce -n ID
Quiesce recoverable device ID: its server exits and IO waits for 'ublkit recover'.
`;

export function run(a: CliArgs): Promise<number> {
  return withControl(async (c) => {
    await c.quiesce(requireId(a, 'quiesce'), 10000);
    return 0;
  });
}
