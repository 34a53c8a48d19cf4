// The serving threads of one device (an engine in the calling thread, worker threads), watched
// together: an early end fails the start-up, a death after it is reported, and all end at once.
import { Worker } from 'node:worker_threads';
import { QueueEngine, type EngineConfig } from './queue.js';
import type { Target, TargetSpec } from '../target/types.js';
import type { WorkerInit, WorkerMessage } from './worker.js';
import { UblkError } from '../errors.js';
import { lifecycleTimeoutMs } from './control.js';
import { newStatsBuffer } from './engine/stats.js';

export type EngineBase = Omit<EngineConfig, 'slots' | 'target' | 'onError'>;

interface Member {
  /** The thread stopped serving (its engine ended). */
  done: Promise<void>;
  /** The thread is gone and holds nothing of /dev/ublkcN. */
  gone: Promise<void>;
  /** End now: close the ring and unmap without waiting for the kernel. */
  abort(): void;
  /** Last resort when `abort` is not heard in time (a worker stuck in its target). */
  kill?(): void;
}

// The bundled daemon (dist/src/cli/daemon.cjs) starts the bundled worker beside it; the tsc
// output starts worker.js beside this file. tools/bundle-cli.mjs defines __UBLKIT_WORKER__.
declare const __UBLKIT_WORKER__: string | undefined;
function workerUrl(): URL {
  return new URL(typeof __UBLKIT_WORKER__ === 'string' ? __UBLKIT_WORKER__ : './worker.js', import.meta.url);
}

export class Crew {
  private readonly members: Member[] = [];
  private serving = false;
  private lastError = '';
  private failEarly!: (err: Error) => void;
  /** Rejects when a thread ends (or the caller's signal aborts) while the device is starting. */
  private readonly early: Promise<never>;
  /** Called once, when a thread dies after start-up; the device then ends (see Device). */
  onDeath: ((err: Error) => void) | undefined;
  private dead = false;
  /** Engine errors after start-up go here (the device's 'error' event); a process warning otherwise. */
  onWarning: ((err: Error) => void) | undefined;
  /** One stats block per serving thread, read by Device.stats(). */
  readonly statsBuffers: SharedArrayBuffer[] = [];

  /** `statsQueues`: the device's queue count, to count IO per thread; undefined: stats off. */
  constructor(private readonly signal?: AbortSignal, private readonly statsQueues?: number) {
    this.early = new Promise<never>((_, reject) => (this.failEarly = reject));
    this.early.catch(() => {});
    signal?.addEventListener('abort', () => this.failEarly(abortReason(signal)), { once: true });
  }

  /** Resolves when every thread has stopped serving. */
  get done(): Promise<void> {
    return Promise.all(this.members.map((m) => m.done)).then(() => {});
  }

