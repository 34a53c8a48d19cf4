// offset: a window of the target below, `range` bytes from `offset`; addresses only, so route()
// is remapped and zero copy keeps working through it.
import type { Extent } from '../target/types.js';
import type { Filter } from './compose.js';
import { blockOf, keys, size as sizeOf } from './config.js';
import { UblkError } from '../errors.js';

export interface OffsetConfig {
  offset?: number | string;
  range?: number | string;
}

export const offset: Filter<OffsetConfig> = (next, config) => {
  const c = keys(config, 'offset', ['offset', 'range']);
  const base = sizeOf(c.offset, 'offset filter offset', 0);
  const bs = blockOf(next);
  const range = sizeOf(c.range, 'offset filter range', next.size - base);
  if (base % bs || range % bs) throw new UblkError('EINVAL', `offset filter: offset ${base} and range ${range} must be multiples of the ${bs}-byte block`);
  if (range <= 0 || base + range > next.size) {
    throw new UblkError('EINVAL', `offset filter: window ${base}+${range} is not inside the ${next.size}-byte target`);
  }
  const route = next.route;
  return {
    size: range,
    read: (buf, off) => next.read(buf, base + off),
    write: (buf, off, flags) => next.write(buf, base + off, flags),
    discard: next.discard ? (off, len) => next.discard!(base + off, len) : undefined,
    writeZeroes: next.writeZeroes ? (off, len, noUnmap) => next.writeZeroes!(base + off, len, noUnmap) : undefined,
    route: route ? (off: number, len: number): Extent[] => route(base + off, len) : undefined,
    // Integrity tuples follow the data's byte offset.
    readIntegrity: next.readIntegrity ? (buf, off) => next.readIntegrity!(buf, base + off) : undefined,
    writeIntegrity: next.writeIntegrity ? (buf, off) => next.writeIntegrity!(buf, base + off) : undefined,
  };
};
