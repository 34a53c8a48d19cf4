// loop's command line: one file (a second holds integrity data with --metadata_size), --buffered 1.
import type { TargetCli } from '../target-cli.js';
import { UblkError } from '../../errors.js';

export const loopCli: TargetCli = {
  name: 'loop',
  module: 'ublkit:loop',
  options: { buffered: { what: 'buffered IO' } },
  usage: 'loop: FILE (FILE PI-FILE with --metadata_size); --buffered 1 (page cache, no O_DIRECT)',
  config(i) {
    const md = i.integrity?.metadataSize;
    const want = md ? 2 : 1;
    if (i.files.length !== want) {
      throw new UblkError('EINVAL', md ? `loop with --metadata_size needs two files (data, integrity), got ${i.files.length}` : `loop target needs exactly one backing file, got ${i.files.length}`);
    }
    const config: Record<string, unknown> = { file: i.files[0], buffered: i.opts.buffered === 1 };
    const t = i.integrity;
    if (t) {
      Object.assign(config, {
        metaFile: i.files[1], metadataSize: t.metadataSize, piOffset: t.piOffset, csumType: t.csumType,
        tagSize: t.tagSize, integrityFlags: t.flags, initMeta: i.command !== 'recover',
      });
    }
    return config;
  },
};
