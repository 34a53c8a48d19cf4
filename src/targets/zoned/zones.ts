// The zoned model over shared memory: zone conditions, write pointers and the open / active
// accounting, with the errors the kernel's zoned block layer expects (as null_blk gives them).
import * as Z from '../../uapi/blkzoned.js';
import { UblkError } from '../../errors.js';

/** The shared layout: every serving thread builds a Zones over the same SharedArrayBuffer. */
export interface ZoneGeometry {
  /** Zone size in sectors (a power of two). */
  zoneSectors: number;
  nrZones: number;
  conventional: number;
  /** 0: no limit. */
  maxOpen: number;
  maxActive: number;
}

// Counter words in `cnt`.
const LOCK = 0;
const IMP_OPEN = 1;
const EXP_OPEN = 2;
const CLOSED = 3;

/** Bytes of shared state for `nrZones` zones: write pointers, conditions, counters. */
export function stateBytes(nrZones: number): number {
  return nrZones * 8 + 16 + Math.ceil(nrZones / 8) * 8;
}

const ioErr = (why: string): UblkError => new UblkError('EIO', why);

/** Past the open limit: an Error with ETOOMANYREFS, which UblkError cannot name (Node lacks it). */
function openResource(why: string): Error {
  return Object.assign(new Error(why), { code: 'ETOOMANYREFS', errno: Z.ETOOMANYREFS });
}

export class Zones {
  readonly g: ZoneGeometry;
  /** Write pointer per zone, in sectors. */
  private readonly wp: Float64Array;
  private readonly cnt: Int32Array;
  private readonly cond: Uint8Array;

  constructor(g: ZoneGeometry, state: SharedArrayBuffer) {
    this.g = g;
    const n = g.nrZones;
    this.wp = new Float64Array(state, 0, n);
    this.cnt = new Int32Array(state, n * 8, 4);
    this.cond = new Uint8Array(state, n * 8 + 16, n);
  }

  /** First use of fresh state: conventional zones have no write pointer, the rest are empty. */
  init(): void {
    for (let z = 0; z < this.g.nrZones; z++) {
      this.cond[z] = z < this.g.conventional ? Z.BLK_ZONE_COND_NOT_WP : Z.BLK_ZONE_COND_EMPTY;
      this.wp[z] = this.start(z) + (z < this.g.conventional ? this.g.zoneSectors : 0);
    }
  }

  start(z: number): number {
    return z * this.g.zoneSectors;
  }

  zoneOf(sector: number): number {
    const z = Math.floor(sector / this.g.zoneSectors);
    if (!(z >= 0 && z < this.g.nrZones)) throw ioErr(`sector ${sector} is past the last zone`);
    return z;
  }

  isConventional(z: number): boolean {
    return z < this.g.conventional;
  }

  condition(z: number): number {
    return this.cond[z];
  }

  writePointer(z: number): number {
    return this.wp[z];
  }

  /** Runs `f` holding the state lock: serving threads share these zones. */
  locked<T>(f: () => T): T {
    while (Atomics.compareExchange(this.cnt, LOCK, 0, 1) !== 0) Atomics.wait(this.cnt, LOCK, 1, 1);
    try {
      return f();
    } finally {
      Atomics.store(this.cnt, LOCK, 0);
      Atomics.notify(this.cnt, LOCK, 1);
    }
  }

  counts(): { impOpen: number; expOpen: number; closed: number } {
    return { impOpen: this.cnt[IMP_OPEN], expOpen: this.cnt[EXP_OPEN], closed: this.cnt[CLOSED] };
  }

  /**
   * A write of `sectors` at `sector` (or, for an append, at the zone's pointer) is allowed: moves
   * the pointer and the zone's condition, and returns the sector the data goes to. Call locked.
   */
  write(sector: number, sectors: number, append: boolean): number {
    const z = this.zoneOf(sector);
    const end = this.start(z) + this.g.zoneSectors;
    if (this.isConventional(z)) {
      if (append) throw ioErr('zone append to a conventional zone');
      if (sector + sectors > end) throw ioErr('write crosses the end of its zone');
      return sector;
    }
    const c = this.cond[z];
    if (c === Z.BLK_ZONE_COND_FULL) throw ioErr(`write to full zone ${z}`);
    const at = append ? this.wp[z] : sector;
    if (at !== this.wp[z]) throw ioErr(`write at sector ${sector} is not at zone ${z}'s write pointer ${this.wp[z]}`);
    if (at + sectors > end) throw ioErr('write crosses the end of its zone');
    if (c === Z.BLK_ZONE_COND_EMPTY || c === Z.BLK_ZONE_COND_CLOSED) {
      this.checkResources(c);
      if (c === Z.BLK_ZONE_COND_CLOSED) this.cnt[CLOSED]--;
      this.cnt[IMP_OPEN]++;
      this.cond[z] = Z.BLK_ZONE_COND_IMP_OPEN;
    }
    this.wp[z] = at + sectors;
    if (this.wp[z] === end) this.becomeFull(z);
    return at;
  }

  open(sector: number): void {
    const z = this.seqZone(sector, 'open');
    switch (this.cond[z]) {
      case Z.BLK_ZONE_COND_EXP_OPEN: return;
      case Z.BLK_ZONE_COND_EMPTY:
      case Z.BLK_ZONE_COND_CLOSED:
        this.checkResources(this.cond[z]);
        if (this.cond[z] === Z.BLK_ZONE_COND_CLOSED) this.cnt[CLOSED]--;
        break;
      case Z.BLK_ZONE_COND_IMP_OPEN:
        this.cnt[IMP_OPEN]--;
        break;
      default: throw ioErr(`cannot open zone ${z} in condition ${this.cond[z]}`);
    }
    this.cond[z] = Z.BLK_ZONE_COND_EXP_OPEN;
    this.cnt[EXP_OPEN]++;
  }

