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
    flush: undefined,
    discard: undefined,
    writeZeroes: undefined,
  };
};
