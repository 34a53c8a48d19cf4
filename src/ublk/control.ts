// Every control command on /dev/ublk-control, sent as URING_CMD on an SQE128 ring, async.
import * as fs from 'node:fs';
import * as os from 'node:os';
import { native, addressOf } from '../native.js';
import { Ring } from '../uring/ring.js';
import { prepUringCmd } from '../uring/sqe.js';
import * as IO from '../uapi/io-uring.js';
import * as U from '../uapi/ublk.js';
import {
  type DevInfo, type Params, encodeCtrlCmd, encodeDevInfo, decodeDevInfo, encodeParams, decodeParams,
  encodeShmemBufReg, encodeParamsLen, getU64, SHMEM_BUF_REG,
} from '../uapi/structs.js';
import { UblkError, errnoName } from '../errors.js';

export const CONTROL_PATH = '/dev/ublk-control';

/** The oldest kernel ublkit runs on: GET_FEATURES (and ioctl-encoded commands) came in 6.5. */
export const OLDEST_KERNEL = '6.5';

const DEFAULT_TIMEOUT_MS = 30_000;

/**
 * The bound on every control command and every lifecycle wait (ms): UBLKIT_TIMEOUT_MS, else 30 s.
 * START_DEV can wedge in the kernel (it waits for every slot's FETCH), DEL_DEV waits for whoever
 * holds /dev/ublkcN: past the bound the caller gets an error naming what is stuck, not a hang.
 */
export function lifecycleTimeoutMs(): number {
  const v = Number(process.env.UBLKIT_TIMEOUT_MS);
  return Number.isFinite(v) && v > 0 ? v : DEFAULT_TIMEOUT_MS;
}

/** What a command that got no answer is waiting for, for the timeout message. */
const WAITS_FOR: Record<string, string> = {
  START_DEV: ': it waits until every queue slot is fetched by the server',
  END_USER_RECOVERY: ': it waits until every queue slot is fetched by the new server',
  STOP_DEV: ': it waits for in-flight IO, which the server must complete',
  DEL_DEV: ': it waits until every process has closed /dev/ublkcN',
};

/** The GET_FEATURES failure of a kernel too old to have it, as one actionable line. */
export function featuresError(err: UblkError, release: string): UblkError {
  if (err.code === 'EPERM' || err.code === 'EACCES' || err.code === 'EINTR' || err.code === 'ETIMEDOUT') return err;
  return new UblkError('ENOTSUP', `this kernel's ublk driver has no GET_FEATURES (${err.code}): ublkit needs Linux ${OLDEST_KERNEL} or newer, this is ${release}`);
}

/** Opens /dev/ublk-control, turning the usual failures into one actionable message. */
export function openControl(path = CONTROL_PATH): number {
  try {
    return fs.openSync(path, fs.constants.O_RDWR);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    if (code === 'ENOENT' || code === 'ENXIO' || code === 'ENODEV') {
      throw new UblkError('ENODEV', `${path} not found: load the ublk driver with 'modprobe ublk_drv' (Linux 6.0+ with CONFIG_BLK_DEV_UBLK)`);
    }
    if (code === 'EACCES' || code === 'EPERM') {
      throw new UblkError('EPERM', `permission denied opening ${path}: run as root (sudo)`);
    }
    throw new UblkError(code, `cannot open ${path}: ${code}`);
  }
}

interface CmdArgs {
  buf?: ArrayBuffer;
  len?: number;
  data0?: number | bigint;
  queueId?: number;
  devPathLen?: number;
}

export class Control {
  private readonly fd: number;
  private readonly ring: Ring;

  constructor(path = CONTROL_PATH) {
    this.fd = openControl(path);
    try {
      this.ring = new Ring({ entries: 32, flags: IO.IORING_SETUP_SQE128 });
    } catch (err) {
      fs.closeSync(this.fd);
      throw err;
    }
    // The poll holds the event loop only while a command is in flight.
    this.ring.watch(() => this.ring.reap(() => {}), true);
  }

  close(): void {
    this.ring.close();
    fs.closeSync(this.fd);
  }

  /** Sends one command and resolves with the CQE result (>= 0) or rejects with a UblkError. */
  async cmd(op: number, devId: number, name: string, a: CmdArgs = {}): Promise<number> {
    const o = this.ring.get();
    const v = this.ring.sqes;
    prepUringCmd(v, o, this.fd, op);
    encodeCtrlCmd(v, o + IO.SQE.cmd, {
      devId,
      queueId: a.queueId ?? 0xffff,
      len: a.len ?? a.buf?.byteLength ?? 0,
      addr: a.buf ? addressOf(a.buf) : 0,
      data0: a.data0 ?? 0,
      devPathLen: a.devPathLen ?? 0,
    });
    // The ring keeps the payload referenced until the kernel is done with it (also past a timeout).
    const done = this.ring.track(o, a.buf);
    const sub = this.ring.submit(0);
    if (sub < 0) throw UblkError.fromResult(sub, `${name}: io_uring_enter`);
    const ms = lifecycleTimeoutMs() + (op === U.UBLK_U_CMD_QUIESCE_DEV ? Number(a.data0 ?? 0) : 0);
    let timer: NodeJS.Timeout | undefined;
    const res = await Promise.race([done, new Promise<null>((r) => (timer = setTimeout(() => r(null), ms)))]);
    clearTimeout(timer);
    if (res === null) {
      throw new UblkError('ETIMEDOUT', `${name} (dev ${devId}): no answer from the kernel after ${ms / 1000} s${WAITS_FOR[name] ?? ''}`);
    }
    if (res < 0) throw new UblkError(errnoName(res), `${name} (dev ${devId}): ${errnoName(res)}`);
    return res;
  }

