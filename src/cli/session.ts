// What the short commands share: a control channel for the command's duration, the device id
// they need, and the ids of the devices that exist.
import * as fs from 'node:fs';
import { Control } from '../ublk/control.js';
import { UblkError } from '../errors.js';
import type { CliArgs } from './args.js';

export async function withControl<T>(fn: (c: Control) => Promise<T>): Promise<T> {
  const c = new Control();
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

/** Ids of the ublk devices that exist now (from the ublk-char class, else /dev). */
export function deviceIds(): number[] {
  let names: string[] = [];
  try {
    names = fs.readdirSync('/sys/class/ublk-char');
  } catch {
    try {
      names = fs.readdirSync('/dev');
    } catch { /* none */ }
  }
  return names.map((n) => /^ublkc(\d+)$/.exec(n)).filter((m) => m).map((m) => Number(m![1])).sort((x, y) => x - y);
}

export function requireId(a: CliArgs, cmd: string): number {
  if (a.number < 0) throw new UblkError('EINVAL', `${cmd} needs a device id: -n ID`);
  return a.number;
}
