// ublkit help [COMMAND]: the overview, or one command's usage.
import { errnoOf } from '../../errors.js';
import type { CliArgs } from '../args.js';
import { out, err as errOut } from '../out.js';
import type { Command } from '../command.js';

export const usage = `usage: ublkit help [COMMAND]
Print the overview, or the usage of COMMAND (also: ublkit COMMAND --help).
`;

export const OVERVIEW = `usage: ublkit <command> [options] [backing files]
commands:
  add -t {null|memory|loop|stripe|fault_inject} [-n ID] [-q QUEUES] [-d DEPTH] [-z|--auto_zc|-u|-g|--mode M]
      [--nthreads N [--per_io_tasks]] [-r 1|-e 1|-i 1] [--foreground] [--quiet] [--size SIZE] [FILE...]
      stripe: --chunk_size N, 1-4 files; fault_inject: --delay_us N, --die_during_fetch 1
  recover -n ID [the add options]
  del -n ID | -a | --orphans
  list [-n ID] [--json]
  features
  stop -n ID [--safe]
  quiesce -n ID
  update_size -n ID -s BYTES
  set_params [-n ID] [-q N] [-d DEPTH] [-u] [--zoned] [--param_types basic[,zoned]|none] [param values]
  stats -n ID [--json] [--watch SEC]
  top
  help [COMMAND]
modes: copy (default), -g get-data, -u user-copy, -z zero-copy, --auto_zc auto-buf-reg, --mode auto
'ublkit help COMMAND' or 'ublkit COMMAND --help' for a command's options; 'ublkit --version'.
`;

/** The help command over the CLI's table of commands (`find` looks one up by name). */
export function helpCommand(find: (name: string) => (() => Promise<Command>) | undefined): Command {
  return {
    usage,
    async run(a: CliArgs): Promise<number> {
      const topic = a.files[0];
      if (topic === undefined) {
        out(OVERVIEW);
        return 0;
      }
      const load = find(topic);
      if (!load) {
        errOut(`ublkit: no such command '${topic}'\n`);
        return -errnoOf('EINVAL');
      }
      out((await load()).usage);
      return 0;
    },
  };
}
