// The serving side of add / recover: start the device and serve it until it is deleted, either in
// the detached daemon (reporting to the parent through a pipe) or in the foreground.
import * as fs from 'node:fs';
import { Device, type DeviceOptions } from '../../ublk/device.js';
import { printListing, type Launch } from './add.js';
import { gather, formatListing } from '../listing.js';

function start(kind: Launch, id: number, opts: DeviceOptions): Promise<Device> {
  return kind === 'recover' ? Device.recover(id, opts) : Device.create(opts);
}

function serveUntilClosed(dev: Device): Promise<void> {
  const bye = () => {
    dev.delete().catch(() => {}).finally(() => process.exit(0));
  };
  process.once('SIGINT', bye);
  process.once('SIGTERM', bye);
  return dev.closed;
}

export async function runForeground(kind: Launch, id: number, opts: DeviceOptions, quiet: boolean): Promise<number> {
  const dev = await start(kind, id, opts);
  await printListing(dev.id, quiet);
  await serveUntilClosed(dev);
  return 0;
}

/** The daemon: stdio is /dev/null; the outcome goes to the parent through `fd` and fd is closed. */
export async function runDaemon(kind: Launch, id: number, opts: DeviceOptions, fd: number, quiet: boolean): Promise<number> {
  let dev: Device;
  let listing: string;
  try {
    dev = await start(kind, id, opts);
    // The parent prints this text: it then needs no io_uring and no native addon of its own.
    listing = formatListing(await gather(dev.control, dev.id), quiet);
  } catch (err) {
    fs.writeSync(fd, JSON.stringify({ ok: false, error: (err as Error).message }) + '\n');
    fs.closeSync(fd);
    return 1;
  }
  fs.writeSync(fd, JSON.stringify({ ok: true, id: dev.id, listing }) + '\n');
  fs.closeSync(fd);
  await serveUntilClosed(dev);
  return 0;
}
