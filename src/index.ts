// ublkit: public exports only.
export { Device, type DeviceOptions, type DeviceError, type DeviceStats, type OpStats, type StatOp } from './ublk/device.js';
export type { IoEvent } from './ublk/engine/stats.js';
export { Control } from './ublk/control.js';
export type { DataMode, ModeRequest } from './ublk/modes.js';
export { catalogue as builtinTargets } from './targets/builtin.js';
export type { TargetCatalogue } from './target/catalogue.js';
export type { Target, TargetCaps, TargetLimits, TargetContext, TargetSpec, TargetModule, Extent, WriteFlags, MaybePromise } from './target/types.js';
export { UblkError, toNegErrno } from './errors.js';
export { FileIo } from './uring/file-io.js';
export * as uapi from './uapi/ublk.js';
export { compose, builtinFilters, applyFilters, type Filter, type FilterLayer, type FilterSpec, type Composed } from './filters/index.js';
