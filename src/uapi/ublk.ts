// ublk kernel ABI constants (Linux 7.3), written from shared/spec/ublk-uapi.md; kernel spellings kept.

// Control commands: _IOR/_IOWR('u', nr, struct ublksrv_ctrl_cmd /* 32 bytes */).
export const UBLK_U_CMD_GET_QUEUE_AFFINITY = 0x80207501;
export const UBLK_U_CMD_GET_DEV_INFO = 0x80207502;
export const UBLK_U_CMD_ADD_DEV = 0xc0207504;
export const UBLK_U_CMD_DEL_DEV = 0xc0207505;
export const UBLK_U_CMD_START_DEV = 0xc0207506;
export const UBLK_U_CMD_STOP_DEV = 0xc0207507;
export const UBLK_U_CMD_SET_PARAMS = 0xc0207508;
export const UBLK_U_CMD_GET_PARAMS = 0x80207509;
export const UBLK_U_CMD_START_USER_RECOVERY = 0xc0207510;
export const UBLK_U_CMD_END_USER_RECOVERY = 0xc0207511;
export const UBLK_U_CMD_GET_DEV_INFO2 = 0x80207512;
export const UBLK_U_CMD_GET_FEATURES = 0x80207513;
export const UBLK_U_CMD_DEL_DEV_ASYNC = 0x80207514;
export const UBLK_U_CMD_UPDATE_SIZE = 0xc0207515;
export const UBLK_U_CMD_QUIESCE_DEV = 0xc0207516;
export const UBLK_U_CMD_TRY_STOP_DEV = 0xc0207517;
export const UBLK_U_CMD_REG_BUF = 0xc0207518;
export const UBLK_U_CMD_UNREG_BUF = 0xc0207519;

// I/O commands: _IOWR('u', nr, struct ublksrv_io_cmd /* 16 bytes */).
export const UBLK_U_IO_FETCH_REQ = 0xc0107520;
export const UBLK_U_IO_COMMIT_AND_FETCH_REQ = 0xc0107521;
export const UBLK_U_IO_NEED_GET_DATA = 0xc0107522;
export const UBLK_U_IO_REGISTER_IO_BUF = 0xc0107523;
export const UBLK_U_IO_UNREGISTER_IO_BUF = 0xc0107524;
export const UBLK_U_IO_PREP_IO_CMDS = 0xc0107525;
export const UBLK_U_IO_COMMIT_IO_CMDS = 0xc0107526;
export const UBLK_U_IO_FETCH_IO_CMDS = 0xc0107527;

// Feature flags (ublksrv_ctrl_dev_info.flags). Bits above 31 do not exist yet, so numbers are safe.
export const UBLK_F_SUPPORT_ZERO_COPY = 1 << 0;
export const UBLK_F_URING_CMD_COMP_IN_TASK = 1 << 1;
export const UBLK_F_NEED_GET_DATA = 1 << 2;
export const UBLK_F_USER_RECOVERY = 1 << 3;
export const UBLK_F_USER_RECOVERY_REISSUE = 1 << 4;
export const UBLK_F_UNPRIVILEGED_DEV = 1 << 5;
export const UBLK_F_CMD_IOCTL_ENCODE = 1 << 6;
export const UBLK_F_USER_COPY = 1 << 7;
export const UBLK_F_ZONED = 1 << 8;
export const UBLK_F_USER_RECOVERY_FAIL_IO = 1 << 9;
export const UBLK_F_UPDATE_SIZE = 1 << 10;
export const UBLK_F_AUTO_BUF_REG = 1 << 11;
export const UBLK_F_QUIESCE = 1 << 12;
export const UBLK_F_PER_IO_DAEMON = 1 << 13;
export const UBLK_F_BUF_REG_OFF_DAEMON = 1 << 14;
export const UBLK_F_BATCH_IO = 1 << 15;
export const UBLK_F_INTEGRITY = 1 << 16;
export const UBLK_F_SAFE_STOP_DEV = 1 << 17;
export const UBLK_F_NO_AUTO_PART_SCAN = 1 << 18;
export const UBLK_F_SHMEM_ZC = 1 << 19;
/** The descriptor slot size is ublksrv_ctrl_dev_info.io_desc_size instead of 24 (Linux 7.3). */
export const UBLK_F_IO_DESC_SIZE = 1 << 20;

/** Names of feature bits 0..20 in bit order, as `kublk features` prints them. */
export const UBLK_F_NAMES = [
  'UBLK_F_SUPPORT_ZERO_COPY', 'UBLK_F_URING_CMD_COMP_IN_TASK', 'UBLK_F_NEED_GET_DATA',
  'UBLK_F_USER_RECOVERY', 'UBLK_F_USER_RECOVERY_REISSUE', 'UBLK_F_UNPRIVILEGED_DEV',
  'UBLK_F_CMD_IOCTL_ENCODE', 'UBLK_F_USER_COPY', 'UBLK_F_ZONED', 'UBLK_F_USER_RECOVERY_FAIL_IO',
  'UBLK_F_UPDATE_SIZE', 'UBLK_F_AUTO_BUF_REG', 'UBLK_F_QUIESCE', 'UBLK_F_PER_IO_DAEMON',
  'UBLK_F_BUF_REG_OFF_DAEMON', 'UBLK_F_BATCH_IO', 'UBLK_F_INTEGRITY', 'UBLK_F_SAFE_STOP_DEV',
  'UBLK_F_NO_AUTO_PART_SCAN', 'UBLK_F_SHMEM_ZC', 'UBLK_F_IO_DESC_SIZE',
] as const;

