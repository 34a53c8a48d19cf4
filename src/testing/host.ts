// A serving-thread context on the host: an io_uring of our own, so targets that do their IO
// through ctx.io (loop, stripe) run without a ublk device.
import type { TargetContext } from '../target/types.js';

export interface HostContext {
  ctx: TargetContext;
  /** A page-aligned buffer, as the engine's: targets that open files with O_DIRECT need one. */
  alloc(len: number): Uint8Array;
  close(): void;
}

/** Completions wake the event loop through the ring's eventfd; submissions batch per microtask. */
export async function hostContext(): Promise<HostContext> {
  const { createRing } = await import('../uring/ring.js');
  const { FileIo } = await import('../uring/file-io.js');
  const alloc = await alignedAlloc();
  const ring = createRing(256, 0);
  let queued = false;
  ring.onQueue = () => {
    if (queued) return;
    queued = true;
    queueMicrotask(() => {
      queued = false;
      if (ring.onQueue) ring.submit();
    });
  };
  ring.watch(() => void ring.reap(() => {}), true);
  // A submit still queued when the owner closes must not reach the closed ring.
  const close = () => {
    ring.onQueue = undefined;
    ring.close();
  };
  return { ctx: { io: new FileIo(ring), ring, queues: [0], thread: 0 }, alloc, close };
}

/** Page-aligned buffers from the addon, as the engine's (targets doing O_DIRECT IO need them). */
export async function alignedAlloc(): Promise<(len: number) => Uint8Array> {
  const { native } = await import('../native.js');
  const n = native();
  return (len) => new Uint8Array(n.alloc(Math.max(len, 1), 4096), 0, len);
}
