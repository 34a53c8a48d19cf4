#!/usr/bin/env node
// A throw-away single-node Ceph (one mon, one mgr, one memstore OSD, no auth, pool size 1, all on
// 127.0.0.1, everything under one private directory) with an RBD image served by qemu-nbd.
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const CEPH_BINS = ['ceph-mon', 'ceph-mgr', 'ceph-osd', 'ceph', 'rbd', 'monmaptool', 'qemu-nbd'];
const QEMU_RBD = ['/usr/lib/x86_64-linux-gnu/qemu/block-rbd.so', '/usr/lib/qemu/block-rbd.so'];

/** Why a cluster cannot start here (a missing program or qemu's rbd driver), or undefined. */
export function cephMissing() {
  const missing = CEPH_BINS.filter((b) => spawnSync('sh', ['-c', `command -v ${b}`]).status !== 0);
  if (!QEMU_RBD.some((p) => fs.existsSync(p))) missing.push("qemu's rbd driver (qemu-block-extra)");
  return missing.length ? `missing ${missing.join(', ')}` : undefined;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Runs a program to completion; throws with its stderr on failure or past `timeoutS`. */
function run(cmd, args, timeoutS = 120) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutS * 1000, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}): ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`);
  return r.stdout;
}

function conf(dir, o) {
  // Health must reach HEALTH_OK on one OSD with unreplicated pools: the checks that cannot pass
  // on such a cluster (no redundancy, low disk on a small tmpfs, the global_id reclaim nag) are off.
  return `[global]
fsid = ${o.fsid}
mon host = [v2:127.0.0.1:${o.port2},v1:127.0.0.1:${o.port1}]
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = false
keyring = /dev/null
osd pool default size = 1
osd pool default min size = 1
osd crush chooseleaf type = 0
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
# With --no-mgr nobody reports PG states; keep the mon from flagging the absent mgr.
mon mgr mkfs grace = 86400
run dir = ${dir}/run
pid file = ${dir}/run/$name.pid
admin socket = ${dir}/run/$name.asok
log file = ${dir}/log/$name.log
crash dir = ${dir}/crash
mon data = ${dir}/mon/$id
mgr data = ${dir}/mgr/$id
osd data = ${dir}/osd/$id
osd objectstore = memstore
memstore device bytes = ${o.storeBytes}

