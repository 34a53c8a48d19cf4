// Target catalogues: target modules by name, handed to a device by whoever starts it (the CLI, a
// library caller), so that the engine knows no targets of its own.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { TargetModule } from './types.js';
import { UblkError } from '../errors.js';

/**
 * Named target modules. A worker thread cannot be handed functions, so it imports the catalogue
 * again from `url`: that module must export this catalogue as `catalogue`.
 */
export interface TargetCatalogue {
  /** URL of the module that exports this catalogue as `catalogue`. */
  readonly url: string;
  /** Loaders by name (the `module` of a TargetSpec). */
  readonly targets: Readonly<Record<string, () => Promise<TargetModule>>>;
}

function named(catalogue: TargetCatalogue | undefined, name: string): (() => Promise<TargetModule>) | undefined {
  return catalogue && Object.prototype.hasOwnProperty.call(catalogue.targets, name) ? catalogue.targets[name] : undefined;
}

/** The module a TargetSpec names: from the catalogue when it has that name, else imported as a URL or specifier. */
export async function loadTarget(module: string, catalogue?: TargetCatalogue): Promise<TargetModule> {
  const load = named(catalogue, module);
  if (load) return load();
  try {
    return (await import(module)) as TargetModule;
  } catch (err) {
    if (!catalogue && /^ublkit:/.test(module)) {
      throw new UblkError('EINVAL', `target '${module}' is a built-in name: pass the catalogue that has it (targets: builtinTargets, from 'ublkit')`);
    }
    throw err;
  }
}

/** The catalogue exported by the module at `url` (in a worker thread). */
export async function importCatalogue(url: string): Promise<TargetCatalogue> {
  // A bundled catalogue (.cjs) loads through require: a thread that needs no ES module then
  // never starts Node's ESM loader, which costs tens of milliseconds on an emulated machine.
  const m = (url.endsWith('.cjs') ? createRequire(import.meta.url)(fileURLToPath(url)) : await import(url)) as { catalogue?: TargetCatalogue };
  const c = m.catalogue;
  if (!c || typeof c.targets !== 'object') throw new UblkError('EINVAL', `${url} exports no target catalogue named 'catalogue'`);
  return c;
}
