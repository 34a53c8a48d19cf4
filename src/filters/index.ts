// The built-in filters by name, and building a stack from a target spec's `filters` list.
import type { FilterSpec, Target } from '../target/types.js';
import { compose, type Composed, type Filter, type FilterLayer } from './compose.js';
import { UblkError } from '../errors.js';
import { readonly } from './readonly.js';
import { offset } from './offset.js';
import { delay } from './delay.js';
import { error } from './error.js';
import { cow } from './cow.js';
import { rate } from './rate.js';
import { log } from './log.js';
import { cache } from './cache.js';

export { compose, contractChecked, type Composed, type Filter, type FilterLayer } from './compose.js';

export const builtinFilters: Readonly<Record<string, Filter>> = { readonly, offset, delay, error, cow, rate, log, cache };

export type { FilterSpec } from '../target/types.js';

export function filterNamed(name: string): Filter {
  if (!Object.prototype.hasOwnProperty.call(builtinFilters, name)) {
    throw new UblkError('EINVAL', `unknown filter '${name}' (filters: ${Object.keys(builtinFilters).join(', ')})`);
  }
  return builtinFilters[name];
}

/** `target` under the filters a spec names, the first nearest to the kernel; none: the target as is. */
export function applyFilters(target: Target, specs: readonly FilterSpec[] | undefined): Target | Composed {
  if (!specs?.length) return target;
  if (!Array.isArray(specs)) throw new UblkError('EINVAL', 'target spec filters must be a list of { name, config }');
  const layers: FilterLayer[] = specs.map((s) => {
    if (!s || typeof s.name !== 'string') throw new UblkError('EINVAL', 'each filter in a target spec needs a name');
    return [filterNamed(s.name), s.config] as const;
  });
  return compose(target, ...layers);
}
