// ublkit recover: a new server for a recoverable device whose server died or was quiesced.
import type { CliArgs } from '../args.js';
import { launch } from '../launch.js';
import { ADD_OPTIONS } from '../usage.js';

export const usage = `usage: ublkit recover -n ID -t TYPE [the options and files of the original add]
Attach a new server to a recoverable device (added with -r 1, -e 1 or -i 1) whose server died or
was quiesced. The options must match the original add.
${ADD_OPTIONS}
`;

export function run(a: CliArgs): Promise<number> {
  return launch(a, 'recover');
}
