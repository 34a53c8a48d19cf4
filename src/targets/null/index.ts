// null: completes every request at once without touching data (benchmarks, engine tests).
import type { Extent, Target, TargetIntegrity } from '../../target/types.js';
import { parseSize } from '../size.js';

export interface NullConfig {
  /** Bytes, or a size string like '250G'. Default 250 GiB, as kublk. */
  size?: number | string;
  /** Declare an integrity format (metadata is accepted and dropped, reads return none). */
  integrity?: TargetIntegrity;
}

export function create(config: NullConfig = {}): Target {
  const size = config.size === undefined ? 250 * 2 ** 30 : parseSize(config.size);
  return {
    size,
    caps: { flush: false },
    integrity: config.integrity,
    // As kublk: 512-byte logical, 4 KiB physical, page-aligned DMA, 32 x 32 KiB segments.
    limits: {
      logicalBlockShift: 9, physicalBlockShift: 12, ioMinShift: 9, ioOptShift: 12,
      dmaAlignment: 4095, segment: { segBoundaryMask: 4095, maxSegmentSize: 32768, maxSegments: 32 },
    },
    read: (buf) => buf.byteLength,
    write: (buf) => buf.byteLength,
    // In zero-copy modes the request buffer is consumed by a fixed-buffer NOP (fd -1).
    route: (_offset, length): Extent[] => [{ fd: -1, offset: 0, length, bufOffset: 0 }],
  };
}
