// fault_inject: kublk's fault-injection disk, built as the null target under the delay filter:
// every IO waits --delay_us, then reads zeroes; --die_during_fetch (the engine's, see its config)
// kills the server during start-up for the recovery tests.
import type { Target } from '../../target/types.js';
import { compose } from '../../filters/compose.js';
import { delay } from '../../filters/delay.js';
import * as nul from '../null/index.js';

export interface FaultInjectConfig {
  delayUs?: number;
  dieDuringFetch?: boolean;
  size?: number;
}

export function create(config: FaultInjectConfig = {}): Target {
  // kublk's fault_inject sets only the basic parameters: no DMA alignment or segment limits.
  const disk = { ...nul.create({ size: config.size }), limits: { logicalBlockShift: 9, physicalBlockShift: 12, ioMinShift: 9, ioOptShift: 12 } };
  // The delay must see each request, so it turns route off and a zero-copy mode is refused with
  // it; with no delay the disk is plain null and every mode works, as kublk's.
  return config.delayUs ? compose(disk, [delay, { ms: config.delayUs / 1000 }]) : compose(disk);
}
