// The built-in targets' command-line declarations, collected for the CLI's option table and usage.
import type { TargetCli } from './target-cli.js';
import { nullCli } from './null/cli.js';
import { memoryCli } from './memory/cli.js';
import { loopCli } from './loop/cli.js';
import { stripeCli } from './stripe/cli.js';
import { faultInjectCli } from './fault-inject/cli.js';
import { nbdCli } from './nbd/cli.js';
import { zonedCli } from './zoned/cli.js';

export type { TargetCli, TargetCliInput, TargetOption } from './target-cli.js';
export const TARGET_CLI: readonly TargetCli[] = [nullCli, memoryCli, loopCli, stripeCli, faultInjectCli, nbdCli, zonedCli];
