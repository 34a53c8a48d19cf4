// Device lifecycle: ADD, params, serving threads, START, STOP, DEL, with cleanup on every failure.
import * as fs from 'node:fs';
import { EventEmitter } from 'node:events';
import { Control, lifecycleTimeoutMs } from './control.js';
import { Crew, type EngineBase } from './crew.js';
import { native, addressOf } from '../native.js';
import { buildParams } from './params.js';
import { type ModeRequest, type DataMode, MODE_FLAGS, chooseMode, needsRoute, needsTrust, modeOfFlags } from './modes.js';
import { checkTarget } from '../target/contract.js';
import type { Target, TargetSpec } from '../target/types.js';
import type { DevInfo, Params } from '../uapi/structs.js';
import * as U from '../uapi/ublk.js';
import { UblkError } from '../errors.js';
import { hasSysAdmin } from './privilege.js';
import { startRecovery, checkSameDevice } from './recovery.js';
import { loadTargetModule } from '../targets/builtin.js';

export { hasSysAdmin };

export interface DeviceOptions {
  /** A target object (served in this thread), or a module spec (built once per worker thread when `threads` > 1). */
  target: Target | TargetSpec;
  /** Device id; -1 (default) lets the kernel choose. */
  id?: number;
  queues?: number;
  depth?: number;
  /** Serving threads: 1 serves every queue in the calling thread; more need a TargetSpec. */
  threads?: number;
  mode?: ModeRequest;
  maxIoBufBytes?: number;
  /** Extra UBLK_F_* flags to request (recovery, quiesce, ...); refused if the kernel lacks one. */
  flags?: number;
  /** UBLK_F_* flags to request only where the kernel has them (e.g. QUIESCE with recovery). */
  optionalFlags?: number;
  /**
   * Opaque 64-bit server data stored by the kernel (ublksrv_flags) at create. At recover, when
   * given, a device whose stored value is non-zero and differs is refused (the CLI stores a
   * fingerprint of the target configuration there).
   */
  serverFlags?: bigint;
  noFixedFd?: boolean;
  /**
   * Auto buffer registration with UBLK_AUTO_BUF_REG_FALLBACK: registration is made to fail
   * (index 0xffff) so every request takes the manual REGISTER_IO_BUF path; needs zero copy too.
   * A test mode, as kublk's --auto_zc_fallback.
   */
  autoBufRegFallback?: boolean;
  /**
   * UBLK_F_SHMEM_ZC: after START, map this file (hugetlbfs, memfd path...) MAP_SHARED and register
   * it with REG_BUF; client IO whose pages lie in it skips every copy.
   */
  shmem?: { path: string; readOnly?: boolean };
  /** Spread slots round-robin over the threads (qid*depth+tag mod threads), as kublk --per_io_tasks. */
  perIoTasks?: boolean;
  /** Fault injection for tests: the server SIGKILLs itself while fetching tag 1. */
  dieDuringFetch?: boolean;
  /**
   * With `threads` > 1, the calling thread serves the first group of slots itself and only the
   * others get worker threads: one thread start-up fewer (~0.3 s of CPU on a slow machine). For a
   * process that does nothing else, such as the CLI's daemon; a library caller whose thread has
   * other work keeps the default (false).
   */
  serveInCallingThread?: boolean;
  /**
   * When there are as many serving threads as queues, bind thread i to the first CPU of queue i's
   * affinity (GET_QUEUE_AFFINITY), as kublk does (with --per_io_tasks too); other thread counts
   * stay unbound. Default false: a library caller's own thread is left
   * alone. The CLI's daemon turns it on (`--no_pin` off).
   */
  pinThreads?: boolean;
  /** Cancels the start-up (create or recover): everything made so far is undone, the id freed. */
  signal?: AbortSignal;
  /** @internal Told the device id right after ADD_DEV (the CLI's parent deletes it if the daemon dies). */
  onAdded?: (id: number) => void;
}

const DEFAULT_MAX_IO = 1 << 20;

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

