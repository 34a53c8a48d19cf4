// nbd's command line: --unix PATH or --host HOST [--port N], --export NAME, --connections N, --timeout SEC.
import type { TargetCli } from '../target-cli.js';
import { UblkError } from '../../errors.js';

export const nbdCli: TargetCli = {
  name: 'nbd',
  module: 'ublkit:nbd',
  options: {
    unix: { what: 'unix socket path', text: true },
    host: { what: 'NBD server host', text: true },
    export: { what: 'export name', text: true },
    port: { what: 'TCP port', min: 1, max: 65535 },
    connections: { what: 'connections per serving thread', min: 1, max: 16 },
    timeout: { what: 'request timeout in seconds', min: 1, max: 86400 },
  },
  usage: 'nbd: no files; --unix PATH | --host HOST [--port 10809]; [--export NAME] [--connections N] [--timeout SEC (30)]',
  config(i) {
    if (i.files.length) throw new UblkError('EINVAL', `nbd target takes no backing files, got ${i.files.join(' ')}`);
    const { unix, host } = i.texts;
    if ((unix === undefined) === (host === undefined)) throw new UblkError('EINVAL', 'nbd target needs exactly one of --unix PATH or --host HOST');
    if (unix !== undefined && i.opts.port !== undefined) throw new UblkError('EINVAL', 'nbd: --port goes with --host, not --unix');
    if (i.size) throw new UblkError('EINVAL', 'nbd: the size comes from the server: drop --size');
    return {
      unix, host, port: i.opts.port, export: i.texts.export ?? '', connections: i.opts.connections, timeout: i.opts.timeout,
    };
  },
};
