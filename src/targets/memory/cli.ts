// memory's command line: no files, --size required, never recoverable.
import { noFiles, type TargetCli } from '../target-cli.js';
import { UblkError } from '../../errors.js';

export const memoryCli: TargetCli = {
  name: 'memory',
  module: 'ublkit:memory',
  options: {},
  usage: 'memory: no files; --size SIZE (required)',
  config(i) {
    noFiles(i, 'memory');
    // The disk lives in the server's memory and dies with it: a "recovered" memory disk would come
    // back zeroed under a client that trusts its old contents.
    if (i.command === 'recover') throw new UblkError('EINVAL', 'the memory target cannot be recovered: its data died with the server that held it');
    if (i.recoverable) {
      throw new UblkError('EINVAL', '-r/-i/-e: the memory target cannot be recovered (its data lives only in the server); drop the recovery options');
    }
    if (!i.size) throw new UblkError('EINVAL', 'memory target needs --size (e.g. --size 1G)');
    return { size: i.size };
  },
};
