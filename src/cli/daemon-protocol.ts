// What the parent of add / recover and the daemon it forks share: the pipe's name and its report lines.

/** The environment variable naming the daemon's report pipe (an fd number). */
export const DAEMON_FD_ENV = 'UBLKIT_DAEMON_FD';

export type Launch = 'add' | 'recover';

/** One JSON line the daemon writes to the parent: progress, a warning, or the outcome. */
export type DaemonReport =
  | { event: 'added'; id: number }
  | { event: 'log'; message: string }
  | { ok: boolean; id?: number; error?: string; listing?: string };
