// readonly: the device is read-only to the kernel, and any write that gets here fails with EROFS.
import type { Filter } from './compose.js';
import { keys } from './config.js';
import { UblkError } from '../errors.js';

const refuse = (): never => {
  throw new UblkError('EROFS', 'read-only filter: writes are refused');
};

export const readonly: Filter = (next, config) => {
  keys(config, 'readonly', []);
  // Nothing is ever written, so there is nothing to flush or discard either.
  return {
    caps: { ...next.caps, readOnly: true, flush: false, fua: false, discard: false, writeZeroes: false },
    write: refuse,
    // A routing target's writes would go straight to its files, past `refuse`, with only the
    // kernel's read-only flag (which root can clear) in the way.
    route: undefined,
    flush: undefined,
    discard: undefined,
    writeZeroes: undefined,
  };
};
