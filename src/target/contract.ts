// Checks a target object once, before any IO: the engine then trusts its shape.
import type { Target } from './types.js';
import { UblkError } from '../errors.js';

export function checkTarget(t: Target, name = 'target'): Target {
  if (!t || typeof t !== 'object') throw new UblkError('EINVAL', `${name} is not an object`);
  if (typeof t.read !== 'function' || typeof t.write !== 'function') {
    throw new UblkError('EINVAL', `${name} must implement read(buf, offset) and write(buf, offset, flags)`);
  }
  const caps = t.caps ?? {};
  const need: Array<[boolean | undefined, unknown, string]> = [
    [caps.flush, t.flush, 'flush'],
    [caps.discard, t.discard, 'discard'],
    [caps.writeZeroes, t.writeZeroes, 'writeZeroes'],
  ];
  for (const [cap, fn, m] of need) {
    if (cap && typeof fn !== 'function') throw new UblkError('EINVAL', `${name} declares caps.${m} but has no ${m}()`);
  }
  return t;
}
