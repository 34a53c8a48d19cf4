#!/usr/bin/env node
// ublkit: the kublk-compatible command line; argv to commands, no logic here.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, type CliArgs } from './args.js';
import { errnoOf } from '../errors.js';
import { out, err as errOut } from './out.js';
import { OVERVIEW, commandUsage } from './usage.js';

// Commands load lazily: the selftests run `list` in tight loops, and an emulated machine pays
// for every module a short command does not need (add pulls in the engine, targets, workers).
type Command = (a: CliArgs) => Promise<number>;
const admin = () => import('./commands/admin.js');
const COMMANDS: Record<string, () => Promise<Command>> = {
  add: async () => (await import('./commands/add.js')).add,
  recover: async () => (await import('./commands/add.js')).recover,
  del: async () => (await admin()).del,
  list: async () => (await admin()).list,
  features: async () => (await admin()).features,
  stop: async () => (await admin()).stop,
  quiesce: async () => (await admin()).quiesce,
  update_size: async () => (await admin()).updateSize,
};

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
  const cmd = argv[0];
  if (cmd === '--version' || cmd === '-V') {
    out(`ublkit ${version()}\n`);
    return 0;
  }
  if (cmd === 'help' || cmd === '--help' || cmd === '-h') {
    const topic = cmd !== 'help' ? undefined : argv[1] === '--help' || argv[1] === '-h' ? 'help' : argv[1];
    const text = topic === undefined ? OVERVIEW : commandUsage(topic);
    if (text === undefined) {
      errOut(`ublkit: no such command '${topic}'\n`);
      return -errnoOf('EINVAL');
    }
    out(text);
    return 0;
  }
  const load = cmd && Object.prototype.hasOwnProperty.call(COMMANDS, cmd) ? COMMANDS[cmd] : undefined;
  if (!load) {
    errOut(cmd ? `ublkit: unknown command '${cmd}'\n` : 'ublkit: no command given\n');
    out(OVERVIEW);
    return -errnoOf('EINVAL');
  }
  const args = parseArgs(argv);
  if (args.help) {
    out(commandUsage(cmd!)!);
    return 0;
  }
  return (await load())(args);
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
