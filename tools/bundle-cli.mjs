// Bundles the CLI into CommonJS files beside the tsc output in dist/src/cli/:
//   ublkit.cjs  the `ublkit` bin: short commands and the parent side of add/recover (no engine)
//   daemon.cjs  the serving daemon add/recover fork: engine, targets, control
//   worker.cjs  a serving thread of the daemon (one per queue, or per --nthreads)
//   targets.cjs the built-in target catalogue, which each worker thread loads beside it
//
// Why: the kernel selftests call `kublk list` in polling loops and add devices by the dozen, and in
// the TCG guest every ES module a start-up resolves, reads (through libuv's thread pool) and
// compiles, plus Node's ESM loader itself, costs tens of milliseconds, in the CLI, the daemon and
// again in every worker thread. One CommonJS file per process or thread loads through the CJS
// loader that Node's start-up snapshot already holds. The tsc output (dist/src/**.js) stays the
// library and a fallback: each file finds its peers through the __UBLKIT_* names defined here.
import { build } from 'esbuild';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'dist/src/cli');
const bundles = [
  ['dist/src/cli/main.js', 'ublkit.cjs'],
  ['dist/src/cli/daemon.js', 'daemon.cjs'],
  ['dist/src/ublk/worker.js', 'worker.cjs'],
  ['dist/src/targets/builtin.js', 'targets.cjs'],
];
await Promise.all(bundles.map(([entry, file]) => build({
  entryPoints: [path.join(root, entry)],
  outfile: path.join(out, file),
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  define: {
    // import.meta.url inside a bundle: the bundle's own URL (native.js finds the addon from there).
    'import.meta.url': '__ublkitBundleUrl',
    // Peers, relative to the bundle (all sit in dist/src/cli/).
    __UBLKIT_DAEMON__: '"./daemon.cjs"',
    __UBLKIT_WORKER__: '"./worker.cjs"',
    __UBLKIT_TARGETS__: '"./targets.cjs"',
  },
  banner: { js: "const __ublkitBundleUrl = require('node:url').pathToFileURL(__filename).href;" },
  logLevel: 'warning',
})));
