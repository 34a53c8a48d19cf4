// Helpers for kernel tests: probe-and-skip, run the CLI, devices that are always deleted, dmesg scan.
import * as fs from 'node:fs';
import { spawnSync, execFileSync, execFile, type SpawnSyncReturns } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import type { Target, TargetContext, FileIo } from '../../src/index.js';

export const CLI = fileURLToPath(new URL('../../src/cli/ublkit.cjs', import.meta.url));

/** Why kernel tests cannot run here, or undefined when they can. */
export function kernelSkipReason(): string | undefined {
  if (!fs.existsSync('/dev/ublk-control')) return 'no /dev/ublk-control (ublk_drv not loaded)';
  if (process.getuid?.() !== 0) return 'kernel tests need root';
  return undefined;
}

export interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
}

export function cli(args: string[], timeoutMs = 120_000): CliResult {
  const r: SpawnSyncReturns<string> = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: timeoutMs });
  if (r.error) throw r.error;
  return { status: r.status ?? (r.signal ? 128 : 1), stdout: r.stdout, stderr: r.stderr };
}

/** `cli` without blocking the test's event loop: for commands that must run at the same time. */
export function cliAsync(args: string[], timeoutMs = 120_000): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = (err as { code?: unknown } | null)?.code;
      resolve({ status: err ? (typeof code === 'number' ? code : 128) : 0, stdout, stderr });
    });
  });
}

/** Runs `ublkit add ...` and returns the new device id (parsed as the selftests do). */
export function addDevice(args: string[]): number {
  const r = cli(['add', ...args]);
  if (r.status !== 0) throw new Error(`ublkit add ${args.join(' ')} failed (${r.status}): ${r.stderr.trim()}`);
  const m = /^dev id (\d+):/m.exec(r.stdout);
  if (!m) throw new Error(`no 'dev id' line in: ${r.stdout}`);
  return Number(m[1]);
}

/** Deletes device `id` (this test's own); errors are ignored: callers clean up on any path. */
export function delDevice(id: number): void {
  cli(['del', '-n', String(id)]);
}

/** Ids of the ublk devices that exist now, whoever made them. */
export function ublkIds(): number[] {
  return ublkNodes().map((n) => /^ublkc(\d+)$/.exec(n)).filter((m) => m).map((m) => Number(m![1])).sort((a, b) => a - b);
}

/** The lowest id no device has now: for tests that must name their device before `add` can report it. */
export function freeId(): number {
  const used = new Set(ublkIds());
  let id = 0;
  while (used.has(id)) id++;
  return id;
}

let featureText: string | undefined;

/** Skip reason when the kernel lacks any of `names` (substrings of `ublkit features`), else undefined. */
export function lacks(...names: string[]): string | undefined {
  featureText ??= cli(['features']).stdout;
  const missing = names.filter((n) => !featureText!.includes(n));
  return missing.length ? `kernel lacks ${missing.join(', ')}` : undefined;
}

/** Adds a device, runs `fn` with its id, and deletes it whatever happens. */
export async function withCliDevice<T>(args: string[], fn: (id: number, dev: string) => Promise<T> | T): Promise<T> {
  const id = addDevice(args);
  try {
    return await fn(id, `/dev/ublkb${id}`);
  } finally {
    delDevice(id);
  }
}

export function listJson(id: number): { state: string; pid: number; flags: number; mode: string; sizeBytes: number } {
  return JSON.parse(cli(['list', '-n', String(id), '--json']).stdout);
}

export function ublkNodes(): string[] {
  return fs.readdirSync('/dev').filter((n) => /^ublk[bc]\d+/.test(n));
}

/** Polls `cond` until it holds or the deadline passes; no fixed sleeps. */
export async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export function sh(cmd: string, args: string[], opts: { timeout?: number; input?: string } = {}): string {
  return execFileSync(cmd, args, { encoding: 'utf8', timeout: opts.timeout ?? 600_000, input: opts.input, stdio: ['pipe', 'pipe', 'pipe'] });
}

export function hasProgram(p: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${p}`]).status === 0;
}

/** fio randwrite with crc32c verify, the selftests' recipe; throws with fio's output on failure. */
export function fioVerify(dev: string, size: string, extra: string[] = []): string {
  const args = ['--name=verify', `--filename=${dev}`, '--rw=randwrite', '--direct=1', '--ioengine=libaio',
    '--bs=8k', '--iodepth=32', '--verify=crc32c', '--do_verify=1', '--verify_state_save=0', `--size=${size}`, ...extra];
  const r = spawnSync('fio', args, { encoding: 'utf8', timeout: 900_000 });
  if (r.status !== 0) throw new Error(`fio verify failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

export function sha256File(path: string): string {
  return createHash('sha256').update(fs.readFileSync(path)).digest('hex');
}

/**
 * Writes a marker to the kernel log; `dmesgProblems(marker)` then returns the BUG/WARNING/hung-task
 * lines after it. Throws when the marker cannot be written: a scan without it would prove nothing.
 */
export function dmesgMark(tag: string): string {
  const marker = `ublkit-test-${tag}-${process.pid}-${Date.now()}`;
  fs.writeFileSync('/dev/kmsg', marker + '\n');
  return marker;
}

/** Problem lines logged after `marker`; throws when dmesg fails or the marker is not in the log. */
export function dmesgProblems(marker: string): string[] {
  const log = execFileSync('dmesg', { encoding: 'utf8', maxBuffer: 1 << 26 });
  const at = log.lastIndexOf(marker);
  // Missing: never written, or rotated out of the ring buffer; either way nothing was checked.
  if (at < 0) throw new Error(`dmesg scan: marker ${marker} is not in the kernel log`);
  const lines = log.slice(at).split('\n');
  const bad: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i];
    if (!/\b(BUG|WARNING|hung_task|blocked for more than|UBSAN|general protection)\b/.test(l)) continue;
    // Debian's 7.2 kernel logs one UBSAN report from io_uring/rsrc.c on the first zero-copy
    // buffer registration of a boot (a bounds-annotation false positive, seen with kublk too).
    if (/UBSAN/.test(l) && lines.slice(i, i + 3).some((x) => x.includes('io_uring/rsrc.c'))) continue;
    bad.push(l);
  }
  return bad;
}

/** Like sh() but leaves the event loop running: needed when this thread serves the device. */
export function shAsync(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: 600_000 }, (err, stdout, stderr) => {
      if (err) reject(Object.assign(err, { stderr }));
      else resolve(stdout);
    });
  });
}

/** A sparse file of `bytes` in `dir` (the backing store of a test device). */
export function sparseFile(dir: string, name: string, bytes: number): string {
  const f = `${dir}/${name}`;
  fs.writeFileSync(f, '');
  fs.truncateSync(f, bytes);
  return f;
}

/**
 * A pass-through target over `file` declared `size` bytes long, doing its IO on the thread's ring:
 * a file shorter than that (or on a full file system) gives short backend IO.
 */
export function passThroughFile(file: string, size: number): Target {
  const fd = fs.openSync(file, 'r+');
  let io: FileIo;
  return {
    size,
    open(ctx: TargetContext) {
      io = ctx.io;
    },
    read: (buf, off) => io.read(fd, buf, off),
    write: (buf, off) => io.write(fd, buf, off),
    route: (offset, length) => [{ fd, offset, length, bufOffset: 0 }],
    close: () => fs.closeSync(fd),
  };
}
