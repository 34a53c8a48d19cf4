// A serving thread: builds its own target instance from a module spec and runs one queue engine.
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { QueueEngine, type EngineConfig } from './queue.js';
import { checkTarget } from '../target/contract.js';
import { applyFilters } from '../filters/index.js';
import type { TargetSpec } from '../target/types.js';
import { importCatalogue, loadTarget } from '../target/catalogue.js';

export interface WorkerInit {
  spec: TargetSpec;
  /** URL of the catalogue module the spec's name is looked up in (functions cannot cross threads). */
  targets?: string;
  engine: Omit<EngineConfig, 'target' | 'onError'>;
  thread: number;
  queues: number[];
}

/** Messages from a serving thread; 'done' is the only normal end, any other exit is a death. */
export type WorkerMessage =
  | { type: 'ready' }
  | { type: 'done' }
  | { type: 'error'; message: string }
  | { type: 'fatal'; message: string };

let engine: QueueEngine | undefined;
let aborted = false;

// A thread that dies (uncaught exception, process.exit in a target) must still unmap the
// descriptors and close its ring: those pin /dev/ublkcN, and until it is released the kernel
// neither aborts this thread's requests nor lets the device be deleted.
process.on('exit', () => engine?.abort());

/** Started ahead of its device (see prestartWorkers): the catalogue to load while it waits. */
export interface WorkerStandby {
  standby: true;
  targets?: string;
}

/** The WorkerInit, at once or, for a thread started ahead, once sent; undefined if ended first. */
function initOf(port: MessagePort): Promise<WorkerInit | undefined> {
  const data = workerData as WorkerInit | WorkerStandby;
  if (!('standby' in data)) return Promise.resolve(data);
  if (data.targets) void importCatalogue(data.targets).catch(() => {}); // cached for loadTarget below
  return new Promise((resolve) => {
    const on = (m: { type: string; init?: WorkerInit }) => {
      if (m.type !== 'init' && m.type !== 'abort') return;
      port.off('message', on);
      resolve(m.init);
    };
    port.on('message', on);
  });
}

async function main(): Promise<void> {
  const port = parentPort!;
  port.on('message', (m: { type: string }) => {
    if (m.type !== 'abort') return;
    aborted = true;
    engine?.abort();
  });
  const init = await initOf(port);
  if (!init) {
    port.close();
    return;
  }
  const mod = await loadTarget(init.spec.module, init.targets ? await importCatalogue(init.targets) : undefined);
  const target = checkTarget(applyFilters(await mod.create(init.spec.config), init.spec.filters));
  if (!aborted) {
    engine = new QueueEngine({
      ...init.engine,
      target,
      onError: (e) => port.postMessage({ type: 'error', message: e.message }),
    });
    await target.open?.(engine.context(init.queues, init.thread));
    if (aborted) engine.abort();
    else {
      engine.start();
      port.postMessage({ type: 'ready' });
    }
    await engine.done;
  }
  await target.close?.();
  // A fail-stop is a death, not a clean end: the device lets go of every thread (see Crew).
  if (engine?.failure) port.postMessage({ type: 'fatal', message: engine.failure.message });
  else port.postMessage({ type: 'done' });
  port.close();
}

main().catch((err: Error) => {
  engine?.abort();
  parentPort!.postMessage({ type: 'fatal', message: err.message });
  parentPort!.close();
});
