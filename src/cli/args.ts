// The kublk command line through Node's util.parseArgs: one table of options (kublk's names and
// short letters), `--x=y` and `--x y`, `-q2` and `-zu`, options and files interleaved as getopt
// permutes them; every value checked here, with a one-line error naming the option.
import { parseArgs as nodeParseArgs } from 'node:util';
import * as fs from 'node:fs';
import { UblkError } from '../errors.js';
import { parseSize } from '../targets/size.js';
import { TARGET_CLI } from '../targets/cli.js';

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
  ioDescSize?: number;
  rotateAutoBuf: boolean;
  /** set_params: UBLK_F_ZONED on the device, the param types and values to send. */
  zoned: boolean;
  paramTypes?: string;
  logicalBsShift?: number;
  physicalBsShift?: number;
  ioMinShift?: number;
  ioOptShift?: number;
  maxSectors?: number;
  chunkSectors?: number;
  devSectors?: number;
  maxZoneAppendSectors?: number;
  maxOpenZones?: number;
  maxActiveZones?: number;
  metadataSize?: number;
  piOffset?: number;
  csumType?: string;
  tagSize?: number;
  integrityCapable?: boolean;
  integrityReftag?: boolean;
  shmemZc?: boolean;
  htlb?: string;
  rdonlyShmemBuf?: boolean;
  /** stats --watch SEC: seconds between samples (checked by the stats command). */
  watch?: string;
  /** add / recover --log FILE: where the daemon writes its log. */
  log?: string;
  /** `ublkit CMD --help`: print the command's usage instead of running it. */
  help: boolean;
  files: string[];
  /** Target options (`--chunk_size 4096`): checked integers or text, for src/cli/targets.ts. */
  targetOpts: Record<string, string>;
  /** --filter NAME[:key=value,...], in the order given (src/filters/cli.ts). */
  filters: string[];
}

type Kind = 'flag' | 'int' | 'hex' | 'str' | 'size' | 'file' | 'list';

/**
 * One command-line option. `key` is its field in CliArgs; without one it is a target option and
 * lands in `targetOpts`. Integers are checked against `min..max`, described as `what`.
 */
export interface OptionSpec {
  kind: Kind;
  key?: keyof CliArgs;
  short?: string;
  min?: number;
  max?: number;
  what?: string;
}

const I32 = 2 ** 31 - 1;
const u8 = (key: keyof CliArgs, what: string, min = 0): OptionSpec => ({ kind: 'int', key, min, max: 255, what });
const u32 = (key: keyof CliArgs, what: string): OptionSpec => ({ kind: 'int', key, min: 0, max: 2 ** 32 - 1, what });
const flag = (key: keyof CliArgs, short?: string): OptionSpec => ({ kind: 'flag', key, short });

/**
 * Every option, by long name. kublk's short options are "t:n:d:q:r:e:i:s:gazub". A new option is
 * one line here (and its use in the command that reads it, and its line in that command's usage);
 * a target's own option is declared in its folder instead.
 */
