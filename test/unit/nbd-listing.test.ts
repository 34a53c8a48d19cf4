// `list --json`'s backend field for nbd devices: read from the serving process's command line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { backendOf } from '../../src/cli/listing.js';

/** A process whose command line ends as a daemon's does; `body` gets its pid. */
async function withProcess(args: string[], body: (pid: number) => void): Promise<void> {
  const p = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)', ...args], { stdio: 'ignore' });
  try {
    body(p.pid!);
  } finally {
    p.kill('SIGKILL');
  }
}

test('backend of an nbd device: nbd+unix or nbd:// from the daemon\'s command line; other targets none', async () => {
  await withProcess(['add', '-t', 'nbd', '--unix', '/run/n.sock', '--export', 'disk', '-q', '1'], (pid) => assert.equal(backendOf(pid), 'nbd+unix:///disk?socket=/run/n.sock'));
  await withProcess(['recover', '-n', '3', '-t', 'nbd', '--host', '127.0.0.1', '--port', '10810'], (pid) => assert.equal(backendOf(pid), 'nbd://127.0.0.1:10810/'));
  await withProcess(['add', '-t', 'null', '--size', '1G'], (pid) => assert.equal(backendOf(pid), undefined));
  assert.equal(backendOf(2 ** 22 + 1), undefined);
});
