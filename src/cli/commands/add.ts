// add / recover in the calling process: check the command line, then fork the serving daemon
// (src/cli/daemon.ts) and print the device once it is LIVE; --foreground serves here instead.
// This module stays light (no engine, targets or workers): it is part of the bundled CLI.
import * as fs from 'node:fs';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { DeviceOptions } from '../../ublk/device.js';
import { hasSysAdmin } from '../../ublk/privilege.js';
import * as U from '../../uapi/ublk.js';
import { Control, CONTROL_PATH, lifecycleTimeoutMs } from '../../ublk/control.js';
import type { ModeRequest } from '../../ublk/modes.js';
import { UblkError } from '../../errors.js';
import type { CliArgs } from '../args.js';
import { targetSpec } from '../targets.js';
import { gather, formatListing } from '../listing.js';
import { fingerprint } from '../fingerprint.js';

const MAX_QUEUES = 32;
const MAX_DEPTH = 1024;
export const DAEMON_FD_ENV = 'UBLKIT_DAEMON_FD';

function pickMode(a: CliArgs): ModeRequest {
  if (a.autoZcFallback) return 'auto-buf-reg';
  const chosen = [a.getData && 'get-data', a.userCopy && 'user-copy', a.zeroCopy && 'zero-copy', a.autoZc && 'auto-buf-reg']
    .filter(Boolean) as ModeRequest[];
  if (a.mode) chosen.push(a.mode as ModeRequest);
  if (chosen.length > 1) throw new UblkError('EINVAL', 'too many data copy modes specified');
  const m = chosen[0] ?? 'copy';
  if (!['auto', 'copy', 'get-data', 'user-copy', 'zero-copy', 'auto-buf-reg'].includes(m)) {
    throw new UblkError('EINVAL', `unknown --mode ${m}: use auto, copy, get-data, user-copy, zero-copy or auto-buf-reg`);
  }
  return m;
}

/** Checks the command line and turns it into device options; throws one-line errors. */
export function deviceOptions(a: CliArgs): DeviceOptions {
  const queues = a.queues ?? 2;
  const depth = a.depth ?? 128;
  if (queues < 1 || queues > MAX_QUEUES) throw new UblkError('EINVAL', `-q ${queues}: number of queues must be 1..${MAX_QUEUES}`);
  if (depth < 1 || depth > MAX_DEPTH) throw new UblkError('EINVAL', `-d ${depth}: queue depth must be 1..${MAX_DEPTH}`);
  const nthreads = a.nthreads ?? queues;
  if (nthreads < 1 || nthreads > MAX_QUEUES) throw new UblkError('EINVAL', `--nthreads ${nthreads}: must be 1..${MAX_QUEUES}`);
  if (a.perIoTasks && a.batch) throw new UblkError('EINVAL', '--per_io_tasks cannot be combined with -b');
  if (nthreads !== queues && !a.perIoTasks && !a.batch) throw new UblkError('EINVAL', `--nthreads ${nthreads} differs from -q ${queues}: add --per_io_tasks`);
  let flags = 0;
  if (a.recovery) flags |= U.UBLK_F_USER_RECOVERY;
  if (a.recoveryFailIo) flags |= U.UBLK_F_USER_RECOVERY | U.UBLK_F_USER_RECOVERY_FAIL_IO;
  if (a.recoveryReissue) flags |= U.UBLK_F_USER_RECOVERY | U.UBLK_F_USER_RECOVERY_REISSUE;
  if (a.noAutoPartScan) flags |= U.UBLK_F_NO_AUTO_PART_SCAN;
  if (a.batch) flags |= U.UBLK_F_BATCH_IO;
  if (a.shmemZc) flags |= U.UBLK_F_SHMEM_ZC;
  if (a.metadataSize !== undefined && !a.userCopy) throw new UblkError('EINVAL', '--metadata_size requires -u');
  const integrityOpt = a.piOffset !== undefined || a.csumType !== undefined || a.tagSize !== undefined || a.integrityCapable || a.integrityReftag;
  if (integrityOpt && a.metadataSize === undefined) throw new UblkError('EINVAL', 'integrity options require --metadata_size');
  if (a.autoZc && a.batch && nthreads > queues) throw new UblkError('EINVAL', '--auto_zc with -b needs --nthreads <= -q');
  if (a.htlb && !a.shmemZc) throw new UblkError('EINVAL', '--htlb needs --shmem_zc');
  if (a.autoZcFallback && !(a.autoZc && a.zeroCopy)) throw new UblkError('EINVAL', '--auto_zc_fallback requires both --auto_zc and -z');
  if (a.autoZcFallback && a.type !== 'null') throw new UblkError('EINVAL', `--auto_zc_fallback is only supported by the null target`);
  const mb = a.maxIoBufBytes;
  if (mb !== undefined && (mb < 4096 || mb > 32 << 20)) throw new UblkError('EINVAL', `--max_io_buf_bytes ${mb}: must be 4096..33554432`);
  return {
    target: targetSpec(a), id: a.number, queues, depth, threads: nthreads,
    mode: a.autoZcFallback ? 'auto-buf-reg' : pickMode(a), autoBufRegFallback: a.autoZcFallback,
    noFixedFd: a.noUblkFixedFd, maxIoBufBytes: mb, flags, perIoTasks: a.perIoTasks,
    // Stored at add, compared at recover: other files, order or layout would scramble the disk.
    serverFlags: fingerprint(a),
    shmem: a.htlb ? { path: a.htlb, readOnly: a.rdonlyShmemBuf } : undefined,
    // As kublk: quiesce comes with recovery whenever the kernel has it.
    optionalFlags: flags & U.UBLK_F_USER_RECOVERY ? U.UBLK_F_QUIESCE : 0,
    dieDuringFetch: a.type === 'fault_inject' && Number(a.targetOpts.die_during_fetch ?? 0) > 0,
    // The daemon (and --foreground) does nothing but serve: its own thread takes the first group.
    serveInCallingThread: true,
    // As kublk: a thread per queue runs on its queue's first CPU (and so do its io-wq workers).
    pinThreads: !a.noPin,
  };
}

