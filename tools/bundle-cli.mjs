// Bundles the CLI's short commands into one CommonJS file, dist/src/cli/ublkit.cjs (the `ublkit` bin).
//
// Why: the kernel selftests call `kublk list` in polling loops, and in the TCG guest every module
// an ESM start-up resolves, reads (through libuv's thread pool) and compiles, plus Node's own ESM
// loader, costs tens of milliseconds. One CommonJS file loads through the CJS loader that Node's
// start-up snapshot already holds. `add`/`recover` stay ES modules, loaded with import() from the
// tsc output beside the bundle: they need import.meta.url-relative worker and target modules, and
// they run once per device, not in loops.
import { build } from 'esbuild';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
await build({
  entryPoints: [path.join(root, 'dist/src/cli/main.js')],
  outfile: path.join(root, 'dist/src/cli/ublkit.cjs'),
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  external: ['./commands/add.js'],
  // import.meta.url inside the bundle: the bundle's own URL (native.js finds the addon from there).
  define: { 'import.meta.url': '__ublkitBundleUrl' },
  banner: { js: "const __ublkitBundleUrl = require('node:url').pathToFileURL(__filename).href;" },
  logLevel: 'warning',
});
