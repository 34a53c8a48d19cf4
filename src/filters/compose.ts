// Stacks filters over a target: each layer is a target whose undefined methods pass through to the
// one below, and every layer is held to the result contract before the layer above sees it.
import { checkTarget as checkShape } from '../target/contract.js';
import { countResult, statusResult } from '../target/result.js';
import type { MaybePromise, Target, TargetContext } from '../target/types.js';
import { errnoName, UblkError } from '../errors.js';

/**
 * A filter: given the target below (`next`, already contract-checked: read/write resolve with a
 * count 1..length or throw) and its config, the methods and properties it changes. What it leaves
 * out passes through, `caps`, `limits` and `route` included; a key present but undefined (e.g.
 * `route: undefined`, for a filter that must see the bytes) removes it. `open` and `close` are
 * chained by compose: a filter's own run after the lower layer opens and before it closes.
 */
export type Filter<C = any> = (next: Target, config: C) => Partial<Target> & Record<string, unknown>;

/** A filter with its config, or a filter that takes none. */
export type FilterLayer = Filter | readonly [Filter, unknown];

/** A target as seen from above, with whatever extra methods its layers add (cow's `commit`). */
export type Composed = Target & Record<string, unknown>;

function fail(r: number, what: string): never {
  throw new UblkError(errnoName(r), `${what}: ${errnoName(r)}`);
}

const counted = (v: unknown, len: number, what: string): number => {
  const n = countResult(v, len);
  return n < 0 ? fail(n, what) : n;
};
const settled = (v: unknown, what: string): unknown => {
  const n = statusResult(v);
  return n < 0 ? fail(n, what) : v;
};
const then = <T>(v: MaybePromise<unknown>, f: (x: unknown) => T): MaybePromise<T> => (v instanceof Promise ? v.then(f) : f(v));

/** A plain object with every member of `t`, its prototype's methods too (bound to `t`). */
function flatten(t: Target): Composed {
  const out: Record<string, unknown> = {};
  for (let o: object | null = t; o && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
    for (const key of Object.getOwnPropertyNames(o)) {
      if (key === 'constructor' || key in out) continue;
      const v = (t as unknown as Record<string, unknown>)[key];
      out[key] = typeof v === 'function' ? v.bind(t) : v;
    }
  }
  return out as Composed;
}

/**
 * `t` with its results checked once: a count outside 1..length and a negative errno both become
 * throws, so the layer above handles one kind of failure. Synchronous results stay synchronous.
 */
export function contractChecked(t: Target, name: string): Composed {
  checkShape(t, name);
  const out = flatten(t);
  out.read = (buf, off) => then(t.read(buf, off), (v) => counted(v, buf.byteLength, `${name} read`));
  out.write = (buf, off, flags) => then(t.write(buf, off, flags), (v) => counted(v, buf.byteLength, `${name} write`));
  if (t.flush) out.flush = () => then(t.flush!(), (v) => settled(v, `${name} flush`));
  if (t.discard) out.discard = (o, l) => then(t.discard!(o, l), (v) => settled(v, `${name} discard`));
  if (t.writeZeroes) out.writeZeroes = (o, l, u) => then(t.writeZeroes!(o, l, u), (v) => settled(v, `${name} writeZeroes`));
  return out;
}

/** One layer: the filter's own members over the ones below. */
function layer(next: Composed, filter: Filter, config: unknown, name: string): Composed {
  const own = filter(next, config);
  // Integrity metadata travels beside the data: a filter that changes where data goes or whether
  // it is written (cow, readonly, error) and let readIntegrity/writeIntegrity pass through would
  // store tuples for data it kept elsewhere or refused. Only a filter that maps them may go over.
  if (next.integrity && !('writeIntegrity' in own)) {
    throw new UblkError('EINVAL', `${name} does not carry integrity metadata: it cannot go over a target with integrity`);
  }
  const out = { ...next } as Composed;
  // The promise that reads are zeroes is about the read below: a filter's own read breaks it.
  if ('read' in own) delete (out as Record<string, unknown>).readsZeroes;
  for (const key of Object.keys(own)) {
    if (key === 'open' || key === 'close') continue;
    if (own[key] === undefined) delete out[key];
    else out[key] = own[key];
  }
  const open = own.open as Target['open'];
  const close = own.close as Target['close'];
  if (open) out.open = (ctx: TargetContext) => then(next.open?.(ctx), () => open(ctx)) as MaybePromise<void>;
  if (close) out.close = () => then(close(), () => next.close?.()) as MaybePromise<void>;
  return contractChecked(out, name);
}

/**
 * `target` under `layers`, the first nearest to the kernel (as the CLI's --filter options): in
 * `compose(disk, a, b)` a request meets a, then b, then disk.
 */
export function compose(target: Target, ...layers: FilterLayer[]): Composed {
  let t = contractChecked(target, 'target');
  for (let i = layers.length - 1; i >= 0; i--) {
    const l = layers[i];
    const [filter, config] = typeof l === 'function' ? [l, undefined] : l;
    t = layer(t, filter, config, `filter ${filter.name || i}`);
  }
  return t;
}