// Device states.
export const UBLK_S_DEV_DEAD = 0;
export const UBLK_S_DEV_LIVE = 1;
export const UBLK_S_DEV_QUIESCED = 2;
export const UBLK_S_DEV_FAIL_IO = 3;

// I/O results carried in FETCH/COMMIT CQEs.
export const UBLK_IO_RES_OK = 0;
export const UBLK_IO_RES_NEED_GET_DATA = 1;
export const UBLK_IO_RES_ABORT = -19;

// Descriptor ops and flags (flags are absolute bits of op_flags).
export const UBLK_IO_OP_READ = 0;
export const UBLK_IO_OP_WRITE = 1;
export const UBLK_IO_OP_FLUSH = 2;
export const UBLK_IO_OP_DISCARD = 3;
export const UBLK_IO_OP_WRITE_SAME = 4;
export const UBLK_IO_OP_WRITE_ZEROES = 5;
export const UBLK_IO_OP_ZONE_OPEN = 10;
export const UBLK_IO_OP_ZONE_CLOSE = 11;
export const UBLK_IO_OP_ZONE_FINISH = 12;
export const UBLK_IO_OP_ZONE_APPEND = 13;
export const UBLK_IO_OP_ZONE_RESET_ALL = 14;
export const UBLK_IO_OP_ZONE_RESET = 15;
export const UBLK_IO_OP_REPORT_ZONES = 18;
export const UBLK_IO_F_FAILFAST_DEV = 1 << 8;
export const UBLK_IO_F_FAILFAST_TRANSPORT = 1 << 9;
export const UBLK_IO_F_FAILFAST_DRIVER = 1 << 10;
export const UBLK_IO_F_META = 1 << 11;
export const UBLK_IO_F_FUA = 1 << 13;
export const UBLK_IO_F_NOUNMAP = 1 << 15;
export const UBLK_IO_F_SWAP = 1 << 16;
export const UBLK_IO_F_NEED_REG_BUF = 1 << 17;
export const UBLK_IO_F_INTEGRITY = 1 << 18;
export const UBLK_IO_F_SHMEM_ZC = 1 << 19;

// Parameter types.
export const UBLK_PARAM_TYPE_BASIC = 1 << 0;
export const UBLK_PARAM_TYPE_DISCARD = 1 << 1;
export const UBLK_PARAM_TYPE_DEVT = 1 << 2;
export const UBLK_PARAM_TYPE_ZONED = 1 << 3;
export const UBLK_PARAM_TYPE_DMA_ALIGN = 1 << 4;
export const UBLK_PARAM_TYPE_SEGMENT = 1 << 5;
export const UBLK_PARAM_TYPE_INTEGRITY = 1 << 6;
export const UBLK_ATTR_READ_ONLY = 1 << 0;
export const UBLK_ATTR_ROTATIONAL = 1 << 1;
export const UBLK_ATTR_VOLATILE_CACHE = 1 << 2;
export const UBLK_ATTR_FUA = 1 << 3;

// Limits and mmap/user-copy geometry.
export const UBLK_MAX_QUEUE_DEPTH = 4096;
export const UBLK_MAX_NR_QUEUES = 4096;
/** The largest negotiable descriptor slot; it must also be a multiple of 8 (the struct's alignment). */
export const UBLK_MAX_IO_DESC_SIZE = 256;
export const UBLKSRV_CMD_BUF_OFFSET = 0;
export const UBLKSRV_IO_BUF_OFFSET = 0x80000000;
export const UBLK_IO_BUF_BITS = 25;
export const UBLK_TAG_OFF = 25;
export const UBLK_TAG_BITS = 16;
export const UBLK_QID_OFF = 41;
export const UBLK_QID_BITS = 12;
export const UBLK_INTEGRITY_FLAG_OFF = 62;
export const UBLK_FEATURES_LEN = 8;
export const UBLK_MIN_SEGMENT_SIZE = 4096;
export const UBLK_AUTO_BUF_REG_FALLBACK = 1;
export const UBLK_SHMEM_BUF_READ_ONLY = 1;

// Struct sizes.
export const SIZEOF_UBLKSRV_CTRL_CMD = 32;
export const SIZEOF_UBLKSRV_CTRL_DEV_INFO = 64;
export const SIZEOF_UBLK_PARAMS = 152;
export const SIZEOF_UBLKSRV_IO_DESC = 24;
export const SIZEOF_UBLKSRV_IO_CMD = 16;

// Batch IO (UBLK_F_BATCH_IO): struct ublk_batch_io flags and element layout.
export const UBLK_BATCH_F_HAS_ZONE_LBA = 1 << 0;
export const UBLK_BATCH_F_HAS_BUF_ADDR = 1 << 1;
export const UBLK_BATCH_F_AUTO_BUF_REG_FALLBACK = 1 << 2;
export const SIZEOF_UBLK_ELEM_HEADER = 8;