export class Device extends EventEmitter {
  readonly id: number;
  readonly mode: DataMode;
  info: DevInfo;
  readonly params: Params;
  /** Resolves when every serving thread has finished (device stopped or server aborted). */
  readonly closed: Promise<void>;
  private readonly ctrl: Control;
  private readonly crew: Crew;
  private ublkcFd: number;
  private stopped = false;

  /** @internal Use Device.create or Device.recover. */
  constructor(ctrl: Control, info: DevInfo, params: Params, mode: DataMode, fd: number, crew: Crew) {
    super();
    this.ctrl = ctrl;
    this.info = info;
    this.id = info.devId;
    this.params = params;
    this.mode = mode;
    this.ublkcFd = fd;
    this.crew = crew;
    this.closed = crew.done.finally(() => this.closeFd());
    crew.onDeath = (err) => this.fail(err);
  }

  /**
   * A serving thread died: its requests are stuck until /dev/ublkcN is released, and STOP_DEV
   * would wait for them forever. So the whole server lets go, as if the process had died: the
   * kernel fails (or, with recovery, requeues) the IO and the device goes DEAD (or QUIESCED).
   */
  private fail(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
    else process.emitWarning(`ublk device ${this.id}: ${err.message}`);
    void this.crew.abort();
  }

  /** @internal The device's control channel (the CLI daemon lists the device through it). */
  get control(): Control {
    return this.ctrl;
  }

  get blockPath(): string {
    return `/dev/ublkb${this.id}`;
  }
  get charPath(): string {
    return `/dev/ublkc${this.id}`;
  }

  /** Adds, configures and starts a device; when it resolves /dev/ublkbN exists and is LIVE. */
  static async create(opts: DeviceOptions): Promise<Device> {
    const queues = opts.queues ?? 1;
    const depth = opts.depth ?? 128;
    if (!Number.isInteger(queues) || queues < 1 || queues > U.UBLK_MAX_NR_QUEUES) throw new UblkError('EINVAL', `queues must be 1..${U.UBLK_MAX_NR_QUEUES}, got ${queues}`);
    if (!Number.isInteger(depth) || depth < 1 || depth > U.UBLK_MAX_QUEUE_DEPTH) throw new UblkError('EINVAL', `depth must be 1..${U.UBLK_MAX_QUEUE_DEPTH}, got ${depth}`);
    // Checked before ADD_DEV: the kernel rounds it down to a page, and past 32 MiB the user-copy
    // offset field overflows; either way SET_PARAMS would fail only after the device was added.
    const page = native().constants.PAGE_SIZE;
    const maxIo = opts.maxIoBufBytes ?? DEFAULT_MAX_IO;
    if (!Number.isInteger(maxIo) || maxIo < page || maxIo > 32 << 20 || maxIo % page) {
      throw new UblkError('EINVAL', `maxIoBufBytes must be a multiple of ${page} from ${page} to ${32 << 20}, got ${maxIo}`);
    }
    const local = await localTarget(opts);
    const ctrl = new Control();
    let devId = -1;
    try {
      const features = await ctrl.getFeatures();
      if (!(features & U.UBLK_F_CMD_IOCTL_ENCODE)) throw new UblkError('ENOTSUP', 'this kernel\'s ublk lacks ioctl-encoded commands: Linux 6.2 or newer is needed');
      const mode = chooseMode(opts.mode ?? 'auto', features, typeof local.target.route === 'function');
      checkMode(mode, features, local.target);
      if (local.target.integrity && mode !== 'user-copy') throw new UblkError('EINVAL', 'integrity metadata needs user copy mode (-u)');
      const want = (opts.flags ?? 0) | (opts.autoBufRegFallback ? U.UBLK_F_SUPPORT_ZERO_COPY : 0) |
        (local.target.integrity ? U.UBLK_F_INTEGRITY : 0);
      const missing = want & ~features;
      const extra = want | ((opts.optionalFlags ?? 0) & features);
      if (missing) throw new UblkError('ENOTSUP', `this kernel lacks ${featureNames(missing)}`);
      const maxIoBufBytes = opts.maxIoBufBytes ?? DEFAULT_MAX_IO;
      const params = buildParams(local.target, maxIoBufBytes);
      const info = await ctrl.addDev({
        devId: opts.id ?? -1, nrHwQueues: queues, queueDepth: depth, maxIoBufBytes,
        flags: MODE_FLAGS[mode] | extra, ublksrvFlags: opts.serverFlags ?? 0n,
      });
      devId = info.devId;
      opts.onAdded?.(devId);
      opts.signal?.throwIfAborted();
      if (MODE_FLAGS[mode] && !(info.flags & MODE_FLAGS[mode])) throw new UblkError('ENOTSUP', `the kernel refused data mode '${mode}' at ADD_DEV`);
      return await attach(ctrl, info, mode, local, opts, async () => {
        await ctrl.setParams(devId, params);
        return params;
      }, () => ctrl.startDev(devId, process.pid));
    } catch (err) {
      // Closing the control ring first cancels a START_DEV still waiting in the kernel.
      ctrl.close();
      if (devId >= 0) await deleteQuietly(devId);
      throw err;
    }
  }