/** Actionable checks before forking: driver present, privileges. */
export function preflight(): void {
  if (!fs.existsSync(CONTROL_PATH)) throw new UblkError('ENODEV', `${CONTROL_PATH} not found: load the ublk driver with 'modprobe ublk_drv' (Linux 6.0+ with CONFIG_BLK_DEV_UBLK)`);
  if (!hasSysAdmin()) throw new UblkError('EPERM', 'creating ublk devices needs root (CAP_SYS_ADMIN): run with sudo');
}

export type Launch = 'add' | 'recover';

export function add(a: CliArgs): Promise<number> {
  return launch(a, 'add');
}

/** recover -n ID + the original add options: a new server for a QUIESCED / FAIL_IO device. */
export function recover(a: CliArgs): Promise<number> {
  return launch(a, 'recover');
}

/** Checks that hold for the parent and the daemon alike. */
export function launchOptions(a: CliArgs, kind: Launch): DeviceOptions {
  if (kind === 'recover' && a.number < 0) throw new UblkError('EINVAL', "device id isn't provided for recovering: -n ID");
  return deviceOptions(a);
}

// Where the daemon entry and the serving module are: beside the tsc output, or, for the bundled
// CLI (dist/src/cli/ublkit.cjs), the bundles tools/bundle-cli.mjs writes beside it.
declare const __UBLKIT_DAEMON__: string | undefined;
declare const __UBLKIT_SERVE__: string | undefined;

async function launch(a: CliArgs, kind: Launch): Promise<number> {
  const opts = launchOptions(a, kind);
  preflight();
  if (a.foreground) {
    const serve = new URL(typeof __UBLKIT_SERVE__ === 'string' ? __UBLKIT_SERVE__ : './serve.js', import.meta.url);
    const m = (await import(serve.href)) as typeof import('./serve.js');
    return m.runForeground(kind, a.number, opts, a.quiet);
  }
  return spawnDaemon(kind);
}

export async function printListing(id: number, quiet: boolean): Promise<void> {
  const ctrl = new Control();
  try {
    process.stdout.write(formatListing(await gather(ctrl, id), quiet));
  } finally {
    ctrl.close();
  }
}

/** One JSON line the daemon writes to the parent: progress, a warning, or the outcome. */
export type DaemonReport =
  | { event: 'added'; id: number }
  | { event: 'log'; message: string }
  | { ok: boolean; id?: number; error?: string; listing?: string };

interface Outcome {
  final?: { ok: boolean; id?: number; error?: string; listing?: string };
  added: number;
  logs: string[];
}

