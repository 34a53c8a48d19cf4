#!/usr/bin/env node
// npm run demo: make a ublkit loop device, format, mount, write, list, remove (in the VM if needed).
import { spawnSync, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
if (!fs.existsSync('/dev/ublk-control')) {
  console.log('no ublk_drv on this host: running the demo in the VM (tools/vm/run.mjs)');
  const r = spawnSync(process.execPath, ['tools/vm/run.mjs', '--timeout', '600', '--', process.execPath, 'tools/demo.mjs'], { cwd: root, stdio: 'inherit' });
  process.exit(r.status ?? 1);
}

const cli = path.join(root, 'dist/src/cli/ublkit.cjs');
const step = (title, cmd, args) => {
  console.log(`\n$ ${[cmd, ...args].join(' ')}   # ${title}`);
  const out = execFileSync(cmd, args, { encoding: 'utf8' });
  if (out) process.stdout.write(out);
  return out;
};
const work = fs.mkdtempSync(path.join(os.homedir(), 'ublkit-demo-'));
const img = path.join(work, 'disk.img');
const mnt = path.join(work, 'mnt');
fs.mkdirSync(mnt);
step('a 256 MiB sparse backing file', 'truncate', ['-s', '256M', img]);
const out = step('serve it as a block device (zero copy where the kernel has it)', process.execPath, [cli, 'add', '-t', 'loop', '-q', '2', '--mode', 'auto', img]);
const id = /^dev id (\d+)/m.exec(out)[1];
const dev = `/dev/ublkb${id}`;
try {
  step('the device as JSON', process.execPath, [cli, 'list', '-n', id, '--json']);
  step('format it', 'mkfs.ext4', ['-q', '-F', dev]);
  step('mount it', 'mount', [dev, mnt]);
  step('write a file', 'dd', ['if=/dev/urandom', `of=${mnt}/hello.bin`, 'bs=1M', 'count=16', 'status=none']);
  step('and a checksum', 'sha256sum', [`${mnt}/hello.bin`]);
  step('what the kernel sees', 'df', ['-h', mnt]);
  step('unmount', 'umount', [mnt]);
} finally {
  step('remove the device; the data stays in the file', process.execPath, [cli, 'del', '-n', id]);
}
step('no ublk block devices left', 'sh', ['-c', 'ls /dev/ublk* || true']);
fs.rmSync(work, { recursive: true, force: true });
console.log('\ndemo done');
