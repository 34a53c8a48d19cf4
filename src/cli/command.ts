// A command of the CLI: its usage text (`ublkit help CMD`, `ublkit CMD --help`) and what it does.
import type { CliArgs } from './args.js';

export interface Command {
  usage: string;
  /** The exit status, as kublk's main() returns it (negative errnos are truncated to 8 bits). */
  run(a: CliArgs): Promise<number>;
}
