// Device start-up: the target instance, mode checks, and attaching the serving threads to
// /dev/ublkcN (shared by create and recover), with cleanup on every failure.
import * as fs from 'node:fs';
import { Control } from './control.js';
import { Crew, type EngineBase } from './crew.js';
import { native, addressOf } from '../native.js';
import { type DataMode, MODE_FLAGS, needsRoute, needsTrust } from './modes.js';
import { checkTarget } from '../target/contract.js';
import { applyFilters } from '../filters/index.js';
import { loadTarget } from '../target/catalogue.js';
import type { Target, TargetSpec } from '../target/types.js';
import { type DevInfo, type Params, ioDescSizeOf } from '../uapi/structs.js';
import * as U from '../uapi/ublk.js';
import { UblkError } from '../errors.js';
import { hasSysAdmin } from './privilege.js';
import type { DeviceOptions } from './device-options.js';

function isSpec(t: Target | TargetSpec): t is TargetSpec {
  return typeof (t as TargetSpec).module === 'string' && typeof (t as Target).read !== 'function';
}

async function openRetry(path: string, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return fs.openSync(path, fs.constants.O_RDWR);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

const FEATURE_NEEDS: Record<DataMode, string> = {
  'copy': '',
  'get-data': 'UBLK_F_NEED_GET_DATA',
  'user-copy': 'UBLK_F_USER_COPY (Linux 6.5+)',
  'zero-copy': 'UBLK_F_SUPPORT_ZERO_COPY (Linux 6.15+)',
  'auto-buf-reg': 'UBLK_F_AUTO_BUF_REG (Linux 6.16+)',
};

/** DEL_DEV of a device whose start-up failed, on a fresh control channel; errors are dropped. */
export async function deleteQuietly(devId: number): Promise<void> {
  let c: Control | undefined;
  try {
    c = new Control();
    await c.delDev(devId);
  } catch { /* the start-up error is the one to report */ } finally {
    c?.close();
  }
}

export interface LocalTarget {
  target: Target;
  spec?: TargetSpec;
  config?: unknown;
}

/** The local instance serves in-thread, or only describes the device when workers serve. */
export async function localTarget(opts: DeviceOptions): Promise<LocalTarget> {
  if (!isSpec(opts.target)) return { target: checkTarget(opts.target as Target) };
  const spec = opts.target;
  const mod = await loadTarget(spec.module, opts.targets);
  const config = mod.prepare ? await mod.prepare(spec.config) : spec.config;
  return { target: checkTarget(applyFilters(await mod.create(config), spec.filters)), spec, config };
}

export function checkMode(mode: DataMode, features: number, target: Target): void {
  if (MODE_FLAGS[mode] && !(features & MODE_FLAGS[mode])) throw new UblkError('ENOTSUP', `data mode '${mode}' needs ${FEATURE_NEEDS[mode]}, which this kernel lacks`);
  if (needsTrust(mode) && !hasSysAdmin()) throw new UblkError('EPERM', `data mode '${mode}' lends client pages to the server and needs CAP_SYS_ADMIN: run as root or use mode 'copy'`);
  if (needsRoute(mode) && typeof target.route !== 'function') throw new UblkError('EINVAL', `data mode '${mode}' needs a pass-through target (with route()); this target must see the bytes: use 'copy' or 'user-copy'`);
}

export function featureNames(bits: number): string {
  return U.UBLK_F_NAMES.filter((_, i) => bits & (1 << i)).join(', ') || `0x${bits.toString(16)}`;
}

/** A started server: the live dev_info, the params in force, /dev/ublkcN, the serving threads. */
export interface Attached {
  info: DevInfo;
  params: Params;
  fd: number;
  crew: Crew;
}

/**
 * Opens /dev/ublkcN, applies params, starts the serving threads (every slot FETCHed), then runs
 * `go` (START_DEV or END_USER_RECOVERY). On failure every thread is ended and ublkc closed first:
 * its mappings and ring registrations pin the device, and a DEL_DEV before that waits forever. No
 * STOP here: a failed recover must leave the device recoverable (the release path re-quiesces it).
 */
export async function attach(
  ctrl: Control, info: DevInfo, mode: DataMode, local: LocalTarget, opts: DeviceOptions,
  setup: () => Promise<Params>, go: () => Promise<number>,
): Promise<Attached> {
  const devId = info.devId;
  const fd = await openRetry(`/dev/ublkc${devId}`, 3000);
  const crew = new Crew(opts.signal, opts.stats === false ? undefined : info.nrHwQueues);
  try {
    const params = await crew.race(setup());
    const engineCfg: EngineBase = {
      ublkcFd: fd, queueDepth: info.queueDepth, ioDescSize: ioDescSizeOf(info), maxIoBufBytes: info.maxIoBufBytes, mode,
      noFixedFd: opts.noFixedFd, autoBufRegFallback: opts.autoBufRegFallback, rotateAutoBuf: opts.rotateAutoBuf, dieDuringFetch: opts.dieDuringFetch,
      batch: (info.flags & U.UBLK_F_BATCH_IO) !== 0, shmem: opts.shmem,
      integrity: params.integrity ? { intervalExp: params.integrity.intervalExp, metadataSize: params.integrity.metadataSize } : undefined,
    };
    const slots = range(info.nrHwQueues).flatMap((q) => range(info.queueDepth).map((t) => [q, t] as [number, number]));
    const threads = opts.threads ?? (local.spec ? info.nrHwQueues : 1);
    // Default: whole queues per thread; per-IO tasks: slot k = qid*depth+tag to thread k % nt.
    const nt = threads <= 1 ? 1 : opts.perIoTasks ? Math.min(threads, slots.length) : Math.min(threads, info.nrHwQueues);
    // kublk's rule: as many threads as queues, thread i on queue i's first CPU.
    const cpus = opts.pinThreads && nt === info.nrHwQueues ? await firstCpus(ctrl, devId, nt) : [];
    if (threads <= 1) {
      await crew.serveHere(local.target, { ...engineCfg, cpu: cpus[0] }, slots);
    } else {
      const groups = range(nt).map((i) => slots.filter(([q, t], k) => (opts.perIoTasks ? k : q) % nt === i));
      if (opts.serveInCallingThread) {
        const both = await Promise.allSettled([
          crew.serveHere(local.target, { ...engineCfg, cpu: cpus[0] }, groups[0], 0),
          crew.serveInWorkers(local.spec!, local.config, opts.targets?.url, engineCfg, groups.slice(1), 1, cpus.slice(1)),
        ]);
        for (const r of both) if (r.status === 'rejected') throw r.reason;
      } else {
        await local.target.close?.();
        await crew.serveInWorkers(local.spec!, local.config, opts.targets?.url, engineCfg, groups, 0, cpus);
      }
    }
    await crew.race(go());
    if (opts.shmem) await crew.race(registerShmem(ctrl, devId, opts.shmem, crew.done));
    const live = await crew.race(ctrl.getDevInfo(devId));
    crew.started();
    return { info: live, params, fd, crew };
  } catch (err) {
    // The start-up's own error is the one to report; /dev/ublkcN is closed whatever abort says.
    await crew.abort().catch((e: Error) => process.emitWarning(`ending the serving threads: ${e.message}`));
    fs.closeSync(fd);
    throw err;
  }
}

/** Maps the shared file populated and registers it; the mapping lives until the device closes. */
async function registerShmem(ctrl: Control, devId: number, sh: { path: string; readOnly?: boolean }, closed: Promise<void>): Promise<number> {
  const n = native();
  const c = n.constants;
  const fd = fs.openSync(sh.path, sh.readOnly ? fs.constants.O_RDONLY : fs.constants.O_RDWR);
  let map: ArrayBuffer;
  try {
    const size = fs.fstatSync(fd).size;
    map = n.mmap(fd, size, sh.readOnly ? c.PROT_READ : c.PROT_READ | c.PROT_WRITE, c.MAP_SHARED | c.MAP_POPULATE, 0);
  } finally {
    fs.closeSync(fd);
  }
  const index = await ctrl.regBuf(devId, addressOf(map), map.byteLength, sh.readOnly ? U.UBLK_SHMEM_BUF_READ_ONLY : 0);
  void closed.finally(() => n.munmap(map));
  return index;
}

/** The first CPU of each of queues 0..n-1 (undefined where the kernel reports none). */
async function firstCpus(ctrl: Control, devId: number, n: number): Promise<Array<number | undefined>> {
  const out: Array<number | undefined> = [];
  for (let q = 0; q < n; q++) out.push((await ctrl.getQueueAffinity(devId, q))[0]);
  return out;
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
