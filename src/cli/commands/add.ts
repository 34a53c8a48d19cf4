// ublkit add: create a device and serve it from a detached daemon (src/cli/launch.ts).
import type { CliArgs } from '../args.js';
import { launch } from '../launch.js';
import { ADD_OPTIONS } from '../usage.js';

export const usage = `usage: ublkit add -t TYPE [options] [FILE...]
Create a device and serve it from a detached daemon; prints the device once it is LIVE.
${ADD_OPTIONS}
`;

export function run(a: CliArgs): Promise<number> {
  return launch(a, 'add');
}
