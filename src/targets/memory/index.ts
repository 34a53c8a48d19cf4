// memory: a RAM disk over one SharedArrayBuffer, shared by every serving thread; pages are
// allocated by the OS on first touch, so an unwritten disk costs nothing.
import type { Target } from '../../target/types.js';
import { UblkError } from '../../errors.js';
import { parseSize } from '../size.js';

export interface MemoryConfig {
  size: number | string;
  /** The storage; made by prepare() so that every thread sees the same bytes. */
  buffer?: SharedArrayBuffer;
}

export function prepare(config: MemoryConfig): MemoryConfig {
  const size = parseSize(config.size);
  if (size <= 0 || size % 512 !== 0) throw new UblkError('EINVAL', `memory size ${size} must be a positive multiple of 512`);
  if (config.buffer && config.buffer.byteLength !== size) throw new UblkError('EINVAL', 'memory buffer does not match size');
  let buffer = config.buffer;
  if (!buffer) {
    try {
      buffer = new SharedArrayBuffer(size);
    } catch {
      throw new UblkError('ENOMEM', `cannot allocate a ${size}-byte memory disk`);
    }
  }
  return { size, buffer };
}

export function create(config: MemoryConfig): Target {
  const { size: sz, buffer } = config.buffer ? (config as Required<MemoryConfig>) : prepare(config) as Required<MemoryConfig>;
  const size = sz as number;
  const mem = new Uint8Array(buffer);
  return {
    size,
    caps: { discard: true, writeZeroes: true },
    // Clamped to the end of the disk (which a grown device, update_size, reaches past): the count
    // says what was really filled, so no byte the client gets is one nobody wrote.
    read(buf, off) {
      const n = Math.max(0, Math.min(buf.byteLength, size - off));
      if (n > 0) buf.set(mem.subarray(off, off + n));
      return n;
    },
    write(buf, off) {
      const n = Math.max(0, Math.min(buf.byteLength, size - off));
      if (n > 0) mem.set(buf.subarray(0, n), off);
      return n;
    },
    discard(off, len) {
      mem.fill(0, off, off + len);
    },
    writeZeroes(off, len) {
      mem.fill(0, off, off + len);
    },
  };
}
