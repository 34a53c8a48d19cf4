// ublkit set_params: ADD_DEV, one SET_PARAMS with the given values, DEL_DEV (no START): probes the
// kernel's checks of ublk_params as kublk's set_params does.
import * as U from '../../uapi/ublk.js';
import type { Params } from '../../uapi/structs.js';
import { UblkError } from '../../errors.js';
import type { CliArgs } from '../args.js';
import { out } from '../out.js';
import { withControl } from '../session.js';

export const usage = `usage: ublkit set_params [-n ID] [-q N] [-d DEPTH] [-u] [--zoned] [--param_types basic[,zoned]|none]
       [--logical_bs_shift N] [--physical_bs_shift N] [--io_min_shift N] [--io_opt_shift N]
       [--max_sectors N] [--chunk_sectors N] [--dev_sectors N]
       [--max_zone_append_sectors N] [--max_open_zones N] [--max_active_zones N]
Add a device (not started), send SET_PARAMS, print "SET_PARAMS returned R" and delete the device.
Exit status: 0 if the kernel accepted the params, else its errno (as kublk: 256 - errno).
Defaults: basic params of a 1 MiB device (512-byte logical, 4 KiB physical blocks, max_sectors
2048, chunk_sectors 128: sixteen 64 KiB zones) and a zone append limit of 8 sectors.
`;

// kublk's defaults: a small device that is valid as basic and, with --param_types basic,zoned, as zoned.
const ZONE_SECTORS = 128;
const NR_ZONES = 16;
const MAX_IO_BYTES = 1 << 20;

/** --param_types: comma-separated basic, zoned, none (none adds nothing). */
export function parseParamTypes(s: string): number {
  let types = 0;
  for (const t of s.split(',')) {
    if (t === 'basic') types |= U.UBLK_PARAM_TYPE_BASIC;
    else if (t === 'zoned') types |= U.UBLK_PARAM_TYPE_ZONED;
    else if (t !== 'none') throw new UblkError('EINVAL', `--param_types ${s}: use basic, zoned (comma-separated) or none`);
  }
  return types;
}

/** The params and types word set_params sends for a command line. */
export function setParamsRequest(a: CliArgs): { params: Params; types: number } {
  const types = a.paramTypes === undefined ? U.UBLK_PARAM_TYPE_BASIC : parseParamTypes(a.paramTypes);
  const params: Params = {
    basic: {
      attrs: 0,
      logicalBsShift: a.logicalBsShift ?? 9,
      physicalBsShift: a.physicalBsShift ?? 12,
      ioMinShift: a.ioMinShift ?? 9,
      ioOptShift: a.ioOptShift ?? 12,
      maxSectors: a.maxSectors ?? MAX_IO_BYTES >> 9,
      chunkSectors: a.chunkSectors ?? ZONE_SECTORS,
      devSectors: a.devSectors ?? ZONE_SECTORS * NR_ZONES,
      virtBoundaryMask: 0,
    },
    zoned: { maxOpenZones: a.maxOpenZones ?? 0, maxActiveZones: a.maxActiveZones ?? 0, maxZoneAppendSectors: a.maxZoneAppendSectors ?? 8 },
  };
  return { params, types };
}

/** The device's flags: the data mode options and --zoned (zoned ublk needs user copy or zero copy). */
function deviceFlags(a: CliArgs): number {
  let f = 0;
  if (a.userCopy) f |= U.UBLK_F_USER_COPY;
  if (a.zeroCopy) f |= U.UBLK_F_SUPPORT_ZERO_COPY;
  if (a.autoZc) f |= U.UBLK_F_AUTO_BUF_REG;
  if (a.getData) f |= U.UBLK_F_NEED_GET_DATA;
  if (a.zoned) f |= U.UBLK_F_ZONED;
  if (a.ioDescSize !== undefined) f |= U.UBLK_F_IO_DESC_SIZE;
  return f;
}

export function run(a: CliArgs): Promise<number> {
  const req = setParamsRequest(a);
  return withControl(async (c) => {
    if (!((await c.getFeatures()) & U.UBLK_F_CMD_IOCTL_ENCODE)) throw new UblkError('ENOTSUP', 'this kernel\'s ublk lacks ioctl-encoded commands');
    const info = await c.addDev({
      devId: a.number, nrHwQueues: a.queues ?? 2, queueDepth: a.depth ?? 128, maxIoBufBytes: MAX_IO_BYTES,
      flags: deviceFlags(a), ioDescSize: a.ioDescSize,
    });
    let ret = 0;
    try {
      await c.setParams(info.devId, req.params, req.types);
    } catch (e) {
      if (!(e instanceof UblkError) || e.code === 'ETIMEDOUT') {
        await c.delDev(info.devId).catch(() => {});
        throw e;
      }
      ret = -e.errno;
    }
    out(`SET_PARAMS returned ${ret}\n`);
    // The device goes whatever SET_PARAMS said; its own error matters only if SET_PARAMS passed.
    await c.delDev(info.devId).catch((e: Error) => {
      if (ret === 0) throw e;
    });
    return ret;
  });
}