  async getFeatures(): Promise<number> {
    const buf = native().alloc(8, 8);
    await this.cmd(U.UBLK_U_CMD_GET_FEATURES, 0xffffffff, 'GET_FEATURES', { buf }).catch((e: UblkError) => {
      throw featuresError(e, os.release());
    });
    return getU64(new DataView(buf), 0);
  }

  /** ADD_DEV; returns the kernel's dev_info, whose flags are the negotiation result. */
  async addDev(info: Partial<DevInfo>): Promise<DevInfo> {
    const buf = native().alloc(U.SIZEOF_UBLKSRV_CTRL_DEV_INFO, 8);
    const v = new DataView(buf);
    encodeDevInfo(v, 0, info);
    await this.cmd(U.UBLK_U_CMD_ADD_DEV, info.devId ?? -1, 'ADD_DEV', { buf });
    return decodeDevInfo(v, 0);
  }

  async getDevInfo(devId: number): Promise<DevInfo> {
    const buf = native().alloc(U.SIZEOF_UBLKSRV_CTRL_DEV_INFO, 8);
    await this.cmd(U.UBLK_U_CMD_GET_DEV_INFO, devId, 'GET_DEV_INFO', { buf });
    return decodeDevInfo(new DataView(buf), 0);
  }

  /** GET_DEV_INFO2: the same info, with the /dev/ublkcN path prefix the kernel checks permissions on. */
  async getDevInfo2(devId: number): Promise<DevInfo> {
    const path = Buffer.from(`/dev/ublkc${devId}\0`);
    const buf = native().alloc(path.length + U.SIZEOF_UBLKSRV_CTRL_DEV_INFO, 8);
    new Uint8Array(buf).set(path);
    await this.cmd(U.UBLK_U_CMD_GET_DEV_INFO2, devId, 'GET_DEV_INFO2', { buf, devPathLen: path.length });
    return decodeDevInfo(new DataView(buf), path.length);
  }

  /** SET_PARAMS; `types` overrides the types word (default: the sub-structs `p` has). */
  async setParams(devId: number, p: Params, types?: number): Promise<void> {
    const buf = native().alloc(U.SIZEOF_UBLK_PARAMS, 8);
    encodeParams(new DataView(buf), 0, p, types);
    await this.cmd(U.UBLK_U_CMD_SET_PARAMS, devId, 'SET_PARAMS', { buf });
  }

  async getParams(devId: number): Promise<Params> {
    const buf = native().alloc(U.SIZEOF_UBLK_PARAMS, 8);
    const v = new DataView(buf);
    encodeParamsLen(v, 0);
    await this.cmd(U.UBLK_U_CMD_GET_PARAMS, devId, 'GET_PARAMS', { buf });
    return decodeParams(v, 0);
  }

  /** CPUs that blk-mq maps to queue `qid`. */
  async getQueueAffinity(devId: number, qid: number): Promise<number[]> {
    const len = 128;
    const buf = native().alloc(len, 8);
    await this.cmd(U.UBLK_U_CMD_GET_QUEUE_AFFINITY, devId, 'GET_QUEUE_AFFINITY', { buf, data0: qid });
    const bytes = new Uint8Array(buf);
    const cpus: number[] = [];
    for (let i = 0; i < len * 8; i++) if (bytes[i >> 3] & (1 << (i & 7))) cpus.push(i);
    return cpus;
  }

  startDev(devId: number, pid: number): Promise<number> {
    return this.cmd(U.UBLK_U_CMD_START_DEV, devId, 'START_DEV', { data0: pid });
  }
  stopDev(devId: number): Promise<number> {
    return this.cmd(U.UBLK_U_CMD_STOP_DEV, devId, 'STOP_DEV');
  }
  tryStopDev(devId: number): Promise<number> {
    return this.cmd(U.UBLK_U_CMD_TRY_STOP_DEV, devId, 'TRY_STOP_DEV');
  }
  delDev(devId: number): Promise<number> {
    return this.cmd(U.UBLK_U_CMD_DEL_DEV, devId, 'DEL_DEV');
  }
  startUserRecovery(devId: number): Promise<number> {
    return this.cmd(U.UBLK_U_CMD_START_USER_RECOVERY, devId, 'START_USER_RECOVERY');
  }
  endUserRecovery(devId: number, pid: number): Promise<number> {
    return this.cmd(U.UBLK_U_CMD_END_USER_RECOVERY, devId, 'END_USER_RECOVERY', { data0: pid });
  }
  updateSize(devId: number, sectors: number): Promise<number> {
    return this.cmd(U.UBLK_U_CMD_UPDATE_SIZE, devId, 'UPDATE_SIZE', { data0: sectors });
  }
  quiesce(devId: number, timeoutMs: number): Promise<number> {
    return this.cmd(U.UBLK_U_CMD_QUIESCE_DEV, devId, 'QUIESCE_DEV', { data0: timeoutMs });
  }
  /** REG_BUF of a shared mapping; resolves with the kernel-chosen buffer index. */
  regBuf(devId: number, addr: number, len: number, flags: number): Promise<number> {
    const buf = native().alloc(SHMEM_BUF_REG.size, 8);
    encodeShmemBufReg(new DataView(buf), 0, addr, len, flags);
    return this.cmd(U.UBLK_U_CMD_REG_BUF, devId, 'REG_BUF', { buf });
  }
}
