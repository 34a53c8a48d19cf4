// fault_inject: a null-like disk whose every IO waits --delay_us on an io_uring timeout first;
// with --die_during_fetch the server kills itself during start-up (recovery tests).
import type { Target, TargetContext } from '../../target/types.js';
import type { FileIo } from '../../uring/file-io.js';

export interface FaultInjectConfig {
  delayUs?: number;
  dieDuringFetch?: boolean;
  size?: number;
}

export function create(config: FaultInjectConfig = {}): Target {
  const delayNs = (config.delayUs ?? 0) * 1000;
  let io: FileIo | undefined;
  const wait = (n: number): number | Promise<number> => {
    if (!delayNs || !io) return n;
    const ts = new BigInt64Array(2);
    // The kernel copies the timespec when the SQE is submitted; `ts` lives until then via the closure.
    return io.sleep(delayNs, ts).then(() => (ts.length ? n : n));
  };
  return {
    size: config.size ?? 250 * 2 ** 30,
    limits: { logicalBlockShift: 9, physicalBlockShift: 12, ioMinShift: 9, ioOptShift: 12 },
    open(ctx: TargetContext) {
      io = ctx.io;
    },
    read: (buf) => {
      buf.fill(0);
      return wait(buf.byteLength);
    },
    write: (buf) => wait(buf.byteLength),
    route: (_o, length) => [{ fd: -1, offset: 0, length, bufOffset: 0 }],
  };
}