  /**
   * Re-attaches a new server to a device whose server died (state QUIESCED or FAIL_IO): the kernel
   * kept its params and queued IO; geometry and mode come from the kernel's own dev_info.
   */
  static async recover(id: number, opts: DeviceOptions): Promise<Device> {
    const local = await localTarget(opts);
    const ctrl = new Control();
    try {
      const info = await ctrl.getDevInfo(id);
      if (!(info.flags & U.UBLK_F_USER_RECOVERY)) throw new UblkError('EINVAL', `device ${id} was not created with recovery (-r 1)`);
      const mode = modeOfFlags(info.flags);
      checkMode(mode, info.flags, local.target);
      const params = await ctrl.getParams(id);
      checkSameDevice(id, info, params, local.target, opts.serverFlags);
      await startRecovery(ctrl, id, opts.signal);
      const opt2 = { ...opts, queues: info.nrHwQueues, depth: info.queueDepth, autoBufRegFallback: opts.autoBufRegFallback };
      return await attach(ctrl, info, mode, local, opt2, async () => params, () => ctrl.endUserRecovery(id, process.pid));
    } catch (err) {
      ctrl.close();
      throw err;
    }
  }

  private closeFd(): void {
    if (this.ublkcFd >= 0) {
      fs.closeSync(this.ublkcFd);
      this.ublkcFd = -1;
    }
    this.emit('closed');
  }

  async refreshInfo(): Promise<DevInfo> {
    this.info = await this.ctrl.getDevInfo(this.id);
    return this.info;
  }

  /** STOP_DEV: the kernel drains in-flight IO, aborts the slots, and the serving threads end. */
  async stop(): Promise<void> {
    if (!this.stopped) {
      this.stopped = true;
      await this.ctrl.stopDev(this.id);
    }
    const ms = lifecycleTimeoutMs();
    if (!(await within(this.closed, ms))) throw new UblkError('ETIMEDOUT', `device ${this.id}: the serving threads did not end within ${ms / 1000} s of STOP_DEV`);
  }

  /**
   * Stops (if needed) and deletes the device; /dev/ublkcN is gone when this resolves. Serving
   * threads that do not end after the stop are ended by force, so that DEL_DEV can finish.
   */
  async delete(): Promise<void> {
    try {
      await this.stop().catch(async (err: UblkError) => {
        if (err.code !== 'ETIMEDOUT') throw err;
        await this.crew.abort();
      });
      await this.closed;
      await this.ctrl.delDev(this.id);
    } finally {
      this.ctrl.close();
    }
  }

  /**
   * Writes back what the block device's page cache holds and sends a FLUSH through it, so that
   * the target makes every acknowledged write durable; bounded. Used before a requested stop.
   */
  async sync(): Promise<void> {
    const ms = lifecycleTimeoutMs();
    const h = await fs.promises.open(this.blockPath, 'r');
    // Closed when the fsync ends, not awaited past the bound: FileHandle.close() waits for a
    // pending fsync, so a stuck backend would hang the shutdown that the bound is there to end.
    const synced = h.sync().finally(() => h.close());
    if (!(await within(synced, ms))) {
      synced.catch(() => {});
      throw new UblkError('ETIMEDOUT', `${this.blockPath}: fsync did not finish within ${ms / 1000} s`);
    }
  }
}

