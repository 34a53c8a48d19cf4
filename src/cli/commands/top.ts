// ublkit top: every device served by a ublkit daemon, one row each, refreshed every second.
import { isatty } from 'node:tty';
import type { CliArgs } from '../args.js';
import { out, err as errOut } from '../out.js';
import { ask, socketIds } from '../control-socket.js';
import { formatTop, parseWatch } from '../stats-format.js';
import type { DeviceStats } from '../../ublk/stats.js';

export const usage = `usage: ublkit top [--watch SEC]
Show every device served by a ublkit daemon (root only): reads and writes per second, MiB/s,
in-flight requests, p99 latency in microseconds, errors and uptime, refreshed every second (or
SEC); q or Ctrl-C quits. Without a terminal, print the counters once.
`;

async function sample(): Promise<DeviceStats[]> {
  const got = await Promise.all(socketIds().map((id) => ask(id, 'stats', 2000).then((s) => s as DeviceStats, () => undefined)));
  return got.filter((s): s is DeviceStats => s !== undefined);
}

export async function run(a: CliArgs): Promise<number> {
  const every = parseWatch(a.watch) ?? 1;
  let prev = new Map<number, DeviceStats>();
  let t0 = Date.now();
  const first = await sample();
  if (!isatty(1)) {
    out(formatTop(first, prev, 0));
    return 0;
  }
  let done = false;
  let wake: () => void = () => {};
  const quit = (): void => {
    done = true;
    wake();
  };
  const stdin = process.stdin;
  if (isatty(0)) {
    stdin.setRawMode(true);
    stdin.on('data', (d: Buffer) => {
      if (d.includes(0x71) || d.includes(0x03)) quit();
    });
  }
  process.once('SIGINT', quit);
  try {
    let cur = first;
    while (!done) {
      const now = Date.now();
      out('\x1b[H\x1b[2J' + formatTop(cur, prev, (now - t0) / 1000));
      prev = new Map(cur.map((s) => [s.id, s]));
      t0 = now;
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, every * 1000);
      });
      if (!done) cur = await sample();
    }
  } catch (e) {
    errOut(`ublkit: top: ${(e as Error).message}\n`);
    return 1;
  } finally {
    if (isatty(0)) {
      stdin.setRawMode(false);
      stdin.pause();
    }
  }
  return 0;
}