[client]
# qemu-nbd, ceph and rbd run as client.admin at once: one admin socket each.
admin socket = ${dir}/run/$name.$pid.asok
`;
}

async function until(what, deadlineMs, probe) {
  const end = Date.now() + deadlineMs;
  let last;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${Math.round(deadlineMs / 1000)} s waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await sleep(500);
  }
}

/** Parsed `ceph status`: HEALTH_OK and every PG active+clean, at least `minPgs` of them. */
function settled(c, minPgs) {
  const s = JSON.parse(run('ceph', ['-c', c, '--connect-timeout', '30', 'status', '-f', 'json'], 60));
  const pg = s.pgmap ?? {};
  const clean = (pg.pgs_by_state ?? []).filter((x) => x.state_name === 'active+clean').reduce((n, x) => n + x.count, 0);
  const ok = s.health?.status === 'HEALTH_OK' && pg.num_pgs >= minPgs && clean === pg.num_pgs;
  return ok ? s : undefined;
}

/**
 * Starts the cluster in `dir` (created, must be empty) and serves rbd/img over qemu-nbd on
 * `dir/nbd.sock`. Returns what a client needs; on failure tears down what started, then throws.
 */
export async function start(dir, opts = {}) {
  const o = {
    fsid: randomUUID(), port1: 6789, port2: 3300, storeBytes: 1 << 30, imageMiB: 256,
    connections: 8, serve: true, deadlineS: 600, ...opts,
  };
  const t0 = Date.now();
  const steps = {};
  const mark = (k) => (steps[k] = Math.round((Date.now() - t0) / 100) / 10);
  dir = path.resolve(dir);
  for (const d of ['run', 'log', 'crash', 'mon/a', 'mgr/x', 'osd']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  const c = path.join(dir, 'ceph.conf');
  fs.writeFileSync(c, conf(dir, o));
  const sock = path.join(dir, 'nbd.sock');
  const deadline = o.deadlineS * 1000;
  try {
    const map = path.join(dir, 'monmap');
    run('monmaptool', ['--create', '--fsid', o.fsid, '--addv', 'a', `[v2:127.0.0.1:${o.port2},v1:127.0.0.1:${o.port1}]`, map]);
    run('ceph-mon', ['-c', c, '--mkfs', '-i', 'a', '--monmap', map, '--keyring', '/dev/null'], 300);
    run('ceph-mon', ['-c', c, '-i', 'a'], 300);
    mark('mon');
    if (o.mgr !== false) run('ceph-mgr', ['-c', c, '-i', 'x'], 300);
    const uuid = randomUUID();
    const id = run('ceph', ['-c', c, '--connect-timeout', '60', 'osd', 'new', uuid], 300).trim();
    fs.mkdirSync(path.join(dir, 'osd', id), { recursive: true });
    run('ceph-osd', ['-c', c, '-i', id, '--mkfs', '--osd-uuid', uuid], 300);
    run('ceph-osd', ['-c', c, '-i', id], 300);
    mark('osd');
    run('ceph', ['-c', c, 'osd', 'pool', 'create', 'rbd', '8', '8'], 300);
    run('rbd', ['-c', c, 'pool', 'init', 'rbd'], 300);
    run('rbd', ['-c', c, 'create', 'rbd/img', '--size', `${o.imageMiB}M`], 300);
    mark('image');
    // Health OK comes before the PGs settle, and PG states come from the mgr: wait for both.
    // Without a mgr, the image's creation above already needed its PGs active.
    const left = deadline - (Date.now() - t0);
    if (o.mgr !== false) await until('HEALTH_OK with every PG active+clean', left, () => settled(c, 8));
    else await until('HEALTH_OK', left, () => JSON.parse(run('ceph', ['-c', c, '--connect-timeout', '30', 'health', '-f', 'json'], 60)).status === 'HEALTH_OK');
    mark('clean');
    if (o.serve) {
      run('qemu-nbd', ['-t', '-e', String(o.connections), '--fork', `--pid-file=${dir}/run/qemu-nbd.pid`, '-k', sock,
        '-f', 'raw', `rbd:rbd/img:conf=${c}`], 300);
      mark('served');
    }
    return { dir, conf: c, sock, image: 'rbd/img', sizeBytes: o.imageMiB << 20, osd: id, seconds: steps.served ?? steps.clean, steps };
  } catch (e) {
    await stop(dir, { keep: true });
    const logs = fs.readdirSync(path.join(dir, 'log')).map((f) => path.join(dir, 'log', f));
    throw new Error(`${e.message} (logs: ${logs.join(' ')})`);
  }
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Stops every daemon whose pid file is in `dir/run` (clients first), then removes `dir` unless keep. */
export async function stop(dir, { keep = false, deadlineS = 60 } = {}) {
  const runDir = path.join(dir, 'run');
  const order = (f) => (f.startsWith('qemu-nbd') ? 0 : f.startsWith('osd') ? 1 : f.startsWith('mgr') ? 2 : 3);
  const files = fs.existsSync(runDir) ? fs.readdirSync(runDir).filter((f) => f.endsWith('.pid')).sort((a, b) => order(a) - order(b)) : [];
  for (const f of files) {
    const pid = Number(fs.readFileSync(path.join(runDir, f), 'utf8').trim());
    if (!(pid > 1) || !alive(pid)) continue;
    process.kill(pid, 'SIGTERM');
    const end = Date.now() + deadlineS * 1000;
    while (alive(pid) && Date.now() < end) await sleep(50);
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  }
  if (!keep) fs.rmSync(dir, { recursive: true, force: true });
}

const USAGE = `usage: node tools/ceph/cluster.mjs start DIR [--image-mib N] [--store-mib N] [--connections N] [--no-mgr] [--no-serve]
       node tools/ceph/cluster.mjs stop DIR [--keep]
start prints one JSON line: {dir, conf, sock, image, sizeBytes, seconds, steps}.`;

async function main(argv) {
  const [cmd, dir, ...rest] = argv;
  if (!dir || !['start', 'stop'].includes(cmd)) {
    console.error(USAGE);
    return 2;
  }
  const flag = (n) => rest.includes(n);
  const num = (n, d) => {
    const i = rest.indexOf(n);
    if (i < 0) return d;
    const v = Number(rest[i + 1]);
    if (!(Number.isInteger(v) && v > 0)) throw new Error(`${n} needs a positive integer`);
    return v;
  };
  if (cmd === 'stop') {
    await stop(path.resolve(dir), { keep: flag('--keep') });
    return 0;
  }
  const why = cephMissing();
  if (why) throw new Error(`cannot start Ceph: ${why}`);
  if (fs.existsSync(dir) && fs.readdirSync(dir).length) throw new Error(`${dir} is not empty`);
  const info = await start(dir, {
    imageMiB: num('--image-mib', 256), storeBytes: num('--store-mib', 1024) * 2 ** 20,
    connections: num('--connections', 8), mgr: !flag('--no-mgr'), serve: !flag('--no-serve'),
  });
  console.log(JSON.stringify(info));
  return 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then((c) => process.exit(c), (e) => {
    console.error(`ceph: ${e.message}`);
    process.exit(1);
  });
}
