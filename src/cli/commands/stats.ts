// ublkit stats: one device's per-op counts, bytes, errors and latency, asked of its daemon.
import type { CliArgs } from '../args.js';
import { out } from '../out.js';
import { requireId } from '../session.js';
import { ask } from '../control-socket.js';
import { formatStats, parseWatch } from '../stats-format.js';
import type { DeviceStats } from '../../ublk/stats.js';

export const usage = `usage: ublkit stats -n ID [--json] [--watch SEC]
Print device ID's IO statistics from its daemon (root only): per op the requests, bytes, errors
and latency percentiles in microseconds, in-flight requests per queue, data mode, target and uptime.
  --json        the statistics object, as Device.stats() returns it (one line per sample)
  --watch SEC   sample every SEC seconds until interrupted, with IOPS since the previous sample
`;

export async function run(a: CliArgs): Promise<number> {
  const id = requireId(a, 'stats');
  const every = parseWatch(a.watch);
  const show = (s: DeviceStats, prev?: DeviceStats, dt = 0) =>
    out(a.json ? JSON.stringify(s, null, every === undefined ? 2 : undefined) + '\n' : formatStats(s, prev, dt) + (every === undefined ? '' : '\n'));
  let prev = (await ask(id, 'stats')) as DeviceStats;
  show(prev);
  if (every === undefined) return 0;
  let stop = false;
  process.once('SIGINT', () => (stop = true));
  while (!stop) {
    await new Promise((r) => setTimeout(r, every * 1000));
    if (stop) break;
    const cur = (await ask(id, 'stats')) as DeviceStats;
    show(cur, prev, cur.uptimeSec - prev.uptimeSec);
    prev = cur;
  }
  return 0;
}
