// The built-in target catalogue ('ublkit:null', 'ublkit:loop', ...): the CLI hands it to its
// devices, and library callers may pass it as `targets`. The loaders are static imports, so a
// bundle (the CLI daemon; tools/bundle-cli.mjs) carries the targets with it.
import type { TargetCatalogue } from '../target/catalogue.js';

// In the CLI bundles, worker threads load the bundled catalogue beside them (one CommonJS file)
// instead of this module; tools/bundle-cli.mjs defines __UBLKIT_TARGETS__.
declare const __UBLKIT_TARGETS__: string | undefined;

export const catalogue: TargetCatalogue = {
  url: typeof __UBLKIT_TARGETS__ === 'string' ? new URL(__UBLKIT_TARGETS__, import.meta.url).href : import.meta.url,
  targets: {
    'ublkit:null': () => import('./null/index.js'),
    'ublkit:memory': () => import('./memory/index.js'),
    'ublkit:loop': () => import('./loop/index.js'),
    'ublkit:stripe': () => import('./stripe/index.js'),
    'ublkit:fault_inject': () => import('./fault-inject/index.js'),
    'ublkit:nbd': () => import('./nbd/index.js'),
    'ublkit:zoned': () => import('./zoned/index.js'),
  },
};
