// ublkit features: the kernel's ublk feature bits that ublkit implements.
import * as U from '../../uapi/ublk.js';
import { out } from '../out.js';
import { formatFeatures } from '../listing.js';
import { withControl } from '../session.js';

export const usage = `usage: ublkit features
Print the kernel's ublk feature bits that ublkit implements.
`;

/** Feature bits ublkit implements; `features` prints the kernel's bits masked by these. */
export const IMPLEMENTED_FEATURES =
  U.UBLK_F_SUPPORT_ZERO_COPY | U.UBLK_F_URING_CMD_COMP_IN_TASK | U.UBLK_F_NEED_GET_DATA |
  U.UBLK_F_CMD_IOCTL_ENCODE | U.UBLK_F_USER_COPY | U.UBLK_F_UPDATE_SIZE | U.UBLK_F_AUTO_BUF_REG |
  U.UBLK_F_PER_IO_DAEMON | U.UBLK_F_BUF_REG_OFF_DAEMON | U.UBLK_F_SAFE_STOP_DEV |
  U.UBLK_F_USER_RECOVERY | U.UBLK_F_USER_RECOVERY_REISSUE | U.UBLK_F_USER_RECOVERY_FAIL_IO |
  U.UBLK_F_QUIESCE | U.UBLK_F_NO_AUTO_PART_SCAN | U.UBLK_F_BATCH_IO | U.UBLK_F_SHMEM_ZC | U.UBLK_F_INTEGRITY |
  U.UBLK_F_IO_DESC_SIZE | U.UBLK_F_ZONED;

export function run(): Promise<number> {
  return withControl(async (c) => {
    out(formatFeatures((await c.getFeatures()) & IMPLEMENTED_FEATURES));
    return 0;
  });
}
