// The options of Device.create and Device.recover.
import type { Target, TargetSpec } from '../target/types.js';
import type { TargetCatalogue } from '../target/catalogue.js';
import type { ModeRequest } from './modes.js';

export interface DeviceOptions {
  /** A target object (served in this thread), or a module spec (built once per worker thread when `threads` > 1). */
  target: Target | TargetSpec;
  /**
   * Where a TargetSpec's `module` is looked up by name before it is imported as a URL: the CLI
   * passes the built-in catalogue (`builtinTargets`: 'ublkit:loop', ...). Worker threads import it
   * again from its `url`.
   */
  targets?: TargetCatalogue;
  /** Device id; -1 (default) lets the kernel choose. */
  id?: number;
  queues?: number;
  depth?: number;
  /** Serving threads: 1 serves every queue in the calling thread; more need a TargetSpec. */
  threads?: number;
  mode?: ModeRequest;
  maxIoBufBytes?: number;
  /**
   * Bytes per io descriptor slot, negotiated with UBLK_F_IO_DESC_SIZE (Linux 7.3): a multiple of
   * 8 from 24 to 256. Unset: the kernel's 24, and no new feature is asked for.
   */
  ioDescSize?: number;
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
   * Batch IO with automatic buffer registration: every COMMIT names the other of two buffer
   * indices of its slot for the next request (as kublk's --rotate_auto_buf), so the kernel must
   * drop the old registration before it stores the new one.
   */
  rotateAutoBuf?: boolean;
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
  /**
   * Count every request per op (counts, bytes, errors, latency histogram) and in-flight requests
   * per queue, for Device.stats(). Default true; false leaves the hot path without a clock read.
   */
  stats?: boolean;
  /** How Device.stats() names the target; default: the spec's module and filters, or 'object'. */
  description?: string;
  /** Cancels the start-up (create or recover): everything made so far is undone, the id freed. */
  signal?: AbortSignal;
  /** @internal Told the device id right after ADD_DEV (the CLI's parent deletes it if the daemon dies). */
  onAdded?: (id: number) => void;
}
