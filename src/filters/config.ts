// Filter config values: numbers and sizes from the library, or the strings a --filter option gives.
import { UblkError } from '../errors.js';
import { parseSize } from '../targets/size.js';

export function num(v: unknown, what: string, dflt?: number): number {
  if (v === undefined || v === '') {
    if (dflt === undefined) throw new UblkError('EINVAL', `${what} is required`);
    return dflt;
  }
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isFinite(n) || n < 0) throw new UblkError('EINVAL', `${what} must be a non-negative number, got '${String(v)}'`);
  return n;
}

export function size(v: unknown, what: string, dflt?: number): number {
  if (v === undefined || v === '') {
    if (dflt === undefined) throw new UblkError('EINVAL', `${what} is required`);
    return dflt;
  }
  if (typeof v !== 'number' && typeof v !== 'string') throw new UblkError('EINVAL', `${what} must be a size, got '${String(v)}'`);
  try {
    const n = parseSize(v);
    if (Number.isSafeInteger(n) && n >= 0) return n;
  } catch { /* the message below names the option */ }
  throw new UblkError('EINVAL', `${what} must be a size in bytes or with K, M, G, T, got '${String(v)}'`);
}

export function oneOf<T extends string>(v: unknown, what: string, allowed: readonly T[], dflt: T): T {
  if (v === undefined || v === '') return dflt;
  if (typeof v === 'string' && (allowed as readonly string[]).includes(v)) return v as T;
  throw new UblkError('EINVAL', `${what} must be one of ${allowed.join(', ')}, got '${String(v)}'`);
}

/** A config object (or nothing), with no keys other than `known`: a typo is an error, not a no-op. */
export function keys(config: unknown, filter: string, known: readonly string[]): Record<string, unknown> {
  if (config === undefined || config === null) return {};
  if (typeof config !== 'object') throw new UblkError('EINVAL', `${filter} filter config must be an object`);
  for (const k of Object.keys(config)) {
    if (!known.includes(k)) throw new UblkError('EINVAL', `${filter} filter has no option '${k}' (options: ${known.join(', ') || 'none'})`);
  }
  return config as Record<string, unknown>;
}

/** The logical block size of `t`, in bytes. */
export const blockOf = (t: { limits?: { logicalBlockShift?: number } }): number => 1 << (t.limits?.logicalBlockShift ?? 9);
