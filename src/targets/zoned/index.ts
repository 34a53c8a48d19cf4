// zoned: a host-managed zoned RAM disk (conventional zones first, then sequential-write-required
// ones), its data and zone state in shared memory so that every serving thread sees one device.
import type { Target } from '../../target/types.js';
import { UblkError } from '../../errors.js';
import { parseSize } from '../size.js';
import { BLK_ZONE, encodeBlkZone } from '../../uapi/blkzoned.js';
import { Zones, stateBytes, type ZoneGeometry } from './zones.js';

export interface ZonedConfig {
  size: number | string;
  zoneSize: number | string;
  /** Conventional zones at the start of the device (writable anywhere). Default 0. */
  conventional?: number;
  /** Open and active zone limits; 0 (default) is no limit. */
  maxOpen?: number;
  maxActive?: number;
  /** Made by prepare() so that every thread shares them. */
  buffer?: SharedArrayBuffer;
  state?: SharedArrayBuffer;
}

interface Prepared extends ZoneGeometry {
  size: number;
  zoneSize: number;
  buffer: SharedArrayBuffer;
  state: SharedArrayBuffer;
}

function count(v: number | undefined, what: string, max: number): number {
  const n = v ?? 0;
  if (!Number.isInteger(n) || n < 0 || n > max) throw new UblkError('EINVAL', `zoned ${what} ${n} must be 0..${max}`);
  return n;
}

export function prepare(config: ZonedConfig): Prepared {
  const size = parseSize(config.size);
  const zoneBytes = parseSize(config.zoneSize);
  if (zoneBytes < 4096 || !Number.isInteger(Math.log2(zoneBytes))) throw new UblkError('EINVAL', `zone size ${zoneBytes} must be a power of two of at least 4096 bytes`);
  if (size <= 0 || size % zoneBytes) throw new UblkError('EINVAL', `zoned size ${size} must be a positive multiple of the ${zoneBytes}-byte zone size`);
  const nrZones = size / zoneBytes;
  const conventional = count(config.conventional, 'conventional zone count', nrZones - 1);
  const maxOpen = count(config.maxOpen, 'max open zones', nrZones);
  const maxActive = count(config.maxActive, 'max active zones', nrZones);
  if (maxOpen && maxActive && maxOpen > maxActive) throw new UblkError('EINVAL', `zoned max open zones ${maxOpen} exceeds max active zones ${maxActive}`);
  const g: ZoneGeometry = { zoneSectors: zoneBytes / 512, nrZones, conventional, maxOpen, maxActive };
  let buffer = config.buffer;
  let state = config.state;
  if (!buffer || !state) {
    try {
      buffer = new SharedArrayBuffer(size);
      state = new SharedArrayBuffer(stateBytes(nrZones));
    } catch {
      throw new UblkError('ENOMEM', `cannot allocate a ${size}-byte zoned disk`);
    }
    new Zones(g, state).init();
  }
  if (buffer.byteLength !== size || state.byteLength !== stateBytes(nrZones)) throw new UblkError('EINVAL', 'zoned buffers do not match the geometry');
  return { ...g, size, zoneSize: zoneBytes, buffer, state };
}

export function create(config: ZonedConfig): Target {
  const p = prepare(config);
  const { size, buffer } = p;
  const mem = new Uint8Array(buffer);
  const zones = new Zones(p, p.state);
  const zoneBytes = p.zoneSectors * 512;

  /** Stores `buf` once the model took the write; returns the sector it went to. */
  const store = (buf: Uint8Array, sector: number, append: boolean): number => {
    if (buf.byteLength % 512) throw new UblkError('EIO', 'zoned writes are whole sectors');
    return zones.locked(() => {
      const at = zones.write(sector, buf.byteLength / 512, append);
      mem.set(buf, at * 512);
      return at;
    });
  };

  return {
    size,
    limits: { zoned: { zoneSectors: p.zoneSectors, maxOpen: p.maxOpen, maxActive: p.maxActive } },
    // Zone by zone: a sequential zone reads zeroes from its write pointer on.
    read(buf, off) {
      const n = Math.max(0, Math.min(buf.byteLength, size - off));
      let done = 0;
      while (done < n) {
        const at = off + done;
        const z = Math.floor(at / zoneBytes);
        const part = Math.min(n - done, (z + 1) * zoneBytes - at);
        const valid = zones.isConventional(z) ? part : Math.max(0, Math.min(part, zones.writePointer(z) * 512 - at));
        buf.set(mem.subarray(at, at + valid), done);
        buf.fill(0, done + valid, done + part);
        done += part;
      }
      return n;
    },
    write(buf, off) {
      store(buf, off / 512, false);
      return buf.byteLength;
    },
    zoneAppend(buf, sector) {
      return { bytes: buf.byteLength, sector: store(buf, sector, true) };
    },
    reportZones(sector, nrZones, out) {
      const v = new DataView(out.buffer, out.byteOffset, out.byteLength);
      const first = zones.zoneOf(sector);
      const n = Math.min(nrZones, p.nrZones - first, Math.floor(out.byteLength / BLK_ZONE.size));
      zones.locked(() => {
        for (let i = 0; i < n; i++) encodeBlkZone(v, i * BLK_ZONE.size, zones.describe(first + i));
      });
      return n;
    },
    zoneOpen(sector) {
      zones.locked(() => zones.open(sector));
    },
    zoneClose(sector) {
      zones.locked(() => zones.close(sector));
    },
    zoneFinish(sector) {
      zones.locked(() => zones.finish(sector));
    },
    zoneReset(sector) {
      zones.locked(() => {
        const z = zones.reset(sector);
        mem.fill(0, z * zoneBytes, (z + 1) * zoneBytes);
      });
    },
    zoneResetAll() {
      zones.locked(() => {
        for (let z = p.conventional; z < p.nrZones; z++) {
          zones.reset(zones.start(z));
          mem.fill(0, z * zoneBytes, (z + 1) * zoneBytes);
        }
      });
    },
  };
}