export const OPTIONS: Record<string, OptionSpec> = {
  type: { kind: 'str', key: 'type', short: 't' },
  // Ids: -1 asks the kernel to pick (add); the kernel takes ids below 2^20.
  number: { kind: 'int', key: 'number', short: 'n', min: -1, max: 2 ** 20 - 1, what: 'device id' },
  queues: { kind: 'int', key: 'queues', short: 'q', min: 1, max: 32, what: 'number of queues' },
  depth: { kind: 'int', key: 'depth', short: 'd', min: 1, max: 1024, what: 'queue depth' },
  nthreads: { kind: 'int', key: 'nthreads', min: 1, max: 32, what: 'number of threads' },
  // kublk sets the flag for any non-zero value.
  recovery: { kind: 'int', key: 'recovery', short: 'r', min: 0, max: I32, what: 'recovery' },
  recovery_fail_io: { kind: 'int', key: 'recoveryFailIo', short: 'e', min: 0, max: I32, what: 'recovery with failed IO' },
  recovery_reissue: { kind: 'int', key: 'recoveryReissue', short: 'i', min: 0, max: I32, what: 'recovery with reissue' },
  size: { kind: 'size', key: 'size', short: 's' },
  all: flag('all', 'a'),
  orphans: flag('orphans'),
  get_data: flag('getData', 'g'),
  zero_copy: flag('zeroCopy', 'z'),
  user_copy: flag('userCopy', 'u'),
  batch: flag('batch', 'b'),
  auto_zc: flag('autoZc'),
  auto_zc_fallback: flag('autoZcFallback'),
  per_io_tasks: flag('perIoTasks'),
  no_ublk_fixed_fd: flag('noUblkFixedFd'),
  foreground: flag('foreground'),
  quiet: flag('quiet'),
  json: flag('json'),
  safe: flag('safe'),
  no_auto_part_scan: flag('noAutoPartScan'),
  no_pin: flag('noPin'),
  help: flag('help', 'h'),
  mode: { kind: 'str', key: 'mode' },
  watch: { kind: 'str', key: 'watch' },
  log: { kind: 'str', key: 'log' },
  // Hex, as kublk's strtol(optarg, NULL, 16).
  debug_mask: { kind: 'hex', key: 'debugMask', min: 0, max: 2 ** 32 - 1, what: 'debug mask' },
  // Range and page multiple checked by maxIoBuf() below.
  max_io_buf_bytes: { kind: 'int', key: 'maxIoBufBytes', what: 'max IO buffer bytes' },
  // The kernel's own rules (multiple of 8, 24..256) are checked with the other add options.
  io_desc_size: { kind: 'int', key: 'ioDescSize', min: 0, max: 0xffff, what: 'io descriptor size' },
  rotate_auto_buf: flag('rotateAutoBuf'),
  // set_params: the fields of struct ublk_params it sends (u8 shifts, u32 counts, u64 capacity).
  zoned: flag('zoned'),
  param_types: { kind: 'str', key: 'paramTypes' },
  logical_bs_shift: u8('logicalBsShift', 'logical block shift'),
  physical_bs_shift: u8('physicalBsShift', 'physical block shift'),
  io_min_shift: u8('ioMinShift', 'minimum IO shift'),
  io_opt_shift: u8('ioOptShift', 'optimal IO shift'),
  max_sectors: u32('maxSectors', 'max sectors'),
  chunk_sectors: u32('chunkSectors', 'chunk sectors'),
  dev_sectors: { kind: 'int', key: 'devSectors', min: 0, max: Number.MAX_SAFE_INTEGER, what: 'device sectors' },
  max_zone_append_sectors: u32('maxZoneAppendSectors', 'max zone append sectors'),
  max_open_zones: u32('maxOpenZones', 'max open zones'),
  max_active_zones: u32('maxActiveZones', 'max active zones'),
  metadata_size: u8('metadataSize', 'integrity metadata size', 1),
  pi_offset: u8('piOffset', 'PI offset'),
  tag_size: u8('tagSize', 'PI tag size'),
  csum_type: { kind: 'str', key: 'csumType' },
  integrity_capable: flag('integrityCapable'),
  integrity_reftag: flag('integrityReftag'),
  shmem_zc: flag('shmemZc'),
  htlb: { kind: 'str', key: 'htlb' },
  rdonly_shmem_buf: flag('rdonlyShmemBuf'),
  file: { kind: 'file', short: 'f' },
  // Repeatable: each one adds a filter (src/filters/cli.ts).
  filter: { kind: 'list', key: 'filters' },
  // Each built-in target's own options, declared in its folder (src/targets/<name>/cli.ts).
  ...targetOptions(),
};

/** The targets' options as table rows (no key: they land in targetOpts); a name two targets share must mean the same. */
function targetOptions(): Record<string, OptionSpec> {
  const rows: Record<string, OptionSpec> = {};
  for (const t of TARGET_CLI) {
    for (const [name, o] of Object.entries(t.options)) {
      const row: OptionSpec = o.text ? { kind: 'str', what: o.what } : { kind: 'int', min: o.min ?? 0, max: o.max ?? I32, what: o.what };
      const had = rows[name];
      if (had && (had.kind !== row.kind || had.min !== row.min || had.max !== row.max)) throw new Error(`target option --${name} is declared twice with different ranges`);
      rows[name] ??= row;
    }
  }
  return rows;
}

const MAX_IO_BUF = 32 << 20; // the user-copy offset field holds 25 bits of buffer offset

function bad(msg: string): UblkError {
  return new UblkError('EINVAL', msg);
}

/** The kernel's page size (AT_PAGESZ from the auxiliary vector; 4096 if it cannot be read). */
export function pageSize(): number {
  try {
    const v = fs.readFileSync('/proc/self/auxv');
    for (let o = 0; o + 16 <= v.length; o += 16) {
      const type = v.readBigUInt64LE(o);
      if (type === 0n) break;
      if (type === 6n) return Number(v.readBigUInt64LE(o + 8));
    }
  } catch { /* no /proc */ }
  return 4096;
}