/** Reads the daemon's reports until it closes the pipe (done, or dead). */
function readReports(pipe: NodeJS.ReadableStream, into: Outcome): Promise<void> {
  let text = '';
  pipe.setEncoding('utf8');
  pipe.on('data', (d: string) => {
    text += d;
    let nl: number;
    while ((nl = text.indexOf('\n')) >= 0) {
      const line = text.slice(0, nl);
      text = text.slice(nl + 1);
      let m: DaemonReport;
      try {
        m = JSON.parse(line);
      } catch {
        continue;
      }
      if ('event' in m) {
        if (m.event === 'added') into.added = m.id;
        else into.logs.push(m.message);
      } else into.final = m;
    }
  });
  return new Promise<void>((resolve) => {
    pipe.once('end', resolve);
    pipe.once('close', resolve);
    pipe.once('error', () => resolve());
  });
}

function sleepUnless<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), ms)))]).finally(() => clearTimeout(timer));
}

/**
 * Forks the daemon detached with no stdio of ours; returns once the device is LIVE or failed.
 * Bounded: a daemon that does not report in time is stopped (SIGTERM: it undoes its start-up;
 * then SIGKILL). Ctrl-C here cancels the start-up the same way. A daemon that dies without a
 * report leaves its device to us: an `add` deletes it, so that a failed add leaves nothing behind.
 */
async function spawnDaemon(kind: Launch): Promise<number> {
  const daemon = fileURLToPath(new URL(typeof __UBLKIT_DAEMON__ === 'string' ? __UBLKIT_DAEMON__ : '../daemon.js', import.meta.url));
  const child = spawn(process.execPath, [...process.execArgv, daemon, ...process.argv.slice(2)], {
    detached: true,
    stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
    env: { ...process.env, [DAEMON_FD_ENV]: '3' },
  });
  const exited = new Promise<string>((r) => child.once('exit', (code, sig) => r(sig ? `was killed by ${sig}` : `exited with status ${code}`)));
  const forward = (sig: NodeJS.Signals) => child.kill(sig);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  const out: Outcome = { added: -1, logs: [] };
  const pipe = child.stdio[3] as NodeJS.ReadableStream;
  const reported = readReports(pipe, out);
  const ms = lifecycleTimeoutMs();
  let stuck = '';
  try {
    // The daemon bounds each of its own steps by `ms` (thread start-up 2 ms); this covers them all.
    if ((await sleepUnless(reported, 4 * ms)) === 'timeout') {
      stuck = `did not start the device within ${(4 * ms) / 1000} s${out.added >= 0 ? ` (device ${out.added} was added)` : ''}`;
      child.kill('SIGTERM');
      if ((await sleepUnless(reported, ms)) === 'timeout') child.kill('SIGKILL');
    }
  } finally {
    process.off('SIGINT', forward);
    process.off('SIGTERM', forward);
    (pipe as unknown as { destroy(): void }).destroy();
  }
  if (out.final?.ok && !stuck) {
    child.unref();
    process.stdout.write(out.final.listing ?? '');
    return 0;
  }
  if (out.final && !stuck) {
    child.unref();
    process.stderr.write(`ublkit: ${out.final.error}\n`);
    return 1;
  }
  // No outcome: the daemon died, or was stopped above. Its device is ours to remove.
  const how = stuck || (await sleepUnless(exited, ms)) || 'stopped';
  const last = out.final?.error ?? out.logs[out.logs.length - 1];
  let left = '';
  if (out.added >= 0 && kind === 'add' && !out.final) left = (await removeDevice(out.added)) ? `; device ${out.added} deleted` : `; device ${out.added} is left: ublkit del -n ${out.added}`;
  child.unref();
  process.stderr.write(`ublkit: the server daemon (pid ${child.pid}) ${how === 'timeout' ? 'did not exit' : how} before starting the device${last ? ` (${last})` : ''}${left}\n`);
  return 1;
}

/** STOP_DEV + DEL_DEV of a device whose daemon is gone; false if it could not be deleted. */
async function removeDevice(id: number): Promise<boolean> {
  let c: Control | undefined;
  try {
    c = new Control();
    await c.stopDev(id);
    await c.delDev(id);
    return true;
  } catch (err) {
    return (err as UblkError).code === 'ENODEV';
  } finally {
    c?.close();
  }
}
