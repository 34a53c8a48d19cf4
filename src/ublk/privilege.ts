// Whether this process may create ublk devices and lend client pages (CAP_SYS_ADMIN). Kept apart
// from device.ts so the CLI's parent process can check it without loading the engine.
import * as fs from 'node:fs';

/** True when this process has CAP_SYS_ADMIN (bit 21 of the effective capability set). */
export function hasSysAdmin(): boolean {
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    return m ? (BigInt('0x' + m[1]) & (1n << 21n)) !== 0n : false;
  } catch {
    return process.getuid?.() === 0;
  }
}
