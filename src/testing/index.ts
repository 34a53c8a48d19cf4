// ublkit/testing: check a target or a filter stack on the host, with no kernel and no root.
export { checkTarget, type CheckOptions, type CheckReport, type OpName } from './check.js';
export { TargetMismatch } from './model.js';
export { hostContext, type HostContext } from './host.js';
