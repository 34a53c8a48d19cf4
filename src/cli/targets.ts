// -t NAME and the target options: each built-in target's own declaration (src/targets/<name>/cli.ts)
// turned into a TargetSpec naming it in the built-in catalogue.
import type { TargetIntegrity, TargetSpec } from '../target/types.js';
import type { CliArgs } from './args.js';
import { UblkError } from '../errors.js';
import { TARGET_CLI, type TargetCli } from '../targets/cli.js';
import { filtersFromCli } from '../filters/cli.js';

export const TARGET_NAMES = TARGET_CLI.map((t) => t.name);

function byName(name: string | undefined): TargetCli | undefined {
  return TARGET_CLI.find((t) => t.name === name);
}

export function targetSpec(a: CliArgs): TargetSpec {
  const t = byName(a.type);
  if (!t) {
    throw new UblkError('ENODEV', `no such tgt type ${a.type ?? 'unknown'}: use -t with one of ${TARGET_NAMES.join(', ')}`);
  }
  const opts: Record<string, number> = {};
  const texts: Record<string, string> = {};
  for (const [name, o] of Object.entries(t.options)) {
    const v = a.targetOpts[name];
    if (v === undefined) continue;
    if (o.text) texts[name] = v;
    else opts[name] = Number(v);
  }
  const config = t.config({
    command: a.command === 'recover' ? 'recover' : 'add', files: a.files, opts, texts, size: a.size, integrity: integrityOf(a),
    recoverable: !!(a.recovery || a.recoveryFailIo || a.recoveryReissue),
  });
  const filters = filtersFromCli(a.filters);
  return filters ? { module: t.module, config, filters } : { module: t.module, config };
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
