// What a built-in target declares for the command line (in its folder's cli.ts): its options,
// files and config. Light on purpose: the CLI parses every command line with these, loading no target.
import type { TargetIntegrity } from '../target/types.js';
import { UblkError } from '../errors.js';

/** A target's own option with a separate value: an integer, as kublk's target options, or `text`. */
export interface TargetOption {
  /** What the value is, for error messages ('stripe chunk size'). */
  what: string;
  /** The value is a string (a path, a host name), not an integer. */
  text?: boolean;
  min?: number;
  max?: number;
}

/** What the command line gives a target: its files, its own options, and the device-wide ones it uses. */
export interface TargetCliInput {
  command: 'add' | 'recover';
  files: string[];
  /** This target's options that were given, by long name. */
  opts: Record<string, number>;
  /** This target's text options that were given, by long name. */
  texts: Record<string, string>;
  /** --size, as given. */
  size?: string;
  /** The integrity format from --metadata_size and friends. */
  integrity?: TargetIntegrity;
  /** -r, -e or -i asked for a recoverable device. */
  recoverable: boolean;
}

export interface TargetCli {
  /** The name after -t. */
  name: string;
  /** Its name in the built-in catalogue (src/targets/builtin.ts). */
  module: string;
  options: Record<string, TargetOption>;
  /** One line for the usage text: files and options. */
  usage: string;
  /** The target's config; throws a one-line UblkError for a bad command line. */
  config(i: TargetCliInput): unknown;
}

export function noFiles(i: TargetCliInput, name: string): void {
  if (i.files.length) throw new UblkError('EINVAL', `${name} target takes no backing files, got ${i.files.join(' ')}`);
}
