// Loads the C addon once, with one actionable error when it cannot.
import { createRequire } from 'node:module';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface RingSetup {
  fd: number;
  flags: number;
  features: number;
  sqEntries: number;
  cqEntries: number;
  ring: ArrayBuffer;
  sqes: ArrayBuffer;
  sqOff: { head: number; tail: number; ringMask: number; ringEntries: number; flags: number; dropped: number; array: number };
  cqOff: { head: number; tail: number; ringMask: number; ringEntries: number; overflow: number; cqes: number; flags: number };
}

type View = ArrayBuffer | ArrayBufferView;

/**
 * The addon's calls. Every integer must fit the C type it becomes (an fd 0..2**31-1, counts u32, ...)
 * or the call throws a RangeError; `register` returns -EINVAL without a syscall when `arg` is shorter
 * than the kernel reads or writes for `nrArgs` (and for opcodes it has no size for); `pcopy` throws
 * EINVAL when `n` ops do not fit `ops`; `mmap` refuses MAP_FIXED and ranges past a regular file's end.
 * Raw addresses inside SQEs, pcopy ops and register arguments are trusted, as the kernel ABI requires.
 */
export interface NativeAddon {
  setupRing(entries: number, flags: number, cqEntries: number): RingSetup;
  closeRing(fd: number): void;
  enter(fd: number, toSubmit: number, minComplete: number, flags: number): number;
  /** n pread (dir 0) / pwrite (dir 1) calls in one native call; 8 u32 per op, result in word 6. */
  pcopy(fd: number, ops: Uint32Array, n: number): number;
  register(fd: number, opcode: number, arg: View | null, nrArgs: number): number;
  mmap(fd: number, length: number, prot: number, flags: number, offset: number | bigint): ArrayBuffer;
  munmap(buf: ArrayBuffer): void;
  alloc(size: number, align: number): ArrayBuffer;
  addressOf(view: View): bigint;
  eventfd(initval?: number, flags?: number): number;
  watch(fd: number, cb: () => void): number;
  watchRef(handle: number, ref: boolean): void;
  unwatch(handle: number): void;
  close(fd: number): number;
  ioctl64(fd: number, request: number): bigint;
  ioctlInt(fd: number, request: number): number;
  statxDio(path: string): { memAlign: number; offsetAlign: number; blksize: number; size: bigint; mode: number };
  gettid(): number;
  /** Binds the calling thread to one CPU; 0 or -errno. */
  pinThread(cpu: number): number;
  constants: Record<string, number>;
}

let addon: NativeAddon | undefined;

/** The addon, loaded on first use so that pure-JS parts (CLI help, encoders) work without it. */
export function native(): NativeAddon {
  if (addon) return addon;
  const require = createRequire(import.meta.url);
  try {
    // node-gyp-build: build/Release when built from source (a checkout, or no prebuild fitted at
    // install), else the prebuild in prebuilds/<platform>-<arch>/ matching this libc.
    const load = require('node-gyp-build') as (dir: string) => unknown;
    addon = load(packageRoot()) as NativeAddon;
  } catch (err) {
    const why = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new Error(
      `ublkit: cannot load the native addon (${why}); rebuild it with 'npm rebuild ublkit' ` +
        `(needs python3, make and a C compiler: apt-get install build-essential python3)`,
    );
  }
  return addon;
}

/**
 * The root of the package this file belongs to: the nearest ancestor directory with binding.gyp
 * (dist/src/native.js and the bundled CLI dist/src/cli/ublkit.cjs sit at different depths).
 */
function packageRoot(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  let dir = here;
  for (let i = 0; i < 5; i++) {
    if (fs.existsSync(path.join(dir, 'binding.gyp'))) return dir;
    dir = path.dirname(dir);
  }
  return path.resolve(here, '../..');
}

/** Raw address of a buffer's data as a JS number (user-space addresses fit in 47 bits). */
export function addressOf(view: View): number {
  return Number(native().addressOf(view));
}
