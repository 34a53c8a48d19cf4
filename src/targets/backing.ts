// Opening backing files so that every open lands on the same file: prepare() records the file's
// identity (device + inode) and each later open (the main thread's and every worker's create())
// must find it again, so a path swapped between opens (symlink, rename) cannot redirect IO.
import * as fs from 'node:fs';
import { UblkError } from '../errors.js';

/** `dev:ino` of an open file; strings, because inode numbers may pass 2^53 and configs are cloned. */
export function identityOf(fd: number): string {
  const st = fs.fstatSync(fd, { bigint: true });
  return `${st.dev}:${st.ino}`;
}

/** Throws (closing `fd`) unless `fd` is the file recorded as `want`; no record, no check. */
export function checkIdentity(fd: number, file: string, want: string | undefined, what = 'backing file'): void {
  if (want === undefined || identityOf(fd) === want) return;
  fs.closeSync(fd);
  throw new UblkError('ESTALE', `${what} ${file} is no longer the file opened at start-up (path replaced): refusing to serve it`);
}

/** One-line reason an open failed. */
export function describeOpenError(err: unknown, file: string, what = 'backing file'): UblkError {
  const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
  const why = code === 'ENOENT' ? 'does not exist'
    : code === 'EACCES' || code === 'EPERM' || code === 'EROFS' ? 'is not readable and writable by this user'
    : code === 'EISDIR' ? 'is a directory'
    : `cannot be opened (${code})`;
  return new UblkError(code, `${what} ${file} ${why}`);
}

/**
 * Opens `file` with O_DIRECT when its file system allows (else buffered, or buffered only with
 * `buffered`), and checks its identity against `want`.
 */
export function openBacking(
  file: string, opts: { readOnly?: boolean; buffered?: boolean; want?: string; what?: string },
): { fd: number; direct: boolean } {
  const what = opts.what ?? 'backing file';
  const base = opts.readOnly ? fs.constants.O_RDONLY : fs.constants.O_RDWR;
  let fd = -1;
  let direct = false;
  if (!opts.buffered) {
    try {
      fd = fs.openSync(file, base | fs.constants.O_DIRECT);
      direct = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw describeOpenError(err, file, what);
    }
  }
  if (fd < 0) {
    try {
      fd = fs.openSync(file, base);
    } catch (err) {
      throw describeOpenError(err, file, what);
    }
  }
  checkIdentity(fd, file, opts.want, what);
  return { fd, direct };
}
