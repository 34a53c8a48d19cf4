// cache: an LRU read cache in memory over the target, write-through. Writes, discards and
// write-zeroes drop the blocks they touch; a read fetched while any of those ran is not kept.
import type { Target } from '../target/types.js';
import type { Filter } from './compose.js';
import { UblkError } from '../errors.js';
import { blockOf, keys, size } from './config.js';

export interface CacheConfig {
  /** Bytes of cached data at most (default 64M). */
  size?: number | string;
  /** Cache block: a power of two, at least the logical block size (default 4K). */
  block?: number | string;
}

export const cache: Filter<CacheConfig> = (next, config) => {
  const c = keys(config, 'cache', ['size', 'block']);
  const block = size(c.block, 'cache block', 4096);
  if (block < blockOf(next) || block > 1 << 24 || (block & (block - 1)) !== 0) {
    throw new UblkError('EINVAL', `cache block must be a power of two from ${blockOf(next)} to 16M, got ${block}`);
  }
  const cap = Math.floor(size(c.size, 'cache size', 64 << 20) / block);
  if (cap < 1) throw new UblkError('EINVAL', `cache size must hold at least one ${block}-byte block`);
  // Insertion order is recency order: a hit moves its block to the end, eviction takes the first.
  const lru = new Map<number, Uint8Array>();
  /** Changes that started, and those running: a fetch overlapping one must not fill the cache. */
  let changes = 0;
  let changing = 0;

  const drop = (off: number, len: number): void => {
    for (let b = Math.floor(off / block), end = Math.ceil((off + len) / block); b < end; b++) lru.delete(b);
  };
  const change = async <T>(off: number, len: number, f: () => T | Promise<T>): Promise<T> => {
    changes++;
    changing++;
    drop(off, len);
    try {
      return await f();
    } finally {
      changing--;
      drop(off, len);
    }
  };

  /** Serves buf from cached blocks only when every one of them is there. */
  const hit = (buf: Uint8Array, off: number): boolean => {
    const first = Math.floor(off / block), last = Math.floor((off + buf.byteLength - 1) / block);
    for (let b = first; b <= last; b++) if (!lru.has(b)) return false;
    for (let b = first; b <= last; b++) {
      const data = lru.get(b)!;
      lru.delete(b);
      lru.set(b, data);
      const from = Math.max(off, b * block), to = Math.min(off + buf.byteLength, (b + 1) * block);
      buf.set(data.subarray(from - b * block, to - b * block), from - off);
    }
    return true;
  };

  const fill = async (buf: Uint8Array, off: number): Promise<number> => {
    const start = Math.floor(off / block) * block;
    const end = Math.min(next.size, Math.ceil((off + buf.byteLength) / block) * block);
    const whole = new Uint8Array(end - start);
    const seen = changes;
    const quiet = changing === 0;
    for (let done = 0; done < whole.byteLength;) done += await next.read(whole.subarray(done), start + done);
    buf.set(whole.subarray(off - start, off - start + buf.byteLength));
    if (quiet && changing === 0 && changes === seen) {
      // Only whole blocks: the device's last block may be short of a cache block.
      for (let b = start; b + block <= end; b += block) {
        lru.delete(b / block);
        lru.set(b / block, whole.slice(b - start, b - start + block));
        if (lru.size > cap) lru.delete(lru.keys().next().value!);
      }
    }
    return buf.byteLength;
  };

  const t: Partial<Target> = {
    read: (buf, off) => (hit(buf, off) ? buf.byteLength : fill(buf, off)),
    write: (buf, off, flags) => change(off, buf.byteLength, () => next.write(buf, off, flags)),
    discard: next.discard ? (off, len) => change(off, len, () => next.discard!(off, len)) : undefined,
    writeZeroes: next.writeZeroes ? (off, len, u) => change(off, len, () => next.writeZeroes!(off, len, u)) : undefined,
    // The engine would move bytes past the cache (zero copy): it must see every request.
    route: undefined,
  };
  return t;
};
