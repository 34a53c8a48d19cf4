// A serving thread: builds its own target instance from a module spec and runs one queue engine.
import { parentPort, workerData } from 'node:worker_threads';
import { QueueEngine, type EngineConfig } from './queue.js';
import { checkTarget } from '../target/contract.js';
import type { TargetSpec } from '../target/types.js';
import { loadTargetModule } from '../targets/builtin.js';

export interface WorkerInit {
  spec: TargetSpec;
  engine: Omit<EngineConfig, 'target' | 'onError'>;
  thread: number;
  queues: number[];
}

async function main(): Promise<void> {
  const init = workerData as WorkerInit;
  const port = parentPort!;
  const mod = await loadTargetModule(init.spec.module);
  const target = checkTarget(await mod.create(init.spec.config));
  const engine = new QueueEngine({
    ...init.engine,
    target,
    onError: (e) => port.postMessage({ type: 'error', message: e.message }),
  });
  await target.open?.(engine.context(init.queues, init.thread));
  engine.start();
  port.postMessage({ type: 'ready' });
  await engine.done;
  await target.close?.();
  port.postMessage({ type: 'done' });
  port.close();
}

main().catch((err: Error) => {
  parentPort!.postMessage({ type: 'fatal', message: err.message });
  parentPort!.close();
});
