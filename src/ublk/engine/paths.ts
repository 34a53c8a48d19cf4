// The data path of an engine, chosen once from its device's mode: the loop never asks again.
import type { DataPath, Loop } from './core.js';
import type { ExtentIo } from './extent-io.js';
import type { TargetRw } from './target-rw.js';
import type { SlotBuffers } from './buffers.js';
import { CopyPath, GetDataPath } from './copy.js';
import { UserCopyPath } from './user-copy.js';
import { ZeroCopyPath } from './zero-copy.js';

export function choosePath(loop: Loop, rw: TargetRw, x: ExtentIo, bufs: SlotBuffers): DataPath {
  const { mode, integrity } = loop.cfg;
  // Reads of zeroes are served from buffers known to be zero; zone reports write into them too.
  const zeroes = loop.target.readsZeroes === true && !loop.target.limits?.zoned;
  switch (mode) {
    case 'zero-copy':
      return new ZeroCopyPath(loop, x, false);
    case 'auto-buf-reg':
      return new ZeroCopyPath(loop, x, true);
    case 'user-copy':
      return new UserCopyPath(loop, rw, x, bufs, !integrity && routesToFiles(loop), !!integrity, zeroes && !integrity);
    case 'get-data':
      return new GetDataPath(loop, rw, x, bufs.data, routesToFiles(loop), zeroes);
    default:
      return new CopyPath(loop, rw, x, bufs.data, routesToFiles(loop), zeroes);
  }
}

/**
 * A pass-through target whose extents are real files: the engine reads and writes them into the
 * slot buffer itself (one SQE per extent, completions in the CQE handler) instead of a promise
 * round trip through target.read()/write(). Probed once.
 */
function routesToFiles(loop: Loop): boolean {
  const t = loop.target;
  const probe = t.route ? t.route(0, 512) : [];
  return probe.length > 0 && probe.every((e) => e.fd >= 0);
}
