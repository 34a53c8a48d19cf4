// null's command line: no files, --size (default 250 GiB), optional integrity format.
import { noFiles, type TargetCli } from '../target-cli.js';

export const nullCli: TargetCli = {
  name: 'null',
  module: 'ublkit:null',
  options: {},
  usage: 'null: no files; --size SIZE (default 250G)',
  config(i) {
    noFiles(i, 'null');
    return { size: i.size, integrity: i.integrity };
  },
};
