// ublkit list: print one device or all, as kublk does, or as JSON.
import type { CliArgs } from '../args.js';
import { out } from '../out.js';
import { gather, formatListing, type Listing } from '../listing.js';
import { deviceIds, withControl } from '../session.js';

export const usage = `usage: ublkit list [-n ID] [--json]
Print device ID (default: every device) as kublk does, or as JSON.
`;

export function run(a: CliArgs): Promise<number> {
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
