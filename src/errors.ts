// UblkError and the one place where thrown things become negative errnos for the kernel.
import { constants as osConstants } from 'node:os';

const errnoNames = new Map<number, string>(
  Object.entries(osConstants.errno).map(([name, num]) => [num as number, name]),
);

/** Positive errno for a symbolic name such as 'EIO'. */
export function errnoOf(name: string): number {
  const n = (osConstants.errno as Record<string, number>)[name];
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

/** Turn anything a target threw into a negative errno; unknown errors become -EIO. */
export function toNegErrno(err: unknown): number {
  if (err && typeof err === 'object') {
    const e = err as { errno?: unknown; code?: unknown };
    if (typeof e.errno === 'number' && e.errno !== 0) return -Math.abs(e.errno);
    if (typeof e.code === 'string') {
      const n = (osConstants.errno as Record<string, number>)[e.code];
      if (n) return -n;
    }
  }
  return -errnoOf('EIO');
}
