// The serving side of add / recover: start the device and serve it until it is deleted, either in
// the detached daemon (reporting to the parent through a pipe) or in the foreground.
import * as fs from 'node:fs';
import { Device, type DeviceError, type DeviceOptions } from '../ublk/device.js';
import { Control } from '../ublk/control.js';
import { UblkError } from '../errors.js';
import { catalogue as builtinTargets } from '../targets/builtin.js';
import type { Launch, DaemonReport } from './daemon-protocol.js';
import { gather, formatListing } from './listing.js';
import { listenControl } from './control-socket.js';

/**
 * SIGINT / SIGTERM: during start-up they cancel it (Device.create undoes everything, the id is
 * freed); once serving, they flush the device through its block node and delete it, then exit.
 */
class Lifetime {
  readonly abort = new AbortController();
  private dev: Device | undefined;
  private stopping = false;

  constructor(private readonly log: (line: string) => void) {
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
  }

  private readonly onSignal = (sig: NodeJS.Signals): void => {
    if (!this.dev) {
      this.abort.abort(new UblkError('EINTR', `interrupted by ${sig} during start-up; nothing was left behind`));
      return;
    }
    if (this.stopping) return;
    this.stopping = true;
    const dev = this.dev;
    void dev.sync()
      .catch((e: Error) => this.log(`device ${dev.id}: flush before stop failed: ${e.message}`))
      .then(() => dev.delete())
      .then(() => process.exit(0), (e: Error) => {
        this.log(`device ${dev.id}: stop on ${sig} failed: ${e.message}`);
        process.exit(1);
      });
  };

  async start(kind: Launch, id: number, opts: DeviceOptions, onAdded?: (id: number) => void): Promise<Device> {
    // The serving side is where the built-in targets are loaded: the parent only parses their options.
    const o = { ...opts, targets: opts.targets ?? builtinTargets, signal: this.abort.signal, onAdded };
    const dev = await (kind === 'recover' ? Device.recover(id, o) : Device.create(o));
    this.dev = dev;
    await this.listen(dev);
    // A serving thread died: the device has let go (DEAD, or QUIESCED with recovery); say why.
    dev.on('error', (e: DeviceError) => this.log(`device ${dev.id}: ${e.message}${e.fatal ? '; the server gave up the device' : ''}`));
    return dev;
  }

  /** The control socket (`ublkit stats`, `ublkit top`) lives as long as the device is served. */
  private async listen(dev: Device): Promise<void> {
    try {
      const close = await listenControl(dev.id, { stats: () => dev.stats() });
      void dev.closed.finally(close);
    } catch (e) {
      this.log(`device ${dev.id}: no control socket, ublkit stats will not reach it: ${(e as Error).message}`);
    }
  }
}

async function printListing(id: number, quiet: boolean): Promise<void> {
  const ctrl = new Control();
  try {
    process.stdout.write(formatListing(await gather(ctrl, id), quiet));
  } finally {
    ctrl.close();
  }
}

export async function runForeground(kind: Launch, id: number, opts: DeviceOptions, quiet: boolean): Promise<number> {
  const life = new Lifetime((line) => process.stderr.write(`ublkit: ${line}\n`));
  const dev = await life.start(kind, id, opts);
  await printListing(dev.id, quiet);
  await dev.closed;
  return 0;
}

/** Where a daemon logs without --log: one file per device, kept after the device is gone. */
export const LOG_DIR = '/var/log/ublkit';

/**
 * The daemon has no stdio: its messages go, time-stamped, to `file` (default LOG_DIR/ublkb<ID>.log,
 * known once the device has its id), else to the kernel log beside ublk's own.
 */
function fileLog(file: string | undefined, id: () => number): (line: string) => void {
  return (line) => {
    const to = file ?? (id() >= 0 ? `${LOG_DIR}/ublkb${id()}.log` : undefined);
    try {
      if (!to) throw new Error('no id yet');
      if (!file) fs.mkdirSync(LOG_DIR, { recursive: true, mode: 0o755 });
      fs.appendFileSync(to, `${new Date().toISOString()} ublkit[${process.pid}]: ${line}\n`, { mode: 0o640 });
    } catch {
      try {
        fs.appendFileSync('/dev/kmsg', `<4>ublkit[${process.pid}]: ${line}\n`);
      } catch { /* nowhere left to say it */ }
    }
  };
}

/** The daemon: stdio is /dev/null; the outcome goes to the parent through `fd` and fd is closed. */
export async function runDaemon(kind: Launch, id: number, opts: DeviceOptions, fd: number, quiet: boolean, logFile?: string): Promise<number> {
  const report = (m: DaemonReport) => {
    try {
      fs.writeSync(fd, JSON.stringify(m) + '\n');
    } catch { /* the parent is gone */ }
  };
  let devId = id;
  const log = fileLog(logFile, () => devId);
  const life = new Lifetime(log);
  // Warnings (engine errors, a thread that ended) reach the user of `add` while it waits.
  const onWarning = (w: Error) => report({ event: 'log', message: w.message });
  process.on('warning', onWarning);
  let dev: Device | undefined;
  let listing: string;
  try {
    dev = await life.start(kind, id, opts, (n) => {
      devId = n;
      report({ event: 'added', id: n });
    });
    // The parent prints this text: it then needs no io_uring and no native addon of its own.
    listing = formatListing(await gather(dev.control, dev.id), quiet);
  } catch (err) {
    if (dev && kind === 'add') await dev.delete().catch(() => {});
    report({ ok: false, error: (err as Error).message });
    fs.closeSync(fd);
    return 1;
  }
  process.off('warning', onWarning);
  // From now on a warning (engine errors go to the device's listener) has no parent to reach.
  process.on('warning', (w) => log(w.message));
  log(`device ${dev.id} served (${dev.mode}); pid ${process.pid}`);
  report({ ok: true, id: dev.id, listing });
  fs.closeSync(fd);
  await dev.closed;
  return 0;
}
