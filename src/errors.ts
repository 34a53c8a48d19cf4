// UblkError and the one place where thrown things become negative errnos for the kernel.
import { constants as osConstants } from 'node:os';

/**
 * The errno table: Linux's names and numbers (Node's, for the platform it runs on). Every errno
 * ublkit names, prints or hands to the kernel goes through it; code on the hot path takes its
 * constants from here once, at load (e.g. `-ERRNO.EIO`), never a literal.
 */
export const ERRNO: Readonly<Record<string, number>> = osConstants.errno as Record<string, number>;

const errnoNames = new Map<number, string>(Object.entries(ERRNO).map(([name, num]) => [num, name]));

/** Positive errno for a symbolic name such as 'EIO'. */
export function errnoOf(name: string): number {
  const n = ERRNO[name];
  if (n === undefined) throw new TypeError(`unknown errno name ${name}`);
  return n;
}

/** Symbolic name for a positive or negative errno, e.g. -19 -> 'ENODEV'. */
export function errnoName(errno: number): string {
  return errnoNames.get(Math.abs(errno)) ?? `E${Math.abs(errno)}`;
}

/** An error that carries the errno the kernel should see (code 'EIO', errno 5). */
export class UblkError extends Error {
  readonly code: string;
  readonly errno: number;
  constructor(code: string, message?: string) {
    super(message ?? code);
    this.name = 'UblkError';
    this.code = code;
    this.errno = errnoOf(code);
  }
  /** Wrap a negative kernel result, e.g. from a CQE, naming what failed. */
  static fromResult(res: number, what: string): UblkError {
    const name = errnoName(res);
    return new UblkError(name, `${what}: ${name}`);
  }
}

/**
 * Turn anything a target threw (or rejected with) into a negative errno: a UblkError's errno, a
 * Node system error's errno or code; anything else becomes -EIO.
 */
export function toNegErrno(err: unknown): number {
  if (err && typeof err === 'object') {
    const e = err as { errno?: unknown; code?: unknown };
    if (typeof e.errno === 'number' && e.errno !== 0) return -Math.abs(e.errno);
    if (typeof e.code === 'string') {
      const n = ERRNO[e.code];
      if (n) return -n;
    }
  }
  return -errnoOf('EIO');
}
