// CLI target names -> target module specs, with their options taken from the command line.
import type { TargetSpec } from '../target/types.js';
import type { CliArgs } from './args.js';
import { UblkError } from '../errors.js';

const mod = (name: string) => new URL(`../targets/${name}/index.js`, import.meta.url).href;

type Builder = (a: CliArgs) => TargetSpec;

function intOpt(a: CliArgs, name: string, dflt: number): number {
  const v = a.targetOpts[name];
  if (v === undefined) return dflt;
  if (!/^\d+$/.test(v)) throw new UblkError('EINVAL', `--${name} needs a non-negative integer, got '${v}'`);
  return Number(v);
}

const BUILDERS: Record<string, Builder> = {
  stripe: (a) => ({ module: mod('stripe'), config: { files: a.files, chunkSize: intOpt(a, 'chunk_size', 65536) } }),
  fault_inject: (a) => {
    noFiles(a, 'fault_inject');
    return { module: mod('fault-inject'), config: { delayUs: intOpt(a, 'delay_us', 0), dieDuringFetch: intOpt(a, 'die_during_fetch', 0) > 0 } };
  },
  null: (a) => {
    noFiles(a, 'null');
    return { module: mod('null'), config: a.size ? { size: a.size } : {} };
  },
  memory: (a) => {
    noFiles(a, 'memory');
    if (!a.size) throw new UblkError('EINVAL', 'memory target needs --size (e.g. --size 1G)');
    return { module: mod('memory'), config: { size: a.size } };
  },
  loop: (a) => {
    if (a.files.length === 2 && a.targetOpts.metadata_size === undefined) throw new UblkError('EINVAL', 'loop target takes a second file only with --metadata_size');
    if (a.files.length !== 1) throw new UblkError('EINVAL', `loop target needs exactly one backing file, got ${a.files.length}`);
    return { module: mod('loop'), config: { file: a.files[0], buffered: a.targetOpts.buffered === '1' } };
  },
};

export const TARGET_NAMES = Object.keys(BUILDERS);

export function targetSpec(a: CliArgs): TargetSpec {
  const b = a.type ? BUILDERS[a.type] : undefined;
  if (!b) {
    throw new UblkError('ENODEV', `no such tgt type ${a.type ?? 'unknown'}: use -t with one of ${TARGET_NAMES.join(', ')}`);
  }
  return b(a);
}

function noFiles(a: CliArgs, name: string): void {
  if (a.files.length) throw new UblkError('EINVAL', `${name} target takes no backing files, got ${a.files.join(' ')}`);
}
