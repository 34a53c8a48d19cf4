#!/usr/bin/env node
// Run a command as root inside a throw-away QEMU (TCG) guest with a ublk-capable kernel.
//
//   node tools/vm/run.mjs [options] -- command args...
//
// The guest sees the host's / read-only (9p + tmpfs overlay), so the host's node, tools and this
// checkout are at the same paths; writes vanish at power-off, except under --share directories.
// The command's stdout/stderr arrive here cleanly on our stdout/stderr (virtio-serial ports); the
// kernel console goes to a log file whose tail is printed on failure. Exit code: the command's;
// 124 on timeout; 125 if the guest died without reporting one; 2 if setup is missing.
//
// Also a library: `import { runInVm } from './tools/vm/run.mjs'`.

import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs as nodeParseArgs } from 'node:util';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const INIT_SH = path.join(HERE, 'init.sh');
const SELF = fileURLToPath(import.meta.url);
const CACHE = process.env.UBLKIT_CACHE
  || path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'ublkit');
const BUSYBOX = process.env.UBLKIT_VM_BUSYBOX || '/bin/busybox';
const QEMU = process.env.UBLKIT_VM_QEMU || 'qemu-system-x86_64';
// Loaded at boot by the initramfs /init, in this order (name [params]); everything else: modprobe.
const BOOT_MODULES = [
  'fs/netfs/netfs', 'net/9p/9pnet', 'net/9p/9pnet_virtio', 'fs/9p/9p', 'fs/overlayfs/overlay',
  'fs/configfs/configfs', 'drivers/block/ublk_drv', 'drivers/block/loop',
];
const DEFAULT_TIMEOUT_S = 1800;
const BOOT_ATTEMPTS = 3;

export class SetupError extends Error {}

