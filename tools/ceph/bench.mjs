#!/usr/bin/env node
// One pass of fio on the same RBD image through the kernel's rbd driver (krbd) and through ublkit
// -t nbd over qemu-nbd, on a throw-away cluster (cluster.mjs). Root, in the VM:
//   node tools/vm/run.mjs --timeout 1800 -- node tools/ceph/bench.mjs [--runtime SEC] [--queues N] [--no-mgr]
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { start, stop, cephMissing } from './cluster.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = path.join(ROOT, 'dist/src/cli/ublkit.cjs');
// Sequential writes first: reads of never-written RBD objects are answered without touching data.
const JOBS = [
  { name: 'write-1m', rw: 'write', bs: '1M', qd: 8 },
  { name: 'read-1m', rw: 'read', bs: '1M', qd: 8 },
  { name: 'randwrite-4k', rw: 'randwrite', bs: '4k', qd: 32 },
  { name: 'randread-4k', rw: 'randread', bs: '4k', qd: 32 },
];

function sh(cmd, args, timeoutS = 600) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutS * 1000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}): ${(r.stderr || r.stdout || '').trim()}`);
  return r.stdout;
}

/** `dev`: a block device, or fio engine options (string[]) for a device-less leg. */
function fio(dev, job, runtime, sizeMiB) {
  const target = Array.isArray(dev) ? dev : [`--filename=${dev}`, '--ioengine=io_uring', '--direct=1'];
  const text = sh('fio', ['--name', job.name, ...target, `--rw=${job.rw}`, `--bs=${job.bs}`, `--iodepth=${job.qd}`,
    `--size=${sizeMiB}M`, `--runtime=${runtime}`, '--time_based', '--output-format=json'], runtime + 300);
  // The nbd engine prints "fio: connected to NBD server" on stdout ahead of the JSON.
  const out = JSON.parse(text.slice(text.indexOf('{')));
  const j = out.jobs[0];
  const side = job.rw.includes('read') ? j.read : j.write;
  const cpu = (j.usr_cpu + j.sys_cpu) / 100;
  return { iops: Math.round(side.iops), mibs: Math.round((side.bw_bytes / 2 ** 20) * 10) / 10, clatUs: Math.round(side.clat_ns.mean / 1000), fioCpu: cpu };
}

function runJobs(label, dev, runtime, sizeMiB, results) {
  for (const job of JOBS) {
    const r = fio(dev, job, runtime, sizeMiB);
    results.push({ device: label, job: job.name, ...r });
    console.error(`${label.padEnd(22)} ${job.name.padEnd(13)} ${String(r.iops).padStart(7)} IOPS ${String(r.mibs).padStart(7)} MiB/s  mean clat ${r.clatUs} us`);
  }
}

async function main() {
  const { values: v } = parseArgs({ options: { runtime: { type: 'string', default: '10' }, queues: { type: 'string', default: '2' }, 'size-mib': { type: 'string', default: '128' }, 'no-mgr': { type: 'boolean' }, json: { type: 'string' } } });
  const runtime = Number(v.runtime);
  const sizeMiB = Number(v['size-mib']);
  const why = cephMissing();
  if (why) throw new Error(`cannot start Ceph: ${why}`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ceph-bench-'));
  const results = [];
  const notes = [];
  try {
    const c = await start(dir, { imageMiB: Math.max(256, sizeMiB), storeBytes: Math.max(1024, 2 * sizeMiB) * 2 ** 20, mgr: !v['no-mgr'] });
    console.error(`cluster up in ${c.seconds} s`);
    // krbd: noudev because the guest has no udev to announce the device.
    spawnSync('modprobe', ['rbd']);
    const map = spawnSync('rbd', ['-c', c.conf, 'device', 'map', c.image, '-o', 'noudev'], { encoding: 'utf8', timeout: 300_000 });
    if (map.status === 0) {
      const dev = map.stdout.trim();
      try {
        runJobs('krbd', dev, runtime, sizeMiB, results);
      } finally {
        spawnSync('rbd', ['-c', c.conf, 'device', 'unmap', dev, '-o', 'noudev'], { timeout: 300_000 });
      }
    } else notes.push(`krbd: rbd device map failed: ${map.stderr.trim()}`);
    // Without a block device: librbd alone (fio's rbd engine), and qemu-nbd alone (fio's nbd
    // engine), which split ublkit's leg into what the server costs and what ublkit adds.
    process.env.CEPH_CONF = c.conf;
    runJobs('fio librbd', ['--ioengine=rbd', '--clientname=admin', '--pool=rbd', '--rbdname=img'], runtime, sizeMiB, results);
    runJobs('fio nbd > qemu-nbd', ['--ioengine=nbd', `--uri=nbd+unix:///?socket=${c.sock}`], runtime, sizeMiB, results);
    const add = sh(process.execPath, [CLI, 'add', '-t', 'nbd', '--unix', c.sock, '-q', v.queues, '-d', '64']);
    const id = Number(/^dev id (\d+):/m.exec(add)?.[1]);
    try {
      runJobs(`ublkit nbd -q ${v.queues}`, `/dev/ublkb${id}`, runtime, sizeMiB, results);
    } finally {
      spawnSync(process.execPath, [CLI, 'del', '-n', String(id)]);
    }
  } finally {
    await stop(dir);
  }
  for (const n of notes) console.error(n);
  const report = { runtime, sizeMiB, results, notes };
  if (v.json) fs.writeFileSync(v.json, JSON.stringify(report, null, 2));
  console.log(JSON.stringify(report));
}

main().catch((e) => {
  console.error(`ceph bench: ${e.message}`);
  process.exit(1);
});
