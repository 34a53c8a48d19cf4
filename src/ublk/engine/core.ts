// What the engine's parts share: CQE kinds, the loop they call back, data paths and transports.
import type { Ring } from '../../uring/ring.js';
import type { Target } from '../../target/types.js';
import type { EngineConfig } from './config.js';
import type { SlotTable } from './slots.js';

// user_data high word (low byte) of the engine's own SQEs; the low word is the slot index (or,
// for batch commands, a queue or command id). Bits 8.. carry an extent index (K_ZC_IO).
export const K_CMD = 1;
export const K_REG = 2;
export const K_ZC_IO = 3;
export const K_UNREG = 4;
export const K_PREP = 5;
export const K_FETCH = 6;
export const K_COMMIT = 7;
/** COMMIT_AND_FETCH linked behind a request's single IO (see ExtentIo.linkedCommit). */
export const K_LCMD = 8;
/** A stand-alone UNREGISTER_IO_BUF after a broken linked chain; its CQE needs no handling. */
export const K_UNREG_LATE = 9;

/** The fetch/commit loop, as its parts see it. */
export interface Loop {
  readonly cfg: EngineConfig;
  readonly target: Target;
  readonly ring: Ring;
  readonly slots: SlotTable;
  /** The ring's fd reference in SQEs (fixed-file index 0 or the raw fd) and its IOSQE flag. */
  readonly fdRef: number;
  readonly sqeFdFlags: number;
  /** A commit may be linked behind the request's IO (per-IO commands, not draining). */
  readonly linkable: boolean;
  /** Commits `result` for slot s (bytes done or a negative errno) and re-arms it. */
  commit(s: number, result: number): void;
  /** One io_uring_enter soon for what was queued. */
  scheduleFlush(): void;
  /** A request is on slot s: the server holds work there until it commits. */
  own(s: number): void;
  /** An OWNED slot whose commit of `result` (default: its length) is sent becomes ARMED; false if it was not OWNED. */
  rearm(s: number, result?: number): boolean;
}

/** What to do once every byte of a request has moved. */
export interface Finisher {
  finish(s: number): void;
}

/**
 * A data path: how a READ/WRITE's bytes move in the device's data mode. Chosen once per engine;
 * the loop calls it with the request already decoded into the slot table.
 */
export interface DataPath extends Finisher {
  start(s: number): void;
  /** Another pass over what is left (slots.done bytes are done); `regHeld`: the buffer is still registered. */
  pass(s: number, regHeld: boolean): void;
  /** Before each io_uring_enter: run work batched per enter. */
  flush(): void;
}

/** How slots are armed and commits reach the kernel: per-IO commands or batch commands. */
export interface Transport {
  /** Arms every slot (FETCH or PREP + FETCH); the loop submits. */
  start(): void;
  commit(s: number, result: number): void;
  /** Before each io_uring_enter: send what was batched. */
  flush(): void;
  /** A CQE of the transport's own kinds. */
  onCqe(kind: number, lo: number, res: number, flags: number): void;
}
