#!/usr/bin/env node
// ublkit: the kublk-compatible command line; argv to commands, no logic here.
import { parseArgs, type CliArgs } from './args.js';
import { errnoOf } from '../errors.js';
import { out, err as errOut } from './out.js';

const USAGE = `usage: ublkit <command> [options] [backing files]
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
  help
modes: copy (default), -g get-data, -u user-copy, -z zero-copy, --auto_zc auto-buf-reg, --mode auto
`;

// Commands load lazily: the selftests run `list` in tight loops, and an emulated machine pays
// for every module a short command does not need (add pulls in the engine, targets, workers).
type Command = (a: CliArgs) => Promise<number>;
const admin = () => import('./commands/admin.js');
const COMMANDS: Record<string, () => Promise<Command>> = {
  add: async () => (await import('./commands/add.js')).add,
  recover: async () => (await import('./commands/add.js')).recover,
  del: async () => (await admin()).del,
  list: async () => (await admin()).list,
  features: async () => (await admin()).features,
  stop: async () => (await admin()).stop,
  quiesce: async () => (await admin()).quiesce,
  update_size: async () => (await admin()).updateSize,
};

async function main(argv: string[]): Promise<number> {
  const cmd = argv[0];
  if (cmd === 'help' || cmd === '--help' || cmd === '-h') {
    out(USAGE);
    return 0;
  }
  const load = cmd ? COMMANDS[cmd] : undefined;
  if (!load) {
    errOut(cmd ? `ublkit: unknown command '${cmd}'\n` : 'ublkit: no command given\n');
    out(USAGE);
    return -errnoOf('EINVAL');
  }
  const args = parseArgs(argv);
  return (await load())(args);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code & 0xff;
  },
  (err: Error & { errno?: number }) => {
    errOut(`ublkit: ${err.message}\n`);
    process.exitCode = err.errno ? -err.errno & 0xff : 1;
  },
);
