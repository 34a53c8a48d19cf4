// Parses sizes such as 4096, '512M', '2G', '1T' (binary units).
import { UblkError } from '../errors.js';

const UNITS: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

export function parseSize(v: number | string): number {
  if (typeof v === 'number') return v;
  const m = /^(\d+)([kmgt]?)(i?b)?$/i.exec(v.trim());
  if (!m) throw new UblkError('EINVAL', `invalid size '${v}' (use bytes or a suffix K, M, G, T)`);
  const n = Number(m[1]) * UNITS[m[2].toLowerCase()];
  if (!Number.isSafeInteger(n)) throw new UblkError('EINVAL', `size '${v}' is too large`);
  return n;
}
