// npm install hook: use the prebuilt addon when it loads here, else build from source; one line when neither can work.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const truthy = (v) => v !== undefined && v !== '' && v !== 'false' && v !== '0';

/** Why the shipped prebuild cannot serve this machine, or null when it loads. */
function prebuildProblem() {
  // Only prebuilds/ counts here: a build/ left by an earlier build must not stop a rebuild.
  process.env.PREBUILDS_ONLY = '1';
  let file;
  try {
    file = require('node-gyp-build').resolve(root);
  } catch {
    return `no prebuilt addon for ${process.platform}-${process.arch}`;
  } finally {
    delete process.env.PREBUILDS_ONLY;
  }
  try {
    require(file);
    return null;
  } catch (err) {
    // Typically an older glibc than the one the prebuild was linked against.
    return `the prebuilt addon does not load here (${String(err?.message ?? err).split('\n')[0]})`;
  }
}

function onPath(name) {
  if (name.includes('/')) return fs.existsSync(name);
  return (process.env.PATH ?? '').split(':').some((dir) => {
    try {
      fs.accessSync(path.join(dir || '.', name), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** The tools node-gyp needs that this machine lacks. gyp's make files link with the C++ driver. */
function missingTools() {
  const first = (v, dflt) => (v ? v.trim().split(/\s+/)[0] : dflt);
  const need = [
    ['make', ['make']],
    ['a C compiler', [first(process.env.CC, 'cc'), 'gcc']],
    ['a C++ compiler driver', [first(process.env.CXX, 'c++'), 'g++']],
    ['python3', [process.env.npm_config_python || process.env.PYTHON || 'python3', 'python']],
  ];
  return need.filter(([, names]) => !names.some(onPath)).map(([what]) => what);
}

function main() {
  const forced = truthy(process.env.npm_config_build_from_source);
  const why = forced ? 'npm_config_build_from_source is set' : prebuildProblem();
  if (why === null) return 0;
  const missing = missingTools();
  if (missing.length) {
    console.error(`ublkit: ${why}, and building the addon needs ${missing.join(', ')}: ` +
      `install them (Debian/Ubuntu: apt-get install build-essential python3) and run 'npm rebuild ublkit'`);
    return 1;
  }
  const gyp = process.env.npm_config_node_gyp;
  const [cmd, args] = gyp ? [process.execPath, [gyp, 'rebuild']] : ['node-gyp', ['rebuild']];
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.error) {
    console.error(`ublkit: ${why}, and node-gyp could not be started (${r.error.message}): run 'npm rebuild ublkit'`);
    return 1;
  }
  return r.status ?? 1;
}

process.exitCode = main();
