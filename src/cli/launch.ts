// add / recover in the calling process: check the command line, then fork the serving daemon
// (src/cli/daemon.ts) and print the device once it is LIVE; --foreground serves here instead.
// This module stays light (no engine, targets or workers): it is part of the bundled CLI.
import * as fs from 'node:fs';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { hasSysAdmin } from '../ublk/privilege.js';
import { Control, CONTROL_PATH, lifecycleTimeoutMs } from '../ublk/control.js';
import { UblkError } from '../errors.js';
import type { CliArgs } from './args.js';
import { launchOptions } from './add-options.js';
import { DAEMON_FD_ENV, type DaemonReport, type Launch } from './daemon-protocol.js';

/** Actionable checks before forking: driver present, privileges. */
export function preflight(): void {
  if (!fs.existsSync(CONTROL_PATH)) throw new UblkError('ENODEV', `${CONTROL_PATH} not found: load the ublk driver with 'modprobe ublk_drv' (Linux 6.0+ with CONFIG_BLK_DEV_UBLK)`);
  if (!hasSysAdmin()) throw new UblkError('EPERM', 'creating ublk devices needs root (CAP_SYS_ADMIN): run with sudo');
}

// Where the daemon entry is: beside the tsc output, or, for the bundled
// CLI (dist/src/cli/ublkit.cjs), the bundle tools/bundle-cli.mjs writes beside it.
declare const __UBLKIT_DAEMON__: string | undefined;

/** add / recover in the calling process: checks, then the daemon (or, with --foreground, serving here). */
export async function launch(a: CliArgs, kind: Launch): Promise<number> {
  const opts = launchOptions(a, kind);
  preflight();
  if (a.foreground) {
    // By URL, so that the bundled CLI does not carry the engine: serve.js sits beside this file
    // in the tsc output, and beside the bundle (dist/src/cli/) too.
    const m = (await import(new URL('./serve.js', import.meta.url).href)) as typeof import('./serve.js');
    return m.runForeground(kind, a.number, opts, a.quiet);
  }
  return spawnDaemon(kind);
}

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
  const daemon = fileURLToPath(new URL(typeof __UBLKIT_DAEMON__ === 'string' ? __UBLKIT_DAEMON__ : './daemon.js', import.meta.url));
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
