// -t nbd over a Ceph RBD image: a single-node cluster started here (tools/ceph/cluster.mjs), the
// image served by qemu-nbd's rbd driver; fio verify, then an ext4 round trip; all torn down after.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { kernelSkipReason, hasProgram, withCliDevice, fioVerify, sh, listJson, dmesgMark, dmesgProblems } from '../helpers/kernel.js';

const CLUSTER = fileURLToPath(new URL('../../../tools/ceph/cluster.mjs', import.meta.url));

function cephSkipReason(): string | undefined {
  const k = kernelSkipReason();
  if (k) return k;
  const r = spawnSync(process.execPath, ['-e', `import(${JSON.stringify(CLUSTER)}).then((m) => { const w = m.cephMissing(); if (w) { console.log(w); process.exit(1); } })`], { encoding: 'utf8' });
  if (r.status !== 0) return `Ceph is not installed (${(r.stdout || r.stderr).trim()}); run tools/vm/setup.sh`;
  if (!hasProgram('fio') || !hasProgram('mkfs.ext4')) return 'fio or mkfs.ext4 is not installed';
  return undefined;
}

const skip = cephSkipReason();

interface Cluster {
  dir: string;
  conf: string;
  sock: string;
  sizeBytes: number;
  seconds: number;
  steps: Record<string, number>;
}

function cluster(args: string[]): string {
  const r = spawnSync(process.execPath, [CLUSTER, ...args], { encoding: 'utf8', timeout: 900_000 });
  if (r.status !== 0) throw new Error(`cluster.mjs ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** Walks `root` into a sorted list of relative path -> sha256 (directories as 'dir'). */
function tree(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const r = path.join(rel, e.name);
      if (e.name === 'lost+found') continue;
      if (e.isDirectory()) {
        out.push(`${r} dir`);
        walk(r);
      } else out.push(`${r} ${createHash('sha256').update(fs.readFileSync(path.join(root, r))).digest('hex')}`);
    }
  };
  walk('');
  return out.sort();
}

test('ceph rbd via qemu-nbd: fio crc32c verify and an ext4 round trip on -t nbd', { skip, timeout: 1_500_000 }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ceph-'));
  const mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'ceph-mnt-'));
  const mark = dmesgMark('ceph');
  const t0 = Date.now();
  try {
    // No mgr unless UBLKIT_CEPH_MGR=1: under TCG it takes ~5 minutes to report PG states, and the
    // data path needs none (creating the image already needed its PGs active).
    const c: Cluster = JSON.parse(cluster(['start', dir, '--image-mib', '256', ...(process.env.UBLKIT_CEPH_MGR === '1' ? [] : ['--no-mgr'])]));
    t.diagnostic(`cluster up in ${c.seconds} s (${Object.entries(c.steps).map(([k, v]) => `${k} ${v}`).join(', ')})`);
    // A file tree: nested directories, sizes from empty to over a MiB, random contents.
    const src = fs.mkdtempSync(path.join(os.tmpdir(), 'ceph-src-'));
    for (let i = 0; i < 24; i++) {
      const d = path.join(src, `d${i % 4}`, `e${i % 3}`);
      fs.mkdirSync(d, { recursive: true });
      fs.writeFileSync(path.join(d, `f${i}.bin`), randomBytes(i === 0 ? 0 : (i * 53_000) % (1_300_000)));
    }
    const want = tree(src);
    const dev2 = ['-t', 'nbd', '--unix', c.sock, '-q', '2', '--connections', '2', '-d', '32'];
    try {
      let t1 = Date.now();
      await withCliDevice(dev2, (id, dev) => {
        assert.equal(listJson(id).sizeBytes, c.sizeBytes);
        fioVerify(dev, '16M');
        t.diagnostic(`fio verify 16 MiB: ${(Date.now() - t1) / 1000} s`);
        t1 = Date.now();
        sh('mkfs.ext4', ['-q', '-F', dev]);
        sh('mount', ['-t', 'ext4', dev, mnt]);
        try {
          sh('cp', ['-a', `${src}/.`, mnt]);
        } finally {
          sh('umount', [mnt]);
        }
        sh('fsck.ext4', ['-f', '-n', dev]);
      });
      // A new device on the same image: what it reads back lives in the cluster, not in a cache.
      await withCliDevice(['-t', 'nbd', '--unix', c.sock, '-q', '1'], (_id, dev) => {
        sh('mount', ['-t', 'ext4', '-o', 'ro', dev, mnt]);
        try {
          assert.deepEqual(tree(mnt), want);
        } finally {
          sh('umount', [mnt]);
        }
      });
      t.diagnostic(`ext4 round trip: ${(Date.now() - t1) / 1000} s`);
    } finally {
      fs.rmSync(src, { recursive: true, force: true });
    }
    assert.deepEqual(dmesgProblems(mark), []);
  } finally {
    const t2 = Date.now();
    cluster(['stop', dir]);
    t.diagnostic(`teardown ${(Date.now() - t2) / 1000} s; whole test ${(Date.now() - t0) / 1000} s`);
    fs.rmSync(mnt, { recursive: true, force: true });
  }
});
