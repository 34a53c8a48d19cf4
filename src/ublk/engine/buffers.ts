// Memory an engine maps: per-slot data and integrity buffers, and the kernel's descriptor arrays.
import { native, addressOf } from '../../native.js';
import { descMmapOffset, roundUp } from '../../uapi/structs.js';
import { IO_DESC } from '../../uapi/io-desc.js';

/** One stable buffer per slot (copy and user copy): the kernel or a pread/pwrite copies through it. */
export class SlotBuffers {
  readonly data: Uint8Array[] = [];
  readonly dataAddr: Float64Array;
  readonly meta: Uint8Array[] = [];
  readonly metaAddr: Float64Array;
  private slab: ArrayBuffer | undefined;
  private islab: ArrayBuffer | undefined;
  private readonly integrity: { intervalExp: number; metadataSize: number } | undefined;

  constructor(n: number, maxIo: number, withData: boolean, integrity?: { intervalExp: number; metadataSize: number }) {
    this.dataAddr = new Float64Array(n);
    this.metaAddr = new Float64Array(n);
    this.integrity = integrity;
    const c = native().constants;
    // One lazily backed anonymous mapping: untouched pages of a 1 MiB-per-tag slab cost nothing.
    if (withData) {
      const size = roundUp(maxIo, 4096);
      this.slab = native().mmap(-1, size * n, c.PROT_READ | c.PROT_WRITE, c.MAP_PRIVATE | c.MAP_ANONYMOUS, 0);
      const base = addressOf(this.slab);
      for (let i = 0; i < n; i++) {
        this.data.push(new Uint8Array(this.slab, i * size, size));
        this.dataAddr[i] = base + i * size;
      }
    }
    if (integrity) {
      const size = roundUp(Math.max(64, this.metaLen(maxIo)), 64);
      this.islab = native().mmap(-1, roundUp(size * n, 4096), c.PROT_READ | c.PROT_WRITE, c.MAP_PRIVATE | c.MAP_ANONYMOUS, 0);
      const base = addressOf(this.islab);
      for (let i = 0; i < n; i++) {
        this.meta.push(new Uint8Array(this.islab, i * size, size));
        this.metaAddr[i] = base + i * size;
      }
    }
  }

  /** Integrity bytes that go with `bytes` of data: one metadata tuple per protection interval. */
  metaLen(bytes: number): number {
    const m = this.integrity!;
    return Math.floor(bytes / 2 ** m.intervalExp) * m.metadataSize;
  }

  release(): void {
    if (this.slab) native().munmap(this.slab);
    if (this.islab) native().munmap(this.islab);
    this.slab = this.islab = undefined;
  }
}

/**
 * Maps each queue's descriptor array from /dev/ublkcN (read-only, written by the kernel). The
 * kernel wants the length exact: `depth` slots of `descSize` bytes, page aligned.
 */
export function mapDescriptors(fd: number, depth: number, qids: Iterable<number>, into: Uint32Array[], descSize: number = IO_DESC.size): ArrayBuffer[] {
  const c = native().constants;
  const len = roundUp(depth * descSize, c.PAGE_SIZE);
  const maps: ArrayBuffer[] = [];
  for (const q of new Set(qids)) {
    const ab = native().mmap(fd, len, c.PROT_READ, c.MAP_SHARED, descMmapOffset(q, c.PAGE_SIZE, descSize));
    maps.push(ab);
    into[q] = new Uint32Array(ab);
  }
  return maps;
}