/** Whether `p` settles (resolves) within `ms`; a rejection is passed on. */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** DEL_DEV of a device whose start-up failed, on a fresh control channel; errors are dropped. */
async function deleteQuietly(devId: number): Promise<void> {
  let c: Control | undefined;
  try {
    c = new Control();
    await c.delDev(devId);
  } catch { /* the start-up error is the one to report */ } finally {
    c?.close();
  }
}

interface LocalTarget {
  target: Target;
  spec?: TargetSpec;
  config?: unknown;
}

/** The local instance serves in-thread, or only describes the device when workers serve. */
async function localTarget(opts: DeviceOptions): Promise<LocalTarget> {
  if (!isSpec(opts.target)) return { target: checkTarget(opts.target as Target) };
  const spec = opts.target;
  const mod = await loadTargetModule(spec.module);
  const config = mod.prepare ? await mod.prepare(spec.config) : spec.config;
  return { target: checkTarget(await mod.create(config)), spec, config };
}

function checkMode(mode: DataMode, features: number, target: Target): void {
  if (MODE_FLAGS[mode] && !(features & MODE_FLAGS[mode])) throw new UblkError('ENOTSUP', `data mode '${mode}' needs ${FEATURE_NEEDS[mode]}, which this kernel lacks`);
  if (needsTrust(mode) && !hasSysAdmin()) throw new UblkError('EPERM', `data mode '${mode}' lends client pages to the server and needs CAP_SYS_ADMIN: run as root or use mode 'copy'`);
  if (needsRoute(mode) && typeof target.route !== 'function') throw new UblkError('EINVAL', `data mode '${mode}' needs a pass-through target (with route()); this target must see the bytes: use 'copy' or 'user-copy'`);
}

function featureNames(bits: number): string {
  return U.UBLK_F_NAMES.filter((_, i) => bits & (1 << i)).join(', ') || `0x${bits.toString(16)}`;
}

/**
 * Opens /dev/ublkcN, applies params, starts the serving threads (every slot FETCHed), then runs
 * `go` (START_DEV or END_USER_RECOVERY). On failure every thread is ended and ublkc closed first:
 * its mappings and ring registrations pin the device, and a DEL_DEV before that waits forever. No
 * STOP here: a failed recover must leave the device recoverable (the release path re-quiesces it).
 */
async function attach(
  ctrl: Control, info: DevInfo, mode: DataMode, local: LocalTarget, opts: DeviceOptions,
  setup: () => Promise<Params>, go: () => Promise<number>,
): Promise<Device> {
  const devId = info.devId;
  const fd = await openRetry(`/dev/ublkc${devId}`, 3000);
  const crew = new Crew(opts.signal);
  try {
    const params = await crew.race(setup());
    const engineCfg: EngineBase = {
      ublkcFd: fd, queueDepth: info.queueDepth, maxIoBufBytes: info.maxIoBufBytes, mode,
      noFixedFd: opts.noFixedFd, autoBufRegFallback: opts.autoBufRegFallback, dieDuringFetch: opts.dieDuringFetch,
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
          crew.serveInWorkers(local.spec!, local.config, engineCfg, groups.slice(1), 1, cpus.slice(1)),
        ]);
        for (const r of both) if (r.status === 'rejected') throw r.reason;
      } else {
        await local.target.close?.();
        await crew.serveInWorkers(local.spec!, local.config, engineCfg, groups, 0, cpus);
      }
    }
    await crew.race(go());
    if (opts.shmem) await crew.race(registerShmem(ctrl, devId, opts.shmem, crew.done));
    const live = await crew.race(ctrl.getDevInfo(devId));
    crew.started();
    return new Device(ctrl, live, params, mode, fd, crew);
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
