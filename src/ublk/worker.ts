// A serving thread: builds its own target instance from a module spec and runs one queue engine.
import { parentPort, workerData } from 'node:worker_threads';
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

async function main(): Promise<void> {
  const init = workerData as WorkerInit;
  const port = parentPort!;
  port.on('message', (m: { type: string }) => {
    if (m.type !== 'abort') return;
    aborted = true;
    engine?.abort();
  });
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