  close(sector: number): void {
    const z = this.seqZone(sector, 'close');
    switch (this.cond[z]) {
      case Z.BLK_ZONE_COND_CLOSED: return;
      case Z.BLK_ZONE_COND_IMP_OPEN: this.cnt[IMP_OPEN]--; break;
      case Z.BLK_ZONE_COND_EXP_OPEN: this.cnt[EXP_OPEN]--; break;
      default: throw ioErr(`cannot close zone ${z} in condition ${this.cond[z]}`);
    }
    this.closeOpen(z);
  }

  finish(sector: number): void {
    const z = this.seqZone(sector, 'finish');
    switch (this.cond[z]) {
      case Z.BLK_ZONE_COND_FULL: return;
      case Z.BLK_ZONE_COND_EMPTY: this.checkResources(Z.BLK_ZONE_COND_EMPTY); break;
      case Z.BLK_ZONE_COND_IMP_OPEN: this.cnt[IMP_OPEN]--; break;
      case Z.BLK_ZONE_COND_EXP_OPEN: this.cnt[EXP_OPEN]--; break;
      case Z.BLK_ZONE_COND_CLOSED: this.cnt[CLOSED]--; break;
      default: throw ioErr(`cannot finish zone ${z} in condition ${this.cond[z]}`);
    }
    this.cond[z] = Z.BLK_ZONE_COND_FULL;
    this.wp[z] = this.start(z) + this.g.zoneSectors;
  }

  /** Empties the zone; returns its number so the caller can drop its data. */
  reset(sector: number): number {
    const z = this.seqZone(sector, 'reset');
    switch (this.cond[z]) {
      case Z.BLK_ZONE_COND_IMP_OPEN: this.cnt[IMP_OPEN]--; break;
      case Z.BLK_ZONE_COND_EXP_OPEN: this.cnt[EXP_OPEN]--; break;
      case Z.BLK_ZONE_COND_CLOSED: this.cnt[CLOSED]--; break;
      case Z.BLK_ZONE_COND_EMPTY:
      case Z.BLK_ZONE_COND_FULL: break;
      default: throw ioErr(`cannot reset zone ${z} in condition ${this.cond[z]}`);
    }
    this.cond[z] = Z.BLK_ZONE_COND_EMPTY;
    this.wp[z] = this.start(z);
    return z;
  }

  /** The zone as a struct blk_zone. */
  describe(z: number): Z.BlkZone {
    const conv = this.isConventional(z);
    return {
      start: this.start(z), len: this.g.zoneSectors, capacity: this.g.zoneSectors, wp: this.wp[z], cond: this.cond[z],
      type: conv ? Z.BLK_ZONE_TYPE_CONVENTIONAL : Z.BLK_ZONE_TYPE_SEQWRITE_REQ,
    };
  }

  private seqZone(sector: number, what: string): number {
    if (sector % this.g.zoneSectors) throw ioErr(`zone ${what} at sector ${sector}, not a zone start`);
    const z = this.zoneOf(sector);
    if (this.isConventional(z)) throw ioErr(`zone ${what} on conventional zone ${z}`);
    return z;
  }

  private becomeFull(z: number): void {
    if (this.cond[z] === Z.BLK_ZONE_COND_IMP_OPEN) this.cnt[IMP_OPEN]--;
    else if (this.cond[z] === Z.BLK_ZONE_COND_EXP_OPEN) this.cnt[EXP_OPEN]--;
    this.cond[z] = Z.BLK_ZONE_COND_FULL;
  }

  /** An open zone stops being open: empty again if nothing was written, else closed (still active). */
  private closeOpen(z: number): void {
    if (this.wp[z] === this.start(z)) {
      this.cond[z] = Z.BLK_ZONE_COND_EMPTY;
    } else {
      this.cond[z] = Z.BLK_ZONE_COND_CLOSED;
      this.cnt[CLOSED]++;
    }
  }

  /**
   * Opening an EMPTY zone makes it active too; a CLOSED one is active already. Past the open
   * limit an implicitly open zone is closed to make room, as a device may; with none, the open
   * fails with ETOOMANYREFS (BLK_STS_ZONE_OPEN_RESOURCE). Past the active limit: EOVERFLOW
   * (BLK_STS_ZONE_ACTIVE_RESOURCE).
   */
  private checkResources(c: number): void {
    const { maxOpen, maxActive } = this.g;
    const open = this.cnt[IMP_OPEN] + this.cnt[EXP_OPEN];
    if (c === Z.BLK_ZONE_COND_EMPTY && maxActive && open + this.cnt[CLOSED] >= maxActive) {
      throw new UblkError('EOVERFLOW', `no more than ${maxActive} active zones`);
    }
    if (!maxOpen || open < maxOpen) return;
    for (let z = this.g.conventional; z < this.g.nrZones; z++) {
      if (this.cond[z] !== Z.BLK_ZONE_COND_IMP_OPEN) continue;
      this.cnt[IMP_OPEN]--;
      this.closeOpen(z);
      return;
    }
    throw openResource(`no more than ${maxOpen} open zones`);
  }
}
