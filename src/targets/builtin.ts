// The built-in targets by name: a TargetSpec's `module` may be 'ublkit:<name>' instead of a module
// URL. Named targets load through static imports, so a bundle (the CLI daemon and its worker
// threads) carries them and no thread resolves ES modules from disk at start-up.
import type { TargetModule } from '../target/types.js';

const BUILTIN: Record<string, () => Promise<TargetModule>> = {
  'ublkit:null': () => import('./null/index.js'),
  'ublkit:memory': () => import('./memory/index.js'),
  'ublkit:loop': () => import('./loop/index.js'),
  'ublkit:stripe': () => import('./stripe/index.js'),
  'ublkit:fault_inject': () => import('./fault-inject/index.js'),
};

/** A target module from a built-in name ('ublkit:loop') or any module URL / specifier. */
export async function loadTargetModule(spec: string): Promise<TargetModule> {
  const builtin = BUILTIN[spec];
  return (builtin ? await builtin() : await import(spec)) as TargetModule;
}
