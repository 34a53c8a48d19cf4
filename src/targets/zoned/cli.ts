// zoned's command line: no files, --size and --zone_size required, zone counts and limits optional.
import { noFiles, type TargetCli } from '../target-cli.js';
import { UblkError } from '../../errors.js';

export const zonedCli: TargetCli = {
  name: 'zoned',
  module: 'ublkit:zoned',
  options: {
    zone_size: { what: 'zone size', text: true },
    conventional: { what: 'conventional zone count', min: 0 },
    max_open: { what: 'max open zones', min: 0 },
    max_active: { what: 'max active zones', min: 0 },
  },
  usage: 'zoned: no files; --size SIZE --zone_size SIZE (required; needs -u) [--conventional N] [--max_open N] [--max_active N]',
  config(i) {
    noFiles(i, 'zoned');
    if (i.recoverable || i.command === 'recover') throw new UblkError('EINVAL', 'the zoned target cannot be recovered: its data lives only in the server');
    if (!i.size || !i.texts.zone_size) throw new UblkError('EINVAL', 'zoned target needs --size and --zone_size (e.g. --size 64M --zone_size 4M)');
    return { size: i.size, zoneSize: i.texts.zone_size, conventional: i.opts.conventional, maxOpen: i.opts.max_open, maxActive: i.opts.max_active };
  },
};
