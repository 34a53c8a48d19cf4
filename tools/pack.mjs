// npm pack hooks: prepack puts a fresh addon in prebuilds/ and clears dist/src for prepare to rebuild; postpack deletes prebuilds/.
// So the repo stays source-only, and a tarball packed in a working tree carries no stale build output.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const prebuilds = path.join(root, 'prebuilds');

function run(cmd, args, cwd) {
  const r = spawnSync(cmd, args, { cwd, stdio: ['ignore', 2, 2] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.error?.message ?? `exit ${r.status}`})`);
}

/** node-gyp's script: the one npm runs scripts with, else the one npm bundles beside this node. */
function nodeGyp() {
  const gyp = process.env.npm_config_node_gyp ?? path.join(path.dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js');
  if (!fs.existsSync(gyp)) throw new Error(`node-gyp not found at ${gyp}: run this through 'npm pack'`);
  return gyp;
}

/** node-gyp-build's libc tag: musl has no glibc version in the process report. */
function libc() {
  return process.report.getReport().header.glibcVersionRuntime ? 'glibc' : 'musl';
}

function build() {
  fs.rmSync(prebuilds, { recursive: true, force: true });
  // A scratch copy, so that packing neither replaces nor reuses the developer's build/.
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ublkit-prebuild-'));
  try {
    fs.copyFileSync(path.join(root, 'binding.gyp'), path.join(tmp, 'binding.gyp'));
    fs.cpSync(path.join(root, 'native'), path.join(tmp, 'native'), { recursive: true });
    run(process.execPath, [nodeGyp(), 'rebuild'], tmp);
    const dir = path.join(prebuilds, `${process.platform}-${process.arch}`);
    // Node-API: one binary serves every Node version, so the name carries napi and libc, no ABI.
    const out = path.join(dir, `node.napi.${libc()}.node`);
    fs.mkdirSync(dir, { recursive: true });
    fs.copyFileSync(path.join(tmp, 'build', 'Release', 'ublkit.node'), out);
    console.error(`prebuilt ${path.relative(root, out)} (${fs.statSync(out).size} bytes)`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

const hook = process.argv[2];
if (hook === 'prepack') {
  build();
  // npm runs prepare (tsc and the CLI bundles) after prepack: files of sources since removed go.
  fs.rmSync(path.join(root, 'dist', 'src'), { recursive: true, force: true });
} else if (hook === 'postpack') {
  fs.rmSync(prebuilds, { recursive: true, force: true });
} else {
  console.error('usage: node tools/pack.mjs prepack|postpack');
  process.exitCode = 2;
}