function sh(s) { return `'${String(s).replace(/'/g, `'\\''`)}'`; }

function log(opts, msg) { if (opts.verbose) (opts.stderr || process.stderr).write(`[vm] ${msg}\n`); }

function which(cmd) {
  if (cmd.includes('/')) return fs.existsSync(cmd) ? cmd : null;
  for (const d of (process.env.PATH || '/usr/bin:/bin').split(':')) {
    const p = path.join(d, cmd);
    try { fs.accessSync(p, fs.constants.X_OK); return p; } catch {}
  }
  return null;
}

/** Locate vmlinuz + the modules directory: UBLKIT_VM_KERNEL_DIR, or the cache's current kernel. */
export function findKernel(kernelDir = process.env.UBLKIT_VM_KERNEL_DIR) {
  let dir = kernelDir;
  if (!dir) {
    const suite = process.env.UBLKIT_VM_SUITE;
    const ptr = path.join(CACHE, 'kernel', suite && suite !== 'sid' ? `current-${suite}` : 'current');
    if (!fs.existsSync(ptr)) return null;
    dir = path.join(CACHE, 'kernel', fs.readFileSync(ptr, 'utf8').trim());
  }
  dir = path.resolve(dir);
  const subdirs = (p) => { try { return fs.readdirSync(p); } catch { return []; } };
  let moddir = null;
  for (const c of [path.join(dir, 'modules'),
    ...subdirs(path.join(dir, 'usr/lib/modules')).map((v) => path.join(dir, 'usr/lib/modules', v)),
    ...subdirs(path.join(dir, 'lib/modules')).map((v) => path.join(dir, 'lib/modules', v))]) {
    if (fs.existsSync(path.join(c, 'kernel'))) { moddir = fs.realpathSync(c); break; }
  }
  if (!moddir) return null;
  const kver = path.basename(moddir);
  const vmlinuz = [path.join(dir, 'vmlinuz'), path.join(moddir, 'vmlinuz'), path.join(dir, 'boot', `vmlinuz-${kver}`)]
    .find((p) => fs.existsSync(p));
  if (!vmlinuz) return null;
  return { dir, kver, moddir, vmlinuz: fs.realpathSync(vmlinuz) };
}

/** Fail early with one actionable line if the host is not set up. */
export function checkSetup(opts = {}) {
  const miss = [];
  if (!which(QEMU)) miss.push(QEMU);
  if (!fs.existsSync(BUSYBOX)) miss.push(`${BUSYBOX} (busybox-static)`);
  if (!which('cpio')) miss.push('cpio');
  if (!which('xz')) miss.push('xz');
  const kernel = findKernel(opts.kernelDir);
  if (!kernel) miss.push(`guest kernel (${opts.kernelDir || process.env.UBLKIT_VM_KERNEL_DIR || path.join(CACHE, 'kernel/current')})`);
  if (miss.length) {
    throw new SetupError(`VM not set up (missing: ${miss.join(', ')}): run tools/vm/setup.sh`);
  }
  return kernel;
}

function findModule(moddir, rel) {
  for (const ext of ['.ko', '.ko.xz', '.ko.zst', '.ko.gz']) {
    const p = path.join(moddir, 'kernel', rel + ext);
    if (fs.existsSync(p)) return p;
  }
  return null;
}

/** Build (or reuse) the initramfs for this kernel; keyed by init.sh, this file, busybox and modules. */
export function ensureInitramfs(kernel, opts = {}) {
  const mods = BOOT_MODULES.map((rel) => [rel, findModule(kernel.moddir, rel)]);
  const h = createHash('sha256');
  h.update(fs.readFileSync(INIT_SH)).update(fs.readFileSync(SELF)).update(kernel.kver);
  const bst = fs.statSync(BUSYBOX);
  h.update(`${bst.size}:${bst.mtimeMs}`);
  for (const [rel, p] of mods) {
    h.update(rel);
    if (p) { const st = fs.statSync(p); h.update(`${p}:${st.size}:${st.mtimeMs}`); }
  }
  const key = h.digest('hex').slice(0, 16);
  const dir = path.join(CACHE, 'initramfs');
  const out = path.join(dir, `${kernel.kver}-${key}.cpio`);
  if (fs.existsSync(out)) return out;

  log(opts, `building initramfs ${out}`);
  fs.mkdirSync(dir, { recursive: true });
  const stage = fs.mkdtempSync(path.join(dir, '.stage-'));
  try {
    for (const d of ['bin', 'modules', 'proc', 'sys', 'dev', 'tmp']) fs.mkdirSync(path.join(stage, d));
    fs.copyFileSync(BUSYBOX, path.join(stage, 'bin/busybox'));
    fs.chmodSync(path.join(stage, 'bin/busybox'), 0o755);
    fs.symlinkSync('busybox', path.join(stage, 'bin/sh'));
    fs.copyFileSync(INIT_SH, path.join(stage, 'init'));
    fs.chmodSync(path.join(stage, 'init'), 0o755);
    const order = [];
    for (const [rel, p] of mods) {
      if (!p) { if (!rel.endsWith('/loop')) throw new SetupError(`kernel ${kernel.kver} lacks module ${rel}`); continue; }
      const name = path.basename(rel);
      const dst = path.join(stage, 'modules', `${name}.ko`);
      if (p.endsWith('.ko')) fs.copyFileSync(p, dst);
      else {
        const tool = p.endsWith('.xz') ? ['xz', '-dc'] : p.endsWith('.zst') ? ['zstd', '-dc'] : ['gzip', '-dc'];
        const r = spawnSync(tool[0], [...tool.slice(1), p], { maxBuffer: 256 << 20 });
        if (r.status !== 0) throw new Error(`${tool.join(' ')} ${p} failed: ${r.stderr}`);
        fs.writeFileSync(dst, r.stdout);
      }
      order.push(name);
    }
    fs.writeFileSync(path.join(stage, 'modules/order'), order.join('\n') + '\n');
    // newc archive, uncompressed (decompression is slow under TCG; it is a few MB)
    const tmp = `${out}.tmp${process.pid}`;
    const r = spawnSync('sh', ['-c', `find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet > ${sh(tmp)}`],
      { cwd: stage, stdio: ['ignore', 'inherit', 'inherit'] });
    if (r.status !== 0) throw new Error('cpio failed');
    fs.renameSync(tmp, out);
    // drop stale images of this kernel (one image per kernel version stays)
    for (const f of fs.readdirSync(dir)) {
      if (f.startsWith(`${kernel.kver}-`) && f.endsWith('.cpio') && path.join(dir, f) !== out) {
        fs.rmSync(path.join(dir, f), { force: true });
      }
    }
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
  return out;
}

/** Env passed into the guest: CI, every UBLKIT_*, plus opts.env (object or NAME=VALUE list). */
function guestEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k === 'CI' || k.startsWith('UBLKIT_') || k === 'NODE_OPTIONS' || k === 'TERM') env[k] = v;
  }
  delete env.UBLKIT_VM_KERNEL_DIR;
  if (Array.isArray(extra)) {
    for (const kv of extra) {
      const i = kv.indexOf('=');
      if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1);
      else if (process.env[kv] !== undefined) env[kv] = process.env[kv];
    }
  } else Object.assign(env, extra || {});
  env.UBLKIT_IN_VM = '1';
  return env;
}

function parseMem(m) { return String(m).replace(/i?b$/i, ''); }

/**
 * One line naming a guest kernel oops, panic or warning in `text` (the console log), or null: its
 * first line, where it happened (RIP), in which task, and the first calls of its trace. CI shows
 * only a few lines of a failed run, so this line has to say what the 40-line tail would.
 */
export function crashSummary(text) {
  const lines = text.replace(/\r/g, '').split('\n').map((l) => l.replace(/^\[\s*\d+\.\d+\]\s?/, ''));
  const start = lines.findIndex((l) => /^(BUG:|Oops:|general protection fault|kernel BUG at|Kernel panic|WARNING: CPU|watchdog: BUG)/.test(l));
  if (start < 0) return null;
  const rest = lines.slice(start, start + 120);
  const rip = rest.find((l) => /^RIP: \d+:/.test(l))?.replace(/^RIP: \d+:/, '').trim();
  const comm = /Comm: (\S+)/.exec(rest.find((l) => /Comm: /.test(l)) ?? '')?.[1];
  const at = rest.findIndex((l) => /^Call Trace:/.test(l));
  const calls = [];
  for (const l of at < 0 ? [] : rest.slice(at + 1)) {
    if (/^(---\[|Modules linked in|RIP:|Kernel panic)/.test(l) || calls.length === 8) break;
    const m = /^\s*([A-Za-z_][\w.]*)\+0x/.exec(l); // "? sym" guesses are left out
    if (m) calls.push(m[1]);
  }
  return [`the guest kernel reported: ${lines[start].trim()}`, rip && `at ${rip}`, comm && `in ${comm}`,
    calls.length && `called from ${calls.join(' < ')}`].filter(Boolean).join('; ');
}

/**
 * Run `cmd` (argv array) in the VM. Resolves to { code, timedOut, consoleLog, bootSeconds, seconds }.
 * opts: timeout (s), mem ('8G'), smp (2), cwd, shares (dirs), env ({} or ['N=V']), append (kernel
 *   args), stdout/stderr (writable streams; default process.*), consoleLog (path to keep the kernel
 *   console), console (bool: also stream the console to stderr), kernelDir, verbose.
 */
export async function runInVm(cmd, opts = {}) {
  if (!Array.isArray(cmd) || cmd.length === 0) throw new TypeError('runInVm: cmd must be a non-empty argv array');
  const stdout = opts.stdout || process.stdout;
  const stderr = opts.stderr || process.stderr;
  const kernel = checkSetup(opts);
  const initrd = ensureInitramfs(kernel, opts);
  if (!fs.existsSync(path.join(kernel.moddir, 'modules.dep'))) {
    spawnSync('depmod', ['-b', kernel.moddir.replace(new RegExp(`/lib/modules/${kernel.kver.replace(/[.+]/g, '\\$&')}$`), ''), kernel.kver]);
  }
  const cwd = path.resolve(opts.cwd || process.cwd());
  const shares = (opts.shares || []).map((d) => path.resolve(d));
  const timeoutS = Number(opts.timeout ?? DEFAULT_TIMEOUT_S);

  // The job: a directory on the host, visible to the guest through the 9p root.
  const jobDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ublkit-vm-'));
  fs.chmodSync(jobDir, 0o755);
  const env = guestEnv(opts.env);
  fs.writeFileSync(path.join(jobDir, 'env.sh'),
    Object.entries(env).filter(([k]) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(k))
      .map(([k, v]) => `export ${k}=${sh(v)}`).join('\n') + '\n');
  fs.writeFileSync(path.join(jobDir, 'job.sh'), `exec ${cmd.map(sh).join(' ')}\n`);
  for (const d of shares) fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(path.join(jobDir, 'config'), [
    `UBLKIT_CWD=${sh(cwd)}`,
    `UBLKIT_MODDIR=${sh(kernel.moddir)}`,
    `UBLKIT_NSHARES=${shares.length}`,
    ...shares.map((d, i) => `UBLKIT_SHARE_${i}=${sh(d)}`),
  ].join('\n') + '\n');
  const consoleLog = opts.consoleLog ? path.resolve(opts.consoleLog) : path.join(jobDir, 'console.log');
  fs.mkdirSync(path.dirname(consoleLog), { recursive: true });

  const append = ['console=ttyS0', 'quiet', 'panic=-1', 'mitigations=off',
    `ublkit.job=${Buffer.from(jobDir).toString('base64')}`, ...(opts.append || [])].join(' ');
  const args = [
    '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
    '-machine', 'q35', '-accel', 'tcg,thread=multi', '-cpu', 'max',
    '-smp', String(opts.smp || 2), '-m', parseMem(opts.mem || '8G'),
    '-kernel', kernel.vmlinuz, '-initrd', initrd, '-append', append,
    '-chardev', 'socket,id=con,fd=3', '-serial', 'chardev:con',
    '-device', 'virtio-serial-pci,id=vser',
    '-chardev', 'socket,id=out,fd=4', '-device', 'virtserialport,bus=vser.0,chardev=out,name=ublkit.out',
    '-chardev', 'socket,id=err,fd=5', '-device', 'virtserialport,bus=vser.0,chardev=err,name=ublkit.err',
    '-chardev', 'socket,id=ctl,fd=6', '-device', 'virtserialport,bus=vser.0,chardev=ctl,name=ublkit.ctl',
    // multidevs=remap: / spans several host file systems whose inode numbers collide (host /proc
    // and /sys are both inode 1); unmapped, the guest's 9p merges such directories.
    '-fsdev', 'local,id=hr,path=/,security_model=none,readonly=on,multidevs=remap',
    '-device', 'virtio-9p-pci,fsdev=hr,mount_tag=hostroot',
    ...shares.flatMap((d, i) => [
      '-fsdev', `local,id=sh${i},path=${d.replace(/,/g, ',,')},security_model=none,multidevs=remap`,
      '-device', `virtio-9p-pci,fsdev=sh${i},mount_tag=share${i}`]),
    // Diagnostics only (README): raw QEMU arguments, e.g. a monitor socket for `info jit`.
    ...(process.env.UBLKIT_VM_QEMU_ARGS ? process.env.UBLKIT_VM_QEMU_ARGS.split(/\s+/).filter(Boolean) : []),
  ];
  log(opts, `kernel ${kernel.kver}, initrd ${initrd}, job ${jobDir}`);
  log(opts, `${QEMU} ${args.map((a) => (/^[\w.,=:/+-]+$/.test(a) ? a : sh(a))).join(' ')}`);

  // A guest kernel that dies before the command starts is retried: under MTTCG the boot's code
  // patching (static keys, alternatives) now and then trips an int3 on another vCPU, a QEMU race
  // that has nothing to do with what runs next. Nothing of the job ran yet, so booting again is safe.
  let code; let vmFailed; let timedOut; let bootSeconds; let seconds; let tail;
  for (let attempt = 1; ; attempt++) {
    const t0 = Date.now();
    const qemu = spawn(QEMU, args, { stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe', 'pipe', 'pipe'] });
    const [, qout, qerr, con, out, err, ctl] = qemu.stdio;
    const conFile = fs.createWriteStream(consoleLog);
    let qemuMsgs = '';
    qout.on('data', (d) => { qemuMsgs += d; });
    qerr.on('data', (d) => { qemuMsgs += d; });
    con.on('data', (d) => { conFile.write(d); if (opts.console) stderr.write(d); });
    out.on('data', (d) => stdout.write(d));
    err.on('data', (d) => stderr.write(d));
    let ctlText = '';
    bootSeconds = null;
    ctl.on('data', (d) => {
      ctlText += d;
      if (bootSeconds === null && /UBLKIT-VM-START/.test(ctlText)) {
        bootSeconds = (Date.now() - t0) / 1000;
        log(opts, `guest up after ${bootSeconds.toFixed(1)} s, running: ${cmd.join(' ')}`);
      }
    });
    const ended = (s) => new Promise((r) => { if (s.readableEnded || s.destroyed) r(); else { s.on('end', r); s.on('close', r); s.on('error', r); } });

    timedOut = false;
    const timer = setTimeout(() => { timedOut = true; qemu.kill('SIGKILL'); }, timeoutS * 1000);
    let interrupted = null;
    const onSignal = (sig) => { interrupted = sig; qemu.kill('SIGKILL'); };
    const sigs = opts.handleSignals === false ? [] : ['SIGINT', 'SIGTERM', 'SIGHUP'];
    for (const s of sigs) process.on(s, onSignal);
    const killOnExit = () => qemu.kill('SIGKILL');
    process.on('exit', killOnExit);

    const [qcode, qsig] = await new Promise((resolve) => qemu.on('exit', (c, s) => resolve([c, s])));
    clearTimeout(timer);
    // exit fires when the process is gone; the pipes may still hold data: drain them.
    await Promise.race([Promise.all([out, err, ctl, con].map(ended)), new Promise((r) => setTimeout(r, 2000))]);
    for (const s of sigs) process.off(s, onSignal);
    process.off('exit', killOnExit);
    await new Promise((r) => conFile.end(r));
    seconds = (Date.now() - t0) / 1000;

    const m = /UBLKIT-VM-EXIT (\d+)/.exec(ctlText)
      || /\[ublkit-init\] UBLKIT-VM-EXIT (\d+)/.exec(fs.readFileSync(consoleLog, 'utf8'));
    vmFailed = true; // the VM, not the command, failed: keep the console log and say where it is
    tail = () => {
      const text = fs.readFileSync(consoleLog, 'utf8');
      const crash = crashSummary(text);
      return text.replace(/\r/g, '').split('\n').slice(-40).join('\n') + (crash ? `\n[vm] ${crash}` : '');
    };
    if (interrupted) {
      code = interrupted === 'SIGINT' ? 130 : interrupted === 'SIGHUP' ? 129 : 143;
      vmFailed = false;
      stderr.write(`[vm] ${interrupted}: killed QEMU\n`);
    } else if (timedOut) {
      code = 124;
      stderr.write(`[vm] TIMEOUT after ${timeoutS} s: killed QEMU. Console log ${consoleLog}, tail:\n${tail()}\n`);
    } else if (!m) {
      code = 125; // said below, unless the boot is tried again
    } else {
      code = Number(m[1]);
      vmFailed = false;
      if (code === 255 && /\[ublkit-init\] FATAL/.test(fs.readFileSync(consoleLog, 'utf8'))) {
        stderr.write(`[vm] guest init failed. Console log ${consoleLog}, tail:\n${tail()}\n`);
        vmFailed = true;
      }
    }
    const bootCrash = !m && !timedOut && !interrupted && bootSeconds === null
      && crashSummary(fs.readFileSync(consoleLog, 'utf8'));
    if (!bootCrash || attempt === BOOT_ATTEMPTS) {
      if (!m && !timedOut && !interrupted) {
        stderr.write(`[vm] guest ended without an exit code (QEMU exit ${qcode ?? qsig}${qemuMsgs ? `: ${qemuMsgs.trim()}` : ''}). `
          + `Console log ${consoleLog}, tail:\n${tail()}\n`);
      }
      break;
    }
    stderr.write(`[vm] the guest kernel died while booting (${bootCrash}); booting again (${attempt + 1}/${BOOT_ATTEMPTS})\n`);
  }
  log(opts, `done in ${seconds.toFixed(1)} s (boot ${bootSeconds?.toFixed(1) ?? '?'} s), exit ${code}`);
  // Keep the job dir (with the console log) when the VM failed; otherwise clean up.
  const keep = opts.keep || (vmFailed && !opts.consoleLog);
  if (!keep) fs.rmSync(jobDir, { recursive: true, force: true });
  return { code, timedOut, consoleLog: keep || opts.consoleLog ? consoleLog : null, bootSeconds, seconds };
}

const USAGE = `usage: node tools/vm/run.mjs [options] -- command args...
  --timeout SEC     kill the VM after SEC seconds, exit 124 (default ${DEFAULT_TIMEOUT_S}; env UBLKIT_VM_TIMEOUT)
  --mem SIZE        guest memory (default 8G; env UBLKIT_VM_MEM)
  --smp N           guest CPUs (default 2; env UBLKIT_VM_SMP)
  --cwd DIR         working directory in the guest (default: the current one)
  --share DIR       mount host DIR writable at the same path in the guest (repeatable)
  --env NAME[=VAL]  pass a variable into the guest (repeatable; CI and UBLKIT_* pass anyway)
  --append ARGS     extra kernel command-line arguments
  --console-log F   keep the kernel console log in F
  --console         also stream the kernel console to stderr
  --keep            keep the job directory (console log) even on success
  -v, --verbose     runner messages (boot time, QEMU command line) on stderr`;

const OPTIONS = {
  timeout: { type: 'string' }, mem: { type: 'string' }, smp: { type: 'string' }, cwd: { type: 'string' },
  share: { type: 'string', multiple: true, default: [] }, env: { type: 'string', multiple: true, default: [] },
  append: { type: 'string', multiple: true, default: [] }, 'console-log': { type: 'string' },
  console: { type: 'boolean' }, keep: { type: 'boolean' }, verbose: { type: 'boolean', short: 'v' }, help: { type: 'boolean', short: 'h' },
};

/** Options up to `--` or the first word that is not one; the rest is the guest command. */
function parseArgs(argv) {
  const { tokens } = nodeParseArgs({ args: argv, options: OPTIONS, strict: false, allowPositionals: true, tokens: true });
  const end = tokens.find((t) => t.kind === 'positional' || t.kind === 'option-terminator');
  const cmd = end ? argv.slice(end.kind === 'positional' ? end.index : end.index + 1) : [];
  let v;
  try {
    ({ values: v } = nodeParseArgs({ args: end ? argv.slice(0, end.index) : argv, options: OPTIONS, strict: true, allowPositionals: false }));
  } catch (e) {
    throw new Error(e.message.split('. ')[0]); // node's first sentence names the option; the rest is advice
  }
  const num = (x) => (x === undefined ? undefined : Number(x));
  const o = {
    timeout: num(v.timeout), mem: v.mem, smp: num(v.smp), cwd: v.cwd, shares: v.share, env: v.env,
    append: v.append.flatMap((x) => x.split(/\s+/).filter(Boolean)), consoleLog: v['console-log'],
    console: v.console, keep: v.keep, verbose: v.verbose, help: v.help,
  };
  return { o, cmd };
}

async function main() {
  let parsed;
  try { parsed = parseArgs(process.argv.slice(2)); } catch (e) { console.error(`${e.message}\n${USAGE}`); return 2; }
  const { o, cmd } = parsed;
  if (o.help) { console.log(USAGE); return 0; }
  if (!cmd.length) { console.error(USAGE); return 2; }
  o.timeout ??= process.env.UBLKIT_VM_TIMEOUT ? Number(process.env.UBLKIT_VM_TIMEOUT) : undefined;
  o.mem ??= process.env.UBLKIT_VM_MEM;
  o.smp ||= process.env.UBLKIT_VM_SMP ? Number(process.env.UBLKIT_VM_SMP) : undefined;
  o.verbose ||= !!process.env.UBLKIT_VM_VERBOSE;
  try {
    const r = await runInVm(cmd, o);
    return r.code;
  } catch (e) {
    if (e instanceof SetupError) { console.error(`[vm] ${e.message}`); return 2; }
    throw e;
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === SELF) {
  main().then((c) => { process.exitCode = c; }, (e) => { console.error(e); process.exitCode = 125; });
}
