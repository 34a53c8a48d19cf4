// Target catalogues: the engine finds targets only through the catalogue its caller passes in,
// and a worker thread can load the same catalogue again from its URL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Device, builtinTargets, type TargetCatalogue } from '../../src/index.js';
import { importCatalogue, loadTarget } from '../../src/target/catalogue.js';
import { localTarget } from '../../src/ublk/startup.js';

const SRC = fileURLToPath(new URL('../../../src/', import.meta.url));

test('src/ublk imports nothing from src/targets: the catalogue comes from the caller', () => {
  const dir = path.join(SRC, 'ublk');
  for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.ts'))) {
    const text = fs.readFileSync(path.join(dir, f), 'utf8');
    assert.doesNotMatch(text, /from '\.\.\/targets\/|import\('\.\.\/targets\//, f);
  }
});

test('a built-in name without a catalogue is refused in one line, before any device exists', async () => {
  await assert.rejects(loadTarget('ublkit:null'), /^UblkError: target 'ublkit:null' is a built-in name: pass the catalogue that has it/);
  await assert.rejects(Device.create({ target: { module: 'ublkit:null' }, queues: 1, depth: 4 }), /built-in name/);
});

test('the built-in catalogue: every target by name, and the same catalogue again from its URL', async () => {
  const names = Object.keys(builtinTargets.targets).sort();
  assert.deepEqual(names, ['ublkit:fault_inject', 'ublkit:loop', 'ublkit:memory', 'ublkit:nbd', 'ublkit:null', 'ublkit:stripe', 'ublkit:zoned']);
  for (const n of names) assert.equal(typeof (await loadTarget(n, builtinTargets)).create, 'function', n);
  const again = await importCatalogue(builtinTargets.url);
  assert.deepEqual(Object.keys(again.targets).sort(), names);
  const local = await localTarget({ target: { module: 'ublkit:null', config: { size: 1 << 20 } }, targets: builtinTargets });
  assert.equal(local.target.size, 1 << 20);
  // The CLI bundle's catalogue, which the daemon's worker threads load with require().
  const bundle = fileURLToPath(new URL('../../src/cli/targets.cjs', import.meta.url));
  if (fs.existsSync(bundle)) {
    const b = await importCatalogue(pathToFileURL(bundle).href);
    assert.deepEqual(Object.keys(b.targets).sort(), names);
    assert.equal(b.url, pathToFileURL(bundle).href, 'the bundled catalogue names itself, not the daemon');
  }
});

test('a caller\'s own catalogue: its names win, and importCatalogue (what a worker runs) finds it by URL', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ublkit-cat-'));
  const file = path.join(dir, 'my-catalogue.mjs');
  fs.writeFileSync(file, `export const catalogue = {
  url: import.meta.url,
  targets: { tiny: async () => ({ create: (c) => ({ size: c.size, read: (b) => b.byteLength, write: (b) => b.byteLength }) }) },
};\n`);
  const url = pathToFileURL(file).href;
  const mine = await importCatalogue(url);
  assert.equal(mine.url, url);
  const local = await localTarget({ target: { module: 'tiny', config: { size: 8192 } }, targets: mine as TargetCatalogue });
  assert.equal(local.target.size, 8192);
  assert.equal(local.spec?.module, 'tiny');
  // Names the catalogue lacks are imported as module URLs, as without a catalogue.
  const viaUrl = await loadTarget(new URL('../../src/targets/null/index.js', import.meta.url).href, mine);
  assert.equal(typeof viaUrl.create, 'function');
  fs.writeFileSync(path.join(dir, 'none.mjs'), 'export const x = 1;\n');
  await assert.rejects(importCatalogue(pathToFileURL(path.join(dir, 'none.mjs')).href), /exports no target catalogue named 'catalogue'/);
  fs.rmSync(dir, { recursive: true });
});
