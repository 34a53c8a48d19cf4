// Whether a COMMIT may be linked behind file IO on this kernel (an io_uring quirk of older kernels).

/**
 * Whether this kernel's io_uring copies a uring_cmd's SQE when it is submitted. Before the fix in
 * Linux 6.14 (at least on 6.12), a uring_cmd linked behind IO that completes later (file IO handed
 * to io-wq) is issued after io_uring_enter has returned, and only then reads its SQE: by that time
 * the engine has reused the SQ slot, so the kernel runs whatever command the slot holds. Seen on
 * Debian's 6.12: a COMMIT linked behind a WRITE failed with -EBUSY (another tag's command); it may
 * as well commit another tag with a wrong result. So COMMITs are linked only from 6.14 on
 * (an unparsable release: not linked).
 */
export function kernelCopiesCmdSqe(release: string): boolean {
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (!m) return false;
  const major = Number(m[1]);
  const minor = Number(m[2]);
  return major > 6 || (major === 6 && minor >= 14);
}
