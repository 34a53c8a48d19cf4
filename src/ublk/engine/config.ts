// EngineConfig: what a serving thread's engine is told (the public face is re-exported by queue.ts).
import type { Ring } from '../../uring/ring.js';
import type { Target } from '../../target/types.js';
import type { DataMode } from '../modes.js';

export interface EngineConfig {
  ublkcFd: number;
  queueDepth: number;
  /** Bytes per descriptor slot (UBLK_F_IO_DESC_SIZE); default 24. */
  ioDescSize?: number;
  maxIoBufBytes: number;
  /** (qid, tag) pairs this thread serves. */
  slots: Array<[number, number]>;
  target: Target;
  mode: DataMode;
  /** Use the raw ublkc fd in SQEs instead of fixed-file index 0. */
  noFixedFd?: boolean;
  /** Auto-buf-reg with FALLBACK and index 0xffff: every request takes the manual zero-copy path. */
  autoBufRegFallback?: boolean;
  /** Batch IO with auto-buf-reg: each COMMIT names the slot's other buffer index for the next request. */
  rotateAutoBuf?: boolean;
  /** UBLK_F_INTEGRITY (user copy only): protection interval and metadata bytes per interval. */
  integrity?: { intervalExp: number; metadataSize: number };
  /** UBLK_F_SHMEM_ZC: the shared file registered with REG_BUF; matching requests use it directly. */
  shmem?: { path: string; readOnly?: boolean };
  /** UBLK_F_BATCH_IO device: PREP/FETCH/COMMIT_IO_CMDS instead of per-IO commands. */
  batch?: boolean;
  /** fault_inject's --die_during_fetch: SIGKILL this process just before fetching tag 1. */
  dieDuringFetch?: boolean;
  /**
   * Link a request's COMMIT behind its file IO, so both go down in one io_uring_enter. Default:
   * where the kernel copies a uring_cmd's SQE at submission (see kernelCopiesCmdSqe); always with
   * a stand-in ring.
   */
  linkCommit?: boolean;
  /** Extra io_uring setup flags. */
  ringFlags?: number;
  /**
   * Bind the serving thread to this CPU before its ring exists (as kublk binds each queue thread
   * to the first CPU of its queue), so the ring's io-wq workers start there too.
   */
  cpu?: number;
  onError?: (err: Error) => void;
  /** Where this thread counts its IO (see newStatsBuffer); absent: no stats, no clock read per IO. */
  stats?: SharedArrayBuffer;
  /**
   * For tests and the engine benchmark only: a ring and descriptor arrays standing in for the
   * kernel's (a scripted driver), instead of io_uring and the mmapped /dev/ublkcN descriptors.
   */
  stand?: { ring: Ring; descriptors: Uint32Array[] };
}
