#!/usr/bin/env node
// ublkit: the kublk-compatible command line; a table of commands (src/cli/commands/<name>.ts,
// each with its usage text), argv to one of them, no logic here.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from './args.js';
import { errnoOf } from '../errors.js';
import { out, err as errOut } from './out.js';
import type { Command } from './command.js';
import { OVERVIEW, helpCommand } from './commands/help.js';

// Commands load lazily: the selftests run `list` in tight loops, and an emulated machine pays
// for every module a short command does not need (add pulls in the launch path and the targets'
// option declarations).
const COMMANDS: Record<string, () => Promise<Command>> = {
  add: () => import('./commands/add.js'),
  recover: () => import('./commands/recover.js'),
  del: () => import('./commands/del.js'),
  list: () => import('./commands/list.js'),
  features: () => import('./commands/features.js'),
  stop: () => import('./commands/stop.js'),
  quiesce: () => import('./commands/quiesce.js'),
  update_size: () => import('./commands/update-size.js'),
  set_params: () => import('./commands/set-params.js'),
  stats: () => import('./commands/stats.js'),
  top: () => import('./commands/top.js'),
  help: async () => helpCommand(findCommand),
};

function findCommand(name: string): (() => Promise<Command>) | undefined {
  return Object.prototype.hasOwnProperty.call(COMMANDS, name) ? COMMANDS[name] : undefined;
}

/** The version in the package.json of the package this file belongs to (tsc output or bundle). */
function version(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++, dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'ublkit' && pkg.version) return pkg.version;
    } catch { /* not here */ }
  }
  return 'unknown';
}

async function main(argv: string[]): Promise<number> {
  if (argv[0] === '--version' || argv[0] === '-V') {
    out(`ublkit ${version()}\n`);
    return 0;
  }
  if (argv[0] === '--help' || argv[0] === '-h') argv = ['help', ...argv.slice(1)];
  const cmd = argv[0];
  const load = cmd === undefined ? undefined : findCommand(cmd);
  if (!load) {
    errOut(cmd ? `ublkit: unknown command '${cmd}'\n` : 'ublkit: no command given\n');
    out(OVERVIEW);
    return -errnoOf('EINVAL');
  }
  const args = parseArgs(argv);
  const command = await load();
  if (args.help) {
    out(command.usage);
    return 0;
  }
  return command.run(args);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code & 0xff;
  },
  (err: Error & { errno?: number }) => {
    errOut(`ublkit: ${err.message}\n`);
    process.exitCode = err.errno ? -err.errno & 0xff : 1;
  },
);
