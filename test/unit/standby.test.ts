// Serving threads started ahead of their device: ones never taken neither keep the process alive
// nor outlive dropStandby, and one told to stop before it got work ends cleanly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const crew = new URL('../../src/ublk/crew.js', import.meta.url).href;
const targets = new URL('../../src/targets/builtin.js', import.meta.url).href;

/** Runs `body` (an ES module using `crew`) in a fresh node; returns its status and output. */
function run(body: string): { status: number | null; out: string } {
  // A file, not `-e`: worker threads inherit the parent's execArgv, and `-e` would make them fail.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ublkit-standby-'));
  try {
    const file = path.join(dir, 'main.mjs');
    fs.writeFileSync(file, `import * as crew from ${JSON.stringify(crew)};\n${body}\n`);
    const r = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 30_000 });
    return { status: r.status, out: `${r.stdout}${r.stderr}` };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('threads started ahead and never taken do not keep the process alive', () => {
  const r = run(`
    crew.prestartWorkers(2, ${JSON.stringify(targets)});
    setTimeout(() => console.log('left'), 200);`);
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /left/);
});

test('dropStandby ends every thread started ahead, loaded or not', () => {
  const r = run(`
    import { setTimeout as sleep } from 'node:timers/promises';
    crew.prestartWorkers(3, ${JSON.stringify(targets)});
    await sleep(500);
    crew.dropStandby();
    crew.prestartWorkers(1);
    crew.dropStandby();
    console.log('dropped');`);
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /dropped/);
  assert.doesNotMatch(r.out, /Error|warning/i);
});
