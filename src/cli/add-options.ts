// add / recover command lines checked and turned into device options (in the parent and again in
// the daemon, which gets the same command line).
import * as U from '../uapi/ublk.js';
import type { DeviceOptions } from '../ublk/device-options.js';
import type { ModeRequest } from '../ublk/modes.js';
import { UblkError } from '../errors.js';
import { ioDescSizeProblem } from '../uapi/structs.js';
import type { CliArgs } from './args.js';
import type { Launch } from './daemon-protocol.js';
import { targetSpec } from './targets.js';
import { fingerprint } from './fingerprint.js';

const MAX_QUEUES = 32;
const MAX_DEPTH = 1024;

function pickMode(a: CliArgs): ModeRequest {
  if (a.autoZcFallback) return 'auto-buf-reg';
  const chosen = [a.getData && 'get-data', a.userCopy && 'user-copy', a.zeroCopy && 'zero-copy', a.autoZc && 'auto-buf-reg']
    .filter(Boolean) as ModeRequest[];
  if (a.mode) chosen.push(a.mode as ModeRequest);
  if (chosen.length > 1) throw new UblkError('EINVAL', 'too many data copy modes specified');
  const m = chosen[0] ?? 'copy';
  if (!['auto', 'copy', 'get-data', 'user-copy', 'zero-copy', 'auto-buf-reg'].includes(m)) {
    throw new UblkError('EINVAL', `unknown --mode ${m}: use auto, copy, get-data, user-copy, zero-copy or auto-buf-reg`);
  }
  return m;
}

/** Checks the command line and turns it into device options; throws one-line errors. */
export function deviceOptions(a: CliArgs): DeviceOptions {
  const queues = a.queues ?? 2;
  const depth = a.depth ?? 128;
  if (queues < 1 || queues > MAX_QUEUES) throw new UblkError('EINVAL', `-q ${queues}: number of queues must be 1..${MAX_QUEUES}`);
  if (depth < 1 || depth > MAX_DEPTH) throw new UblkError('EINVAL', `-d ${depth}: queue depth must be 1..${MAX_DEPTH}`);
  const nthreads = a.nthreads ?? queues;
  if (nthreads < 1 || nthreads > MAX_QUEUES) throw new UblkError('EINVAL', `--nthreads ${nthreads}: must be 1..${MAX_QUEUES}`);
  if (a.perIoTasks && a.batch) throw new UblkError('EINVAL', '--per_io_tasks cannot be combined with -b');
  if (nthreads !== queues && !a.perIoTasks && !a.batch) throw new UblkError('EINVAL', `--nthreads ${nthreads} differs from -q ${queues}: add --per_io_tasks`);
  let flags = 0;
  if (a.recovery) flags |= U.UBLK_F_USER_RECOVERY;
  if (a.recoveryFailIo) flags |= U.UBLK_F_USER_RECOVERY | U.UBLK_F_USER_RECOVERY_FAIL_IO;
  if (a.recoveryReissue) flags |= U.UBLK_F_USER_RECOVERY | U.UBLK_F_USER_RECOVERY_REISSUE;
  if (a.noAutoPartScan) flags |= U.UBLK_F_NO_AUTO_PART_SCAN;
  if (a.batch) flags |= U.UBLK_F_BATCH_IO;
  if (a.shmemZc) flags |= U.UBLK_F_SHMEM_ZC;
  if (a.metadataSize !== undefined && !a.userCopy) throw new UblkError('EINVAL', '--metadata_size requires -u');
  const integrityOpt = a.piOffset !== undefined || a.csumType !== undefined || a.tagSize !== undefined || a.integrityCapable || a.integrityReftag;
  if (integrityOpt && a.metadataSize === undefined) throw new UblkError('EINVAL', 'integrity options require --metadata_size');
  if (a.autoZc && a.batch && nthreads > queues) throw new UblkError('EINVAL', '--auto_zc with -b needs --nthreads <= -q');
  if (a.htlb && !a.shmemZc) throw new UblkError('EINVAL', '--htlb needs --shmem_zc');
  if (a.autoZcFallback && !(a.autoZc && a.zeroCopy)) throw new UblkError('EINVAL', '--auto_zc_fallback requires both --auto_zc and -z');
  if (a.autoZcFallback && a.type !== 'null') throw new UblkError('EINVAL', `--auto_zc_fallback is only supported by the null target`);
  if (a.rotateAutoBuf && !(a.autoZc && a.batch)) throw new UblkError('EINVAL', 'rotate_auto_buf requires --auto_zc and --batch');
  const descBad = a.ioDescSize === undefined ? undefined : ioDescSizeProblem(a.ioDescSize);
  if (descBad) throw new UblkError('EINVAL', `--io_desc_size ${a.ioDescSize}: ${descBad}`);
  const mb = a.maxIoBufBytes;
  if (mb !== undefined && (mb < 4096 || mb > 32 << 20)) throw new UblkError('EINVAL', `--max_io_buf_bytes ${mb}: must be 4096..33554432`);
  return {
    target: targetSpec(a), id: a.number, queues, depth, threads: nthreads,
    mode: a.autoZcFallback ? 'auto-buf-reg' : pickMode(a), autoBufRegFallback: a.autoZcFallback,
    noFixedFd: a.noUblkFixedFd, maxIoBufBytes: mb, flags, perIoTasks: a.perIoTasks,
    ioDescSize: a.ioDescSize, rotateAutoBuf: a.rotateAutoBuf || undefined,
    // Stored at add, compared at recover: other files, order or layout would scramble the disk.
    serverFlags: fingerprint(a),
    shmem: a.htlb ? { path: a.htlb, readOnly: a.rdonlyShmemBuf } : undefined,
    // As kublk: quiesce comes with recovery whenever the kernel has it.
    optionalFlags: flags & U.UBLK_F_USER_RECOVERY ? U.UBLK_F_QUIESCE : 0,
    dieDuringFetch: a.type === 'fault_inject' && Number(a.targetOpts.die_during_fetch ?? 0) > 0,
    // The daemon (and --foreground) does nothing but serve: its own thread takes the first group.
    serveInCallingThread: true,
    // As kublk: a thread per queue runs on its queue's first CPU (and so do its io-wq workers).
    pinThreads: !a.noPin,
  };
}

/** Checks that hold for the parent and the daemon alike. */
export function launchOptions(a: CliArgs, kind: Launch): DeviceOptions {
  if (kind === 'recover' && a.number < 0) throw new UblkError('EINVAL', "device id isn't provided for recovering: -n ID");
  return deviceOptions(a);
}
