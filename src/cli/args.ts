// getopt_long-style parsing of the kublk command line: options and files may be interleaved.
import { UblkError } from '../errors.js';

export interface CliArgs {
  command: string | undefined;
  type?: string;
  number: number;
  queues?: number;
  depth?: number;
  all: boolean;
  /** del --orphans: only devices whose server is gone. */
  orphans: boolean;
  zeroCopy: boolean;
  autoZc: boolean;
  autoZcFallback: boolean;
  userCopy: boolean;
  getData: boolean;
  recovery: number;
  recoveryFailIo: number;
  recoveryReissue: number;
  batch: boolean;
  nthreads?: number;
  perIoTasks: boolean;
  noUblkFixedFd: boolean;
  foreground: boolean;
  quiet: boolean;
  json: boolean;
  safe: boolean;
  size?: string;
  mode?: string;
  noAutoPartScan: boolean;
  /** Leave serving threads unbound (default: each queue's thread on its queue's first CPU, as kublk). */
  noPin: boolean;
  debugMask?: number;
  maxIoBufBytes?: number;
  metadataSize?: number;
  piOffset?: number;
  csumType?: string;
  tagSize?: number;
  integrityCapable?: boolean;
  integrityReftag?: boolean;
  shmemZc?: boolean;
  htlb?: string;
  rdonlyShmemBuf?: boolean;
  files: string[];
  /** Unknown `--name value` pairs, for the target. */
  targetOpts: Record<string, string>;
}

type Kind = 'flag' | 'int' | 'str';
// name -> [key in CliArgs, kind]; short options from kublk's "t:n:d:q:r:e:i:s:gazub".
const LONG: Record<string, [keyof CliArgs, Kind]> = {
  type: ['type', 'str'], number: ['number', 'int'], queues: ['queues', 'int'], depth: ['depth', 'int'],
  all: ['all', 'flag'], orphans: ['orphans', 'flag'], zero_copy: ['zeroCopy', 'flag'], auto_zc: ['autoZc', 'flag'],
  auto_zc_fallback: ['autoZcFallback', 'flag'], user_copy: ['userCopy', 'flag'], get_data: ['getData', 'flag'],
  recovery: ['recovery', 'int'], recovery_fail_io: ['recoveryFailIo', 'int'], recovery_reissue: ['recoveryReissue', 'int'],
  batch: ['batch', 'flag'], nthreads: ['nthreads', 'int'], per_io_tasks: ['perIoTasks', 'flag'],
  no_ublk_fixed_fd: ['noUblkFixedFd', 'flag'], foreground: ['foreground', 'flag'], quiet: ['quiet', 'flag'],
  json: ['json', 'flag'], safe: ['safe', 'flag'], size: ['size', 'str'], mode: ['mode', 'str'],
  no_auto_part_scan: ['noAutoPartScan', 'flag'], no_pin: ['noPin', 'flag'], debug_mask: ['debugMask', 'int'],
  max_io_buf_bytes: ['maxIoBufBytes', 'int'],
  metadata_size: ['metadataSize', 'int'], pi_offset: ['piOffset', 'int'], csum_type: ['csumType', 'str'],
  tag_size: ['tagSize', 'int'], integrity_capable: ['integrityCapable', 'flag'], integrity_reftag: ['integrityReftag', 'flag'],
  shmem_zc: ['shmemZc', 'flag'], htlb: ['htlb', 'str'], rdonly_shmem_buf: ['rdonlyShmemBuf', 'flag'],
};
const SHORT: Record<string, string> = {
  t: 'type', n: 'number', d: 'depth', q: 'queues', r: 'recovery', e: 'recovery_fail_io',
  i: 'recovery_reissue', s: 'size', g: 'get_data', a: 'all', z: 'zero_copy', u: 'user_copy', b: 'batch',
};

function toInt(name: string, v: string | undefined): number {
  if (v === undefined) throw new UblkError('EINVAL', `option --${name} requires an argument`);
  const n = /^0x[0-9a-f]+$/i.test(v) ? parseInt(v, 16) : /^-?\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n)) throw new UblkError('EINVAL', `option --${name} needs an integer, got '${v}'`);
  return n;
}

export function parseArgs(argv: string[]): CliArgs {
  const a: CliArgs = {
    command: argv[0], number: -1, all: false, orphans: false, zeroCopy: false, autoZc: false, autoZcFallback: false,
    userCopy: false, getData: false, recovery: 0, recoveryFailIo: 0, recoveryReissue: 0, batch: false,
    perIoTasks: false, noUblkFixedFd: false, foreground: false, quiet: false, json: false, safe: false,
    noAutoPartScan: false, noPin: false, files: [], targetOpts: {},
  };
  const rest = argv.slice(1);
  for (let i = 0; i < rest.length; i++) {
    const tok = rest[i];
    let name: string | undefined;
    if (tok === '--') {
      a.files.push(...rest.slice(i + 1));
      break;
    } else if (tok === '-f' || tok === '--file') {
      a.files.push(needValue(rest, i, tok));
      i++;
      continue;
    } else if (tok.startsWith('--')) {
      name = tok.slice(2);
    } else if (tok.startsWith('-') && tok.length >= 2) {
      // Clustered short flags (-zu) and attached values (-n3), as getopt allows.
      for (let j = 1; j < tok.length; j++) {
        const long = SHORT[tok[j]];
        if (!long) {
          a.targetOpts[tok.slice(1)] = needValue(rest, i, tok);
          i++;
          break;
        }
        const [key, kind] = LONG[long];
        if (kind === 'flag') {
          (a[key] as boolean) = true;
          continue;
        }
        const attached = tok.slice(j + 1);
        const v = attached || rest[++i];
        set(a, long, key, kind, v);
        break;
      }
      continue;
    } else {
      a.files.push(tok);
      continue;
    }
    const spec = LONG[name];
    if (!spec) {
      a.targetOpts[name] = needValue(rest, i, tok);
      i++;
      continue;
    }
    const [key, kind] = spec;
    if (kind === 'flag') (a[key] as boolean) = true;
    else set(a, name, key, kind, rest[++i]);
  }
  return a;
}

function needValue(rest: string[], i: number, tok: string): string {
  const v = rest[i + 1];
  if (v === undefined || tok.includes('=')) throw new UblkError('EINVAL', `every target option requires argument (${tok})`);
  return v;
}

function set(a: CliArgs, name: string, key: keyof CliArgs, kind: Kind, v: string | undefined): void {
  if (v === undefined) throw new UblkError('EINVAL', `option --${name} requires an argument`);
  (a as unknown as Record<string, unknown>)[key] = kind === 'int' ? toInt(name, v) : v;
}
