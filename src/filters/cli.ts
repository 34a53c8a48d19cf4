// --filter NAME[:key=value,...] from the command line into a target spec's `filters` list.
import type { FilterSpec } from '../target/types.js';
import { UblkError } from '../errors.js';
import { filterNamed } from './index.js';

export function parseFilterOption(arg: string): FilterSpec {
  const colon = arg.indexOf(':');
  const name = colon < 0 ? arg : arg.slice(0, colon);
  filterNamed(name);
  const config: Record<string, string> = {};
  if (colon >= 0) {
    for (const pair of arg.slice(colon + 1).split(',')) {
      const eq = pair.indexOf('=');
      if (eq <= 0) throw new UblkError('EINVAL', `--filter ${arg}: expected key=value, got '${pair}'`);
      config[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
  }
  return { name, config };
}

/** The --filter options in order: the first given is nearest to the kernel. */
export function filtersFromCli(args: readonly string[] | undefined): FilterSpec[] | undefined {
  return args?.length ? args.map(parseFilterOption) : undefined;
}