  /** `p`, unless a thread ends or the start-up is cancelled first; bounded when `what` names it. */
  async race<T>(p: Promise<T>, what?: string, scale = 1): Promise<T> {
    this.signal?.throwIfAborted();
    if (!what) return Promise.race([p, this.early]);
    const ms = lifecycleTimeoutMs() * scale;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new UblkError('ETIMEDOUT', `${what} did not finish within ${ms / 1000} s`)), ms);
    });
    try {
      return await Promise.race([p, this.early, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Start-up is over: from now on a thread's end is a stop, or a death if it did not finish cleanly. */
  started(): void {
    this.serving = true;
  }

  /** An engine's error: kept for the start-up failure or death message, and told now. */
  private warn(message: string): void {
    this.lastError = message;
    if (this.onWarning) this.onWarning(new Error(message));
    else process.emitWarning(message);
  }

  private newStats(): SharedArrayBuffer | undefined {
    if (this.statsQueues === undefined) return undefined;
    const b = newStatsBuffer(this.statsQueues);
    this.statsBuffers.push(b);
    return b;
  }

  /** A thread ended: fatal during start-up; after it, fatal only if it died (`clean` false). */
  private ended(clean: boolean, why: string): void {
    if (!this.serving) {
      this.failEarly(new UblkError('EIO', `a serving thread ${why} during start-up${this.lastError ? `: ${this.lastError}` : ''}`));
    } else if (!clean && !this.dead) {
      this.dead = true;
      this.onDeath?.(new UblkError('EIO', `a serving thread ${why}${this.lastError ? `: ${this.lastError}` : ''}`));
    }
  }

  /** Serves `slots` in the calling thread. */
  async serveHere(target: Target, cfg: EngineBase, slots: Array<[number, number]>, thread = 0): Promise<void> {
    const engine = new QueueEngine({ ...cfg, slots, target, stats: this.newStats(), onError: (e) => this.warn(e.message) });
    // A target whose close() throws is reported, never allowed to reject `done`: what waits on it
    // (abort, delete) must still release /dev/ublkcN and delete the device.
    const done = engine.done.then(() => target.close?.()).then(
      () => this.ended(!engine.failure, engine.failure ? `stopped: ${engine.failure.message}` : 'stopped'),
      (e: Error) => {
        this.warn(`the target's close() failed: ${e.message}`);
        this.ended(true, `failed to close its target (${e.message})`);
      },
    );
    this.members.push({ done, gone: done, abort: () => engine.abort() });
    await this.race(Promise.resolve(target.open?.(engine.context([...new Set(slots.map((s) => s[0]))], thread))), "the target's open()");
    engine.start();
  }

  /**
   * One worker thread per group of slots, each building its own target from `spec` (its module
   * looked up in the catalogue at `targets`, a URL); resolves when all are ready.
   */
  async serveInWorkers(
    spec: TargetSpec, config: unknown, targets: string | undefined, cfg: EngineBase, groups: Array<Array<[number, number]>>,
    firstThread: number, cpus: Array<number | undefined> = [],
  ): Promise<void> {
    const ready = groups.map((slots, i) => {
      const queues = [...new Set(slots.map((s) => s[0]))];
      const init: WorkerInit = {
        spec: { ...spec, config }, targets, engine: { ...cfg, slots, cpu: cpus[i], stats: this.newStats() }, thread: firstThread + i, queues,
      };
      return this.addWorker(new Worker(workerUrl(), { workerData: init }));
    });
    // Twice the bound: 32 threads each loading the engine take tens of seconds on an emulated machine.
    await this.race(Promise.all(ready), "the serving threads' start-up (target create and open)", 2);
  }

  private addWorker(w: Worker): Promise<void> {
    let finished = false;
    let resolveReady!: () => void;
    const ready = new Promise<void>((r) => (resolveReady = r));
    let code = 0;
    const gone = new Promise<void>((r) => w.once('exit', (c: number) => {
      code = c;
      r();
    }));
    w.on('message', (m: WorkerMessage) => {
      if (m.type === 'ready') resolveReady();
      else if (m.type === 'done') finished = true;
      else if (m.type === 'error') this.warn(m.message);
      // A fatal error ends the thread: said once, by the start-up failure or the death.
      else this.lastError = m.message;
    });
    w.on('error', (e) => (this.lastError = e.message));
    void gone.then(() => this.ended(finished, finished ? 'stopped' : `died (exit code ${code})`));
    this.members.push({ done: gone, gone, abort: () => w.postMessage({ type: 'abort' }), kill: () => void w.terminate() });
    return ready;
  }

  /**
   * Ends every thread now and waits (bounded) until none holds /dev/ublkcN. Used when start-up
   * fails and when a thread died: the kernel then aborts whatever IO the threads owned.
   */
  async abort(): Promise<void> {
    for (const m of this.members) m.abort();
    const all = Promise.all(this.members.map((m) => m.gone));
    const ms = lifecycleTimeoutMs();
    let timer: NodeJS.Timeout | undefined;
    const late = await Promise.race([all.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), ms)))]);
    clearTimeout(timer);
    if (late) for (const m of this.members) m.kill?.();
  }
}

function abortReason(signal: AbortSignal): Error {
  const r = signal.reason as unknown;
  return r instanceof Error ? r : new UblkError('EINTR', 'device start-up cancelled');
}
