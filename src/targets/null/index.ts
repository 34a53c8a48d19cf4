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
    // A read fills zeroes: the buffer may hold an earlier request's data (copy modes) or the
    // client's own stale pages (shared memory), and a null disk reads as zeroes.
    read: (buf) => {
      buf.fill(0);
      return buf.byteLength;
    },
    readsZeroes: true,
    write: (buf) => buf.byteLength,
    // fd -1 is a hole: in the zero-copy modes the engine reads zeroes into the request and
    // consumes a write with a fixed-buffer NOP.
    route: (_offset, length): Extent[] => [{ fd: -1, offset: 0, length, bufOffset: 0 }],
  };
}
