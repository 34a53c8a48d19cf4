// The serving daemon `ublkit add` / `recover` forks (argv: the same command line), reporting to the
// parent through the pipe fd named by UBLKIT_DAEMON_FD. Bundled as dist/src/cli/daemon.cjs.
import { writeSync, closeSync } from 'node:fs';
import { parseArgs } from './args.js';
import { launchOptions } from './add-options.js';
import { DAEMON_FD_ENV, type Launch } from './daemon-protocol.js';
import type { DeviceOptions } from '../ublk/device-options.js';
import { runDaemon } from './serve.js';

async function main(argv: string[]): Promise<number> {
  const fd = Number(process.env[DAEMON_FD_ENV]);
  const kind = argv[0] as Launch;
  if (!(fd >= 0) || (kind !== 'add' && kind !== 'recover')) {
    process.stderr.write('ublkit daemon: started by `ublkit add` or `ublkit recover` only\n');
    return 1;
  }
  delete process.env[DAEMON_FD_ENV];
  let a: ReturnType<typeof parseArgs>;
  let opts: DeviceOptions;
  try {
    a = parseArgs(argv);
    opts = launchOptions(a, kind);
  } catch (err) {
    // The parent waits on fd 3: what went wrong here must still reach the user of `add`.
    writeSync(fd, JSON.stringify({ ok: false, error: (err as Error).message }) + '\n');
    closeSync(fd);
    return 1;
  }
  return runDaemon(kind, a.number, opts, fd, a.quiet, a.log);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: Error) => {
    process.stderr.write(`ublkit daemon: ${err.message}\n`);
    process.exitCode = 1;
  },
);
