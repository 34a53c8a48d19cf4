// CLI target names -> target module specs, with their options taken from the command line.
import type { TargetIntegrity, TargetSpec } from '../target/types.js';
import type { CliArgs } from './args.js';
import { UblkError } from '../errors.js';

// Built-in names (src/targets/builtin.ts), so the bundled daemon and workers carry the targets.
const mod = (name: string) => `ublkit:${name}`;

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
    return { module: mod('fault_inject'), config: { delayUs: intOpt(a, 'delay_us', 0), dieDuringFetch: intOpt(a, 'die_during_fetch', 0) > 0 } };
  },
  null: (a) => {
    noFiles(a, 'null');
    return { module: mod('null'), config: { size: a.size, integrity: integrityOf(a) } };
  },
  memory: (a) => {
    noFiles(a, 'memory');
    // The disk lives in the server's memory and dies with it: a "recovered" memory disk would come
    // back zeroed under a client that trusts its old contents.
    if (a.command === 'recover') throw new UblkError('EINVAL', 'the memory target cannot be recovered: its data died with the server that held it');
    if (a.recovery || a.recoveryFailIo || a.recoveryReissue) {
      throw new UblkError('EINVAL', '-r/-i/-e: the memory target cannot be recovered (its data lives only in the server); drop the recovery options');
    }
    if (!a.size) throw new UblkError('EINVAL', 'memory target needs --size (e.g. --size 1G)');
    return { module: mod('memory'), config: { size: a.size } };
  },
  loop: (a) => {
    const md = a.metadataSize;
    const want = md ? 2 : 1;
    if (a.files.length !== want) {
      throw new UblkError('EINVAL', md ? `loop with --metadata_size needs two files (data, integrity), got ${a.files.length}` : `loop target needs exactly one backing file, got ${a.files.length}`);
    }
    const config: Record<string, unknown> = { file: a.files[0], buffered: a.targetOpts.buffered === '1' };
    const i = integrityOf(a);
    if (i) {
      Object.assign(config, {
        metaFile: a.files[1], metadataSize: i.metadataSize, piOffset: i.piOffset, csumType: i.csumType,
        tagSize: i.tagSize, integrityFlags: i.flags, initMeta: a.command !== 'recover',
      });
    }
    return { module: mod('loop'), config };
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

/** The integrity format from --metadata_size and friends, or undefined. */
function integrityOf(a: CliArgs): TargetIntegrity | undefined {
  if (!a.metadataSize) return undefined;
  const csum: Record<string, number> = { ip: 1, t10dif: 2, nvme: 4 };
  if (a.csumType && !(a.csumType in csum)) throw new UblkError('EINVAL', `invalid csum type: ${a.csumType} (ip, t10dif or nvme)`);
  return {
    metadataSize: a.metadataSize, piOffset: a.piOffset ?? 0, csumType: a.csumType ? csum[a.csumType] : 0,
    tagSize: a.tagSize ?? 0, flags: (a.integrityCapable ? 1 : 0) | (a.integrityReftag ? 2 : 0),
  };
}

function noFiles(a: CliArgs, name: string): void {
  if (a.files.length) throw new UblkError('EINVAL', `${name} target takes no backing files, got ${a.files.join(' ')}`);
}
