// stripe's command line: 1-4 files, --chunk_size N (checked by the target: a power of 2, 4 KiB-512 KiB).
import type { TargetCli } from '../target-cli.js';

export const stripeCli: TargetCli = {
  name: 'stripe',
  module: 'ublkit:stripe',
  options: { chunk_size: { what: 'stripe chunk size' } },
  usage: 'stripe: 1-4 FILEs of equal size; --chunk_size N (default 65536)',
  config: (i) => ({ files: i.files, chunkSize: i.opts.chunk_size ?? 65536 }),
};