function toInt(spelled: string, o: OptionSpec, v: string): number {
  const s = v.trim();
  const n = o.kind === 'hex' ? (/^(0x)?[0-9a-f]+$/i.test(s) ? parseInt(s, 16) : NaN)
    : /^0x[0-9a-f]+$/i.test(s) ? parseInt(s, 16) : /^[-+]?\d+$/.test(s) ? Number(s) : NaN;
  const what = o.what ?? 'value';
  if (Number.isNaN(n)) throw bad(`${spelled} ${v}: ${what} must be an integer`);
  if (!Number.isSafeInteger(n) || (o.min !== undefined && n < o.min) || (o.max !== undefined && n > o.max)) {
    if (o.min === undefined) throw bad(`${spelled} ${v}: ${what} is too large`);
    throw bad(`${spelled} ${v}: ${what} must be ${o.min}..${o.max}`);
  }
  return n;
}

/** max_io_buf_bytes: the kernel rounds it down to a page and needs max_sectors (>= a page) to fit. */
function maxIoBuf(spelled: string, n: number): number {
  const page = pageSize();
  if (n < page || n > MAX_IO_BUF || n % page !== 0) {
    throw bad(`${spelled} ${n}: must be a multiple of the ${page}-byte page size in ${page}..${MAX_IO_BUF}`);
  }
  return n;
}

function checkSize(spelled: string, v: string): string {
  let n: number;
  try {
    n = parseSize(v);
  } catch (e) {
    if (/too large/.test((e as Error).message)) throw bad(`${spelled} ${v}: the size is too large`);
    throw bad(`${spelled} ${v}: not a size (bytes, or a number with K, M, G or T)`);
  }
  if (n <= 0) throw bad(`${spelled} ${v}: the size must be positive`);
  return v;
}

const NODE_OPTIONS = Object.fromEntries(
  Object.entries(OPTIONS).map(([name, o]) => [name, { type: o.kind === 'flag' ? 'boolean' as const : 'string' as const, ...(o.short ? { short: o.short } : {}) }]),
);

export function parseArgs(argv: string[]): CliArgs {
  const a: CliArgs = {
    command: argv[0], number: -1, all: false, orphans: false, zeroCopy: false, autoZc: false, autoZcFallback: false,
    userCopy: false, getData: false, recovery: 0, recoveryFailIo: 0, recoveryReissue: 0, batch: false,
    rotateAutoBuf: false, zoned: false, perIoTasks: false, noUblkFixedFd: false, foreground: false, quiet: false, json: false, safe: false,
    noAutoPartScan: false, noPin: false, help: false, files: [], targetOpts: {}, filters: [],
  };
  // strict: false so that unknown options come back as tokens (refused below with their spelling)
  // and a value may start with '-' (`-n -1`), as getopt allows.
  const { tokens } = nodeParseArgs({ args: argv.slice(1), options: NODE_OPTIONS, strict: false, allowPositionals: true, tokens: true });
  const fields = a as unknown as Record<string, unknown>;
  for (const t of tokens) {
    if (t.kind === 'positional') a.files.push(t.value);
    if (t.kind !== 'option') continue;
    const o = Object.prototype.hasOwnProperty.call(OPTIONS, t.name) ? OPTIONS[t.name] : undefined;
    if (!o) throw bad(`unknown option '${t.rawName}'`);
    if (o.kind === 'flag') {
      if (t.value !== undefined) throw bad(`option '${t.rawName}' takes no value`);
      fields[o.key!] = true;
      continue;
    }
    const v = t.value;
    if (v === undefined || v === '') throw bad(`option '${t.rawName}' requires an argument`);
    if (o.kind === 'file') a.files.push(v);
    else if (o.kind === 'list') (fields[o.key!] as string[]).push(v);
    else if (!o.key) a.targetOpts[t.name] = o.kind === 'str' ? v : String(toInt(t.rawName, o, v));
    else if (o.kind === 'str') fields[o.key] = v;
    else if (o.kind === 'size') fields[o.key] = checkSize(t.rawName, v);
    else if (o.key === 'maxIoBufBytes') fields[o.key] = maxIoBuf(t.rawName, toInt(t.rawName, o, v));
    else fields[o.key] = toInt(t.rawName, o, v);
  }
  return a;
}
