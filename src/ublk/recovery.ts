// Recovery checks and START_USER_RECOVERY: what `recover` verifies before it touches the device.
import { type Control, lifecycleTimeoutMs } from './control.js';
import type { Target } from '../target/types.js';
import type { DevInfo, Params } from '../uapi/structs.js';
import { UblkError } from '../errors.js';

/** START_USER_RECOVERY, retried while the old server is still releasing /dev/ublkcN (bounded). */
export async function startRecovery(ctrl: Control, id: number, signal?: AbortSignal): Promise<void> {
  const ms = lifecycleTimeoutMs();
  const deadline = Date.now() + ms;
  for (;;) {
    signal?.throwIfAborted();
    try {
      await ctrl.startUserRecovery(id);
      return;
    } catch (err) {
      // Linux 6.12 (not 7.x) refuses a second START after an attempt whose server fetched nothing.
      if ((err as UblkError).code === 'EINVAL') throw new UblkError('EINVAL', `${(err as Error).message}: this kernel refuses to restart a recovery whose previous attempt failed before serving; the device stays QUIESCED and can only be deleted`);
      if ((err as UblkError).code !== 'EBUSY') throw err;
      if (Date.now() > deadline) throw new UblkError('EBUSY', `device ${id}: START_USER_RECOVERY still busy after ${ms / 1000} s: the old server has not released /dev/ublkc${id}, or the device is not QUIESCED / FAIL_IO`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/**
 * Refuses a recovery whose target would serve other data than the device had: the kernel keeps
 * the geometry (size, block size) and the fingerprint `add` stored in ublksrv_flags (0: none).
 * Checked before START_USER_RECOVERY, so a refused recover leaves the device as it was.
 */
export function checkSameDevice(id: number, info: DevInfo, params: Params, target: Target, serverFlags: bigint | undefined): void {
  const size = params.basic.devSectors * 512;
  if (target.size !== size) throw new UblkError('EINVAL', `device ${id} has ${size} bytes but this target has ${target.size}: recover with the files and options of its add`);
  const shift = target.limits?.logicalBlockShift ?? 9;
  if (shift !== params.basic.logicalBsShift) throw new UblkError('EINVAL', `device ${id} has ${1 << params.basic.logicalBsShift}-byte blocks but this target has ${1 << shift}: recover with the options of its add`);
  if (serverFlags !== undefined && info.ublksrvFlags !== 0n && info.ublksrvFlags !== serverFlags) {
    throw new UblkError('EINVAL', `device ${id} was added with another target configuration (type, files, their order or layout options differ): recover with the files and options of its add`);
  }
}
