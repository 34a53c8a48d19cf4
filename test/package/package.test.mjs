// The package as a user gets it: pack, install where no compiler is on PATH, import from ESM, CommonJS and TypeScript, run the CLI.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const version = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version;
const tuple = `${process.platform}-${process.arch}`;
const libc = process.report.getReport().header.glibcVersionRuntime ? 'glibc' : 'musl';
const prebuild = `prebuilds/${tuple}/node.napi.${libc}.node`;

let work;     // scratch directory, removed at the end
let bin;      // the only PATH of the installs: node, npm, npx and sh, no compiler, make or python
let app;      // an empty project with the tarball installed
let packed;   // npm pack --json: the tarball's file list
const pkgDir = () => path.join(app, 'node_modules', 'ublkit');

/** The environment without what an enclosing `npm test` sets, so that the inner npm is a user's. */
function cleanEnv(extra = {}) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
  return { ...env, ...extra };
}

function run(cmd, args, cwd, env) {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout: 300_000 });
  if (r.error) throw r.error;
  return r;
}

const userEnv = (extra = {}) => cleanEnv({ PATH: bin, npm_config_update_notifier: 'false', ...extra });
const npm = (args, cwd, env = userEnv()) => run(path.join(bin, 'npm'), args, cwd, env);
const show = (r) => `exit ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

/** A project directory with an empty package.json. */
function project(name) {
  const dir = path.join(work, name);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, private: true }));
  return dir;
}

function install(dir, tarball) {
  return npm(['install', '--prefer-offline', '--no-audit', '--no-fund', tarball], dir);
}

before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'ublkit-package-'));
  bin = path.join(work, 'bin');
  fs.mkdirSync(bin);
  for (const tool of ['node', 'npm', 'npx', 'sh']) {
    const found = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
    assert.ok(found, `${tool} not on PATH`);
    fs.symlinkSync(fs.realpathSync(found), path.join(bin, tool));
  }
  // Packing runs prepack (the prebuild, which needs the compiler) and prepare, as a release does.
  const r = run('npm', ['pack', '--json', '--pack-destination', work], root, cleanEnv());
  assert.equal(r.status, 0, show(r));
  [packed] = JSON.parse(r.stdout);
  app = project('app');
  const i = install(app, path.join(work, packed.filename));
  assert.equal(i.status, 0, show(i));
});

after(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

test('the tarball: prebuilt addon, sources to build from, LICENSE, examples, no tests or build output', () => {
  const files = packed.files.map((f) => f.path);
  for (const f of [prebuild, 'LICENSE', 'README.md', 'binding.gyp', 'native/ublkit.c', 'tools/install-addon.mjs',
    'examples/xor-file.ts', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/cli/ublkit.cjs']) {
    assert.ok(files.includes(f), `${f} missing from the tarball`);
  }
  assert.deepEqual(files.filter((f) => /^(build|dist\/test|test|src|tools\/vm)\//.test(f)), []);
  assert.ok(!fs.existsSync(path.join(root, 'prebuilds')), 'postpack left prebuilds/ in the working tree');
});

test('no source map without its sources', () => {
  const all = fs.readdirSync(pkgDir(), { recursive: true }).map(String);
  for (const f of all.filter((f) => f.endsWith('.js') || f.endsWith('.cjs'))) {
    const m = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(fs.readFileSync(path.join(pkgDir(), f), 'utf8'));
    if (m) assert.ok(fs.existsSync(path.join(pkgDir(), path.dirname(f), m[1])), `${f} points at ${m[1]}, not shipped`);
  }
  for (const f of all.filter((f) => f.endsWith('.map'))) {
    const map = JSON.parse(fs.readFileSync(path.join(pkgDir(), f), 'utf8'));
    for (const s of map.sources) {
      assert.ok(fs.existsSync(path.join(pkgDir(), path.dirname(f), map.sourceRoot ?? '', s)), `${f} points at ${s}, not shipped`);
    }
  }
});

test('package.json: licence, repository, engines that hold, exports with types', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir(), 'package.json'), 'utf8'));
  assert.equal(pkg.license, 'MIT');
  assert.match(fs.readFileSync(path.join(pkgDir(), 'LICENSE'), 'utf8'), /MIT License[\s\S]*the ublkit authors/);
  assert.match(pkg.repository.url, /github\.com\/ublkit\/ublkit/);
  assert.ok(pkg.homepage && pkg.bugs?.url);
  // require() of an ES module (how CommonJS users load ublkit) is unflagged from 20.19.
  assert.equal(pkg.engines.node, '>=20.19.0');
  assert.equal(pkg.exports['.'].types, './dist/src/index.d.ts');
  assert.equal(pkg.exports['./package.json'], './package.json');
});

test('installed with no compiler on PATH: the prebuilt addon is used and works', () => {
  assert.ok(!fs.existsSync(path.join(pkgDir(), 'build')), 'the addon was compiled at install');
  const require = createRequire(path.join(app, 'index.js'));
  const load = require('node-gyp-build');
  assert.equal(load.resolve(pkgDir()), path.join(pkgDir(), prebuild));
  assert.equal(typeof load(pkgDir()).gettid(), 'number');
});

test('the prebuild asks for glibc 2.33 at most, as the README promises', (t) => {
  const r = spawnSync('objdump', ['-T', path.join(pkgDir(), prebuild)], { encoding: 'utf8' });
  if (libc !== 'glibc' || r.status !== 0) return t.skip('no glibc prebuild, or no objdump here');
  const versions = [...r.stdout.matchAll(/GLIBC_(\d+)\.(\d+)/g)].map((m) => Number(m[1]) * 1000 + Number(m[2]));
  assert.ok(versions.length > 0, r.stdout);
  assert.ok(Math.max(...versions) <= 2033, `needs GLIBC_${Math.floor(Math.max(...versions) / 1000)}.${Math.max(...versions) % 1000}`);
});

test('no addon that loads: the library says in one line how to get one', () => {
  // node-gyp-build looks in $UBLKIT_PREBUILD instead of the package when it is set.
  const r = run(path.join(bin, 'node'), ['--input-type=module', '-e',
    "import { Device } from 'ublkit';" +
    'try { await Device.create({ target: { size: 1 << 20, read: () => 0, write: () => 0 } }); }' +
    'catch (e) { console.log(e.message); }'], app, userEnv({ UBLKIT_PREBUILD: path.join(work, 'nowhere') }));
  assert.equal(r.status, 0, show(r));
  assert.match(r.stdout, /^ublkit: cannot load the native addon \(No native build was found for .*\); rebuild it with 'npm rebuild ublkit' .*\n$/);
});

test('ESM import', () => {
  const r = run(path.join(bin, 'node'), ['--input-type=module', '-e',
    "import { Device, UblkError, FileIo } from 'ublkit'; import pkg from 'ublkit/package.json' with { type: 'json' };" +
    "console.log(typeof Device, typeof FileIo, new UblkError('EIO') instanceof Error, pkg.name);"], app, userEnv());
  assert.equal(r.status, 0, show(r));
  assert.equal(r.stdout, 'function function true ublkit\n');
});

test('CommonJS require', () => {
  const r = run(path.join(bin, 'node'), ['-e',
    "const { Device, UblkError } = require('ublkit'); console.log(typeof Device, new UblkError('EIO') instanceof Error, require('ublkit/package.json').version);"],
  app, userEnv());
  assert.equal(r.status, 0, show(r));
  assert.equal(r.stdout, `function true ${version}\n`);
});

test('TypeScript: the README snippet and the shipped example type-check against the installed .d.ts', () => {
  fs.copyFileSync(path.join(pkgDir(), 'examples', 'xor-file.ts'), path.join(app, 'xor-file.ts'));
  fs.writeFileSync(path.join(app, 'main.ts'), [
    "import { Device, UblkError, type Target } from 'ublkit';",
    "import { create } from './xor-file.js';",
    'const disk = new Uint8Array(1 << 20);',
    'const target: Target = {',
    '  size: disk.byteLength,',
    '  read(buf, off) { buf.set(disk.subarray(off, off + buf.byteLength)); return buf.byteLength; },',
    '  write(buf, off) { disk.set(buf, off); return buf.byteLength; },',
    '};',
    'export async function demo(): Promise<string> {',
    '  const dev = await Device.create({ target, queues: 1, depth: 64 });',
    '  await dev.delete();',
    "  return dev.blockPath + String(create({ file: 'x', key: 1 }).size) + new UblkError('EIO').code;",
    '}',
    '',
  ].join('\n'));
  fs.writeFileSync(path.join(app, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, noEmit: true,
      // The package's own .d.ts are checked too; @types/node comes from the repo (no network here).
      skipLibCheck: false, types: ['node'], typeRoots: [path.join(root, 'node_modules', '@types')],
    },
    files: ['main.ts', 'xor-file.ts'],
  }));
  const r = run(path.join(bin, 'node'), [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', app], app, userEnv());
  assert.equal(r.status, 0, show(r));
});

test('npx ublkit --version', () => {
  const r = run(path.join(bin, 'npx'), ['--offline', 'ublkit', '--version'], app, userEnv());
  assert.equal(r.status, 0, show(r));
  assert.equal(r.stdout, `ublkit ${version}\n`);
});

test('npx ublkit features: one line and a failure where this host has no ublk', () => {
  const r = run(path.join(bin, 'npx'), ['--offline', 'ublkit', 'features'], app, userEnv());
  if (fs.existsSync('/dev/ublk-control')) {
    assert.equal(r.status, 0, show(r));
    return;
  }
  assert.notEqual(r.status, 0, show(r));
  const lines = (r.stdout + r.stderr).split('\n').filter(Boolean);
  assert.equal(lines.length, 1, show(r));
  assert.match(lines[0], /^ublkit: .*ublk_drv/);
});

test('no prebuild that fits and no compiler: the install fails with one line saying what to install', () => {
  // The same package without the prebuild (no prepack): what every user got before.
  const bare = path.join(work, 'bare');
  fs.mkdirSync(bare);
  const p = run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', bare], root, cleanEnv());
  assert.equal(p.status, 0, show(p));
  const dir = project('app-bare');
  const r = install(dir, path.join(bare, JSON.parse(p.stdout)[0].filename));
  assert.notEqual(r.status, 0, show(r));
  const ours = r.stderr.split('\n').filter((l) => l.includes('ublkit: '));
  assert.equal(ours.length, 1, show(r));
  assert.match(ours[0], new RegExp(`ublkit: no prebuilt addon for ${tuple}, and building the addon needs make, a C compiler.*` +
    `apt-get install build-essential python3.*npm rebuild ublkit`));
  assert.doesNotMatch(r.stderr, /gyp (ERR|info)/, 'node-gyp ran without a compiler');
});
