// Device lifecycle: ADD, params, serving threads, START, STOP, DEL, with cleanup on every failure.
import * as fs from 'node:fs';
import { EventEmitter } from 'node:events';
import { Control, lifecycleTimeoutMs } from './control.js';
import type { Crew } from './crew.js';
import { native } from '../native.js';
import { buildParams, zonedFlag } from './params.js';
import { type DataMode, MODE_FLAGS, chooseMode, modeOfFlags } from './modes.js';
import { type DevInfo, type Params, ioDescSizeProblem } from '../uapi/structs.js';
import * as U from '../uapi/ublk.js';
import { UblkError } from '../errors.js';
import { hasSysAdmin } from './privilege.js';
import { startRecovery, checkSameDevice } from './recovery.js';
import type { DeviceOptions } from './device-options.js';
import { attach, checkMode, deleteQuietly, featureNames, localTarget } from './startup.js';
import { readStats, type DeviceStats } from './stats.js';
import type { Target, TargetSpec } from '../target/types.js';

export { hasSysAdmin };
export type { DeviceOptions };
export type { DeviceStats, OpStats, StatOp } from './stats.js';

/** What 'error' listeners receive: `fatal` when the server has let go of the device. */
export type DeviceError = Error & { fatal?: boolean };

const DEFAULT_MAX_IO = 1 << 20;

export class Device extends EventEmitter {
  readonly id: number;
  readonly mode: DataMode;
  readonly info: DevInfo;
  readonly params: Params;
  /** Resolves when every serving thread has finished (device stopped or server aborted). */
  readonly closed: Promise<void>;
  private readonly ctrl: Control;
  private readonly crew: Crew;
  private ublkcFd: number;
  private stopped = false;
  private readonly description: string;
  private readonly startedAt = Date.now();

  /** @internal Use Device.create or Device.recover. */
  constructor(ctrl: Control, info: DevInfo, params: Params, mode: DataMode, fd: number, crew: Crew, description = 'object') {
    super();
    this.ctrl = ctrl;
    this.info = info;
    this.id = info.devId;
    this.params = params;
    this.mode = mode;
    this.ublkcFd = fd;
    this.crew = crew;
    this.description = description;
    this.closed = crew.done.finally(() => this.closeFd());
    crew.onDeath = (err) => this.fail(err);
    // An engine error that does not end the device (a refused CPU binding, a failed enter).
    crew.onWarning = (err) => {
      if (this.listenerCount('error') > 0) this.emit('error', err);
      else process.emitWarning(`ublk device ${this.id}: ${err.message}`);
    };
  }

  /**
   * Per-op counts, bytes, errors and latency percentiles (microseconds), in-flight requests per
   * queue, data mode, target and uptime, summed over the serving threads without messaging them.
   */
  stats(): DeviceStats {
    return readStats({
      id: this.id, mode: this.mode, target: this.description, startedAt: this.startedAt,
      nrQueues: this.info.nrHwQueues, buffers: this.crew.statsBuffers,
    });
  }

  /**
   * A serving thread died: its requests are stuck until /dev/ublkcN is released, and STOP_DEV
   * would wait for them forever. So the whole server lets go, as if the process had died: the
   * kernel fails (or, with recovery, requeues) the IO and the device goes DEAD (or QUIESCED).
   */
  private fail(err: DeviceError): void {
    err.fatal = true;
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
    const ioDescBad = opts.ioDescSize === undefined ? undefined : ioDescSizeProblem(opts.ioDescSize);
    if (ioDescBad) throw new UblkError('EINVAL', `ioDescSize ${opts.ioDescSize}: ${ioDescBad}`);
    const local = await localTarget(opts);
    const ctrl = new Control();
    let devId = -1;
    try {
      const features = await ctrl.getFeatures();
      if (!(features & U.UBLK_F_CMD_IOCTL_ENCODE)) throw new UblkError('ENOTSUP', 'this kernel\'s ublk lacks ioctl-encoded commands: Linux 6.2 or newer is needed');
      const zonedAuto = !!local.target.limits?.zoned && (opts.mode ?? 'auto') === 'auto';
      const mode = zonedAuto ? 'user-copy' : chooseMode(opts.mode ?? 'auto', features, typeof local.target.route === 'function');
      checkMode(mode, features, local.target);
      if (opts.rotateAutoBuf && !(mode === 'auto-buf-reg' && (opts.flags ?? 0) & U.UBLK_F_BATCH_IO)) {
        throw new UblkError('EINVAL', 'rotateAutoBuf needs auto buffer registration and batch IO (UBLK_F_BATCH_IO)');
      }
      if (local.target.integrity && mode !== 'user-copy') throw new UblkError('EINVAL', 'integrity metadata needs user copy mode (-u)');
      const want = (opts.flags ?? 0) | (opts.autoBufRegFallback ? U.UBLK_F_SUPPORT_ZERO_COPY : 0) |
        (local.target.integrity ? U.UBLK_F_INTEGRITY : 0) | (opts.ioDescSize !== undefined ? U.UBLK_F_IO_DESC_SIZE : 0) |
        zonedFlag(local.target, mode, features, opts.flags ?? 0);
      const missing = want & ~features;
      const extra = want | ((opts.optionalFlags ?? 0) & features);
      if (missing) throw new UblkError('ENOTSUP', `this kernel lacks ${featureNames(missing)}`);
      const maxIoBufBytes = opts.maxIoBufBytes ?? DEFAULT_MAX_IO;
      const params = buildParams(local.target, maxIoBufBytes);
      const info = await ctrl.addDev({
        devId: opts.id ?? -1, nrHwQueues: queues, queueDepth: depth, maxIoBufBytes, ioDescSize: opts.ioDescSize,
        flags: MODE_FLAGS[mode] | extra, ublksrvFlags: opts.serverFlags ?? 0n,
      });
      devId = info.devId;
      opts.onAdded?.(devId);
      opts.signal?.throwIfAborted();
      if (MODE_FLAGS[mode] && !(info.flags & MODE_FLAGS[mode])) throw new UblkError('ENOTSUP', `the kernel refused data mode '${mode}' at ADD_DEV`);
      const a = await attach(ctrl, info, mode, local, opts, async () => {
        await ctrl.setParams(devId, params);
        return params;
      }, () => ctrl.startDev(devId, process.pid));
      return new Device(ctrl, a.info, a.params, mode, a.fd, a.crew, describe(opts));
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
      const a = await attach(ctrl, info, mode, local, opt2, async () => params, () => ctrl.endUserRecovery(id, process.pid));
      return new Device(ctrl, a.info, a.params, mode, a.fd, a.crew, describe(opts));
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

function describe(opts: DeviceOptions): string {
  if (opts.description) return opts.description;
  const t = opts.target as Target | TargetSpec;
  if (typeof (t as Target).read === 'function') return 'object';
  const spec = t as TargetSpec;
  return [spec.module, ...(spec.filters ?? []).map((f) => f.name)].join(' + ');
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
