// io_uring ABI constants used by ublkit, written from the kernel's io_uring uapi; kernel spellings kept.

export const IORING_OP_NOP = 0;
export const IORING_OP_READV = 1;
export const IORING_OP_WRITEV = 2;
export const IORING_OP_FSYNC = 3;
export const IORING_OP_READ_FIXED = 4;
export const IORING_OP_WRITE_FIXED = 5;
export const IORING_OP_TIMEOUT = 11;
export const IORING_OP_FALLOCATE = 17;
export const IORING_OP_READ = 22;
export const IORING_OP_WRITE = 23;
export const IORING_OP_URING_CMD = 46;
export const IORING_OP_READV_FIXED = 60;
export const IORING_OP_WRITEV_FIXED = 61;

export const IOSQE_FIXED_FILE = 1 << 0;
export const IOSQE_IO_DRAIN = 1 << 1;
export const IOSQE_IO_LINK = 1 << 2;
export const IOSQE_IO_HARDLINK = 1 << 3;
export const IOSQE_ASYNC = 1 << 4;
export const IOSQE_BUFFER_SELECT = 1 << 5;
export const IOSQE_CQE_SKIP_SUCCESS = 1 << 6;

export const IORING_SETUP_IOPOLL = 1 << 0;
export const IORING_SETUP_SQPOLL = 1 << 1;
export const IORING_SETUP_CQSIZE = 1 << 3;
export const IORING_SETUP_CLAMP = 1 << 4;
export const IORING_SETUP_SUBMIT_ALL = 1 << 7;
export const IORING_SETUP_COOP_TASKRUN = 1 << 8;
export const IORING_SETUP_TASKRUN_FLAG = 1 << 9;
export const IORING_SETUP_SQE128 = 1 << 10;
export const IORING_SETUP_CQE32 = 1 << 11;
export const IORING_SETUP_SINGLE_ISSUER = 1 << 12;
export const IORING_SETUP_DEFER_TASKRUN = 1 << 13;

export const IORING_ENTER_GETEVENTS = 1 << 0;

/** sq_ring->flags: task work is pending (rings set up with IORING_SETUP_TASKRUN_FLAG). */
export const IORING_SQ_CQ_OVERFLOW = 1 << 1;
export const IORING_SQ_TASKRUN = 1 << 2;

/** cq_ring->flags: the application may set it to stop eventfd notifications. */
export const IORING_CQ_EVENTFD_DISABLED = 1 << 0;

export const IORING_FSYNC_DATASYNC = 1 << 0;
/** rw_flags of a READ/WRITE SQE: the write is durable when it completes, as pwritev2(RWF_DSYNC). */
export const RWF_DSYNC = 0x2;
export const IORING_NOP_INJECT_RESULT = 1 << 0;
export const IORING_NOP_FIXED_BUFFER = 1 << 3;
export const IORING_URING_CMD_MULTISHOT = 1 << 1;
export const IORING_TIMEOUT_ETIME_SUCCESS = 1 << 5;

export const IORING_CQE_F_BUFFER = 1 << 0;
export const IORING_CQE_F_MORE = 1 << 1;

export const IORING_REGISTER_BUFFERS = 0;
export const IORING_UNREGISTER_BUFFERS = 1;
export const IORING_REGISTER_FILES = 2;
export const IORING_UNREGISTER_FILES = 3;
export const IORING_REGISTER_EVENTFD = 4;
export const IORING_UNREGISTER_EVENTFD = 5;
export const IORING_REGISTER_PROBE = 8;
export const IORING_REGISTER_BUFFERS2 = 15;
export const IORING_REGISTER_RING_FDS = 20;
export const IORING_REGISTER_PBUF_RING = 22;
export const IORING_RSRC_REGISTER_SPARSE = 1 << 0;

// fallocate(2) modes used by discard / write-zeroes.
export const FALLOC_FL_KEEP_SIZE = 0x01;
export const FALLOC_FL_PUNCH_HOLE = 0x02;
export const FALLOC_FL_ZERO_RANGE = 0x10;

export const SIZEOF_SQE = 64;
export const SIZEOF_SQE128 = 128;
export const SIZEOF_CQE = 16;

// Provided buffer rings (IORING_REGISTER_PBUF_RING): struct io_uring_buf is 16 bytes; the ring
// tail is the u16 at byte 14 of entry 0.
export const SIZEOF_IO_URING_BUF = 16;
export const SIZEOF_IO_URING_BUF_REG = 40;
export const IORING_UNREGISTER_PBUF_RING = 23;

/** struct io_uring_sqe byte offsets (64 bytes; SQE128 doubles the command area). */
export const SQE = {
  opcode: 0, flags: 1, ioprio: 2, fd: 4, off: 8, cmd_op: 8, addr: 16, len: 24, rw_flags: 28,
  user_data: 32, buf_index: 40, buf_group: 40, cmd: 48,
} as const;
/** Int32 word indices of an SQE, for copying and patching pre-encoded ones. */
export const SQE_WORDS = { size: 16, opcodeFlags: 0, userDataHi: 9, cmd: 12 } as const;

/** struct io_uring_rsrc_register (32 bytes): `nr` entries with `flags`, no data (sparse tables). */
export const RSRC_REGISTER = { nr: 0, flags: 4, size: 32 } as const;

export function encodeRsrcRegister(v: DataView, nr: number, flags: number): void {
  v.setUint32(RSRC_REGISTER.nr, nr, true);
  v.setUint32(RSRC_REGISTER.flags, flags, true);
}
