// The contract on what a target (or the file IO standing in for one) reports, written once.
import { ERRNO } from '../errors.js';

const EIO = -ERRNO.EIO;

/**
 * A READ/WRITE result for a request of `len` bytes: an integer 0..len of bytes done, or a negative
 * errno. Reporting more than was asked would hand the client memory nobody filled, and 0 bytes
 * done would have the kernel re-send the request forever: both become -EIO, as does anything that
 * is not an integer.
 */
export function countResult(v: unknown, len: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) return EIO;
  if (v < 0) return v;
  if (v > len || (v === 0 && len > 0)) return EIO;
  return v;
}

/** FLUSH, DISCARD, WRITE_ZEROES, integrity: a negative integer is an errno, anything else success (0). */
export function statusResult(v: unknown): number {
  return typeof v === 'number' && v < 0 && Number.isInteger(v) ? v : 0;
}

/** A transfer that must move all `len` bytes (copies into or out of the request): short is -EIO. */
export function wholeResult(v: unknown, len: number): number {
  const n = countResult(v, len);
  return n >= 0 && n < len ? EIO : n;
}
