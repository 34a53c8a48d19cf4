#!/usr/bin/env node
// ublkit: the kublk-compatible command line; argv to commands, no logic here.
import { parseArgs } from './args.js';
import { add, recover } from './commands/add.js';
import { del, list, features, stop, quiesce, updateSize } from './commands/admin.js';
import { errnoOf } from '../errors.js';
import { TARGET_NAMES } from './targets.js';

const USAGE = `usage: ublkit <command> [options] [backing files]
commands:
  add -t {${TARGET_NAMES.join('|')}} [-n ID] [-q QUEUES] [-d DEPTH] [-z|--auto_zc|-u|-g|--mode M]
      [--nthreads N [--per_io_tasks]] [-r 1|-e 1|-i 1] [--foreground] [--quiet] [--size SIZE] [FILE...]
      stripe: --chunk_size N, 1-4 files; fault_inject: --delay_us N, --die_during_fetch 1
  recover -n ID [the add options]
  del -n ID | -a
  list [-n ID] [--json]
  features
  stop -n ID [--safe]
  quiesce -n ID
  update_size -n ID -s BYTES
  help
modes: copy (default), -g get-data, -u user-copy, -z zero-copy, --auto_zc auto-buf-reg, --mode auto
`;

const COMMANDS: Record<string, (a: ReturnType<typeof parseArgs>) => Promise<number>> = {
  add, recover, del, list, features, stop, quiesce, update_size: updateSize,
};

async function main(argv: string[]): Promise<number> {
  const cmd = argv[0];
  if (cmd === 'help' || cmd === '--help' || cmd === '-h') {
    process.stdout.write(USAGE);
    return 0;
  }
  const run = cmd ? COMMANDS[cmd] : undefined;
  if (!run) {
    process.stderr.write(cmd ? `ublkit: unknown command '${cmd}'\n` : 'ublkit: no command given\n');
    process.stdout.write(USAGE);
    return -errnoOf('EINVAL');
  }
  return run(parseArgs(argv));
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code & 0xff;
  },
  (err: Error & { errno?: number }) => {
    process.stderr.write(`ublkit: ${err.message}\n`);
    process.exitCode = err.errno ? -err.errno & 0xff : 1;
  },
);
