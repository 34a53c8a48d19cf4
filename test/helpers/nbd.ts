// An nbd target opened on a host ring (no ublk device): the tests of its client side.
import { hostContext } from '../../src/testing/host.js';
import { create, prepare, type NbdConfig } from '../../src/targets/nbd/index.js';
import type { Target } from '../../src/target/types.js';

/** Prepares and opens the target for `config`, runs `body`, and closes both target and ring. */
export async function withNbdTarget(config: NbdConfig, body: (t: Target) => Promise<void>): Promise<void> {
  const t = create(await prepare(config));
  const host = await hostContext();
  try {
    await t.open!(host.ctx);
    await body(t);
  } finally {
    await t.close?.();
    host.close();
  }
}
