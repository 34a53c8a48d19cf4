// fault_inject's command line: no files, --delay_us N, --die_during_fetch 1.
import { noFiles, type TargetCli } from '../target-cli.js';

export const faultInjectCli: TargetCli = {
  name: 'fault_inject',
  module: 'ublkit:fault_inject',
  options: {
    delay_us: { what: 'delay in microseconds' },
    die_during_fetch: { what: 'die during fetch' },
  },
  usage: 'fault_inject: no files; --delay_us N (each IO waits N us), --die_during_fetch 1 (the server kills itself while starting)',
  config(i) {
    noFiles(i, 'fault_inject');
    return { delayUs: i.opts.delay_us ?? 0, dieDuringFetch: (i.opts.die_during_fetch ?? 0) > 0 };
  },
};
