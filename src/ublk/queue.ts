// The per-thread fetch/commit engine, as the rest of ublkit sees it (its parts live in engine/).
export { QueueEngine } from './engine/loop.js';
export type { EngineConfig } from './engine/config.js';
export { prefixDone } from './engine/extent-io.js';
export { kernelCopiesCmdSqe } from './engine/sqe-copy.js';
