// The text of `ublkit stats` and `ublkit top`: one device's per-op table, and one row per device.
import type { DeviceStats, OpStats, StatOp } from '../ublk/stats.js';
import { STAT_OPS } from '../ublk/engine/stats.js';
import { UblkError } from '../errors.js';

const MiB = 1 << 20;

/** --watch SEC: a positive number of seconds (fractions allowed), at least 0.1. */
export function parseWatch(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = /^\d+(\.\d+)?$/.test(v.trim()) ? Number(v) : NaN;
  if (!(n >= 0.1 && n <= 86400)) throw new UblkError('EINVAL', `--watch ${v}: seconds between samples must be a number from 0.1 to 86400`);
  return n;
}

/** Requests per second of `op` between two samples of one device ('-' without an earlier one). */
function rate(cur: OpStats, prev: OpStats | undefined, dt: number): string {
  if (!prev || dt <= 0) return '-';
  return String(Math.round(Math.max(0, cur.count - prev.count) / dt));
}

function pad(cols: Array<string | number>, widths: number[]): string {
  return cols.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join(' ').trimEnd();
}

function uptime(sec: number): string {
  const s = Math.floor(sec);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${(Math.round(sec * 10) / 10).toFixed(1)}s`;
}

const STATS_W = [13, 8, 11, 10, 7, 7, 7, 7, 8];

/** `ublkit stats` for one device; `prev` (and `dt` seconds) give IOPS since that sample. */
export function formatStats(s: DeviceStats, prev?: DeviceStats, dt = 0): string {
  const head = `ublkb${s.id}  mode ${s.mode}  target ${s.target}  up ${uptime(s.uptimeSec)}  inflight ${s.inflight.map((n, q) => `q${q}:${n}`).join(' ')}` +
    (s.enabled ? '' : '  (stats off)');
  const lines = [head, pad(['op', 'IOPS', 'count', 'MiB', 'errors', 'p50', 'p90', 'p99', 'max(us)'], STATS_W)];
  for (const op of STAT_OPS) {
    const o = s.ops[op];
    if (op === 'other' && o.count === 0) continue;
    const l = o.latency;
    lines.push(pad([op, rate(o, prev?.ops[op], dt), o.count, (o.bytes / MiB).toFixed(2), o.errors, l.p50, l.p90, l.p99, l.max], STATS_W));
  }
  return lines.join('\n') + '\n';
}

const TOP_W = [8, 12, 14, 8, 8, 9, 9, 7, 8, 8, 8];

/** `ublkit top`: one row per device, rates since the previous sample of the same device. */
export function formatTop(all: DeviceStats[], prev: Map<number, DeviceStats>, dt: number): string {
  const lines = [pad(['dev', 'mode', 'target', 'r/s', 'w/s', 'rMiB/s', 'wMiB/s', 'inflt', 'r p99', 'w p99', 'errors', 'up'], [...TOP_W, 8])];
  for (const s of all) {
    const p = prev.get(s.id);
    const mbps = (op: StatOp) => (p && dt > 0 ? (Math.max(0, s.ops[op].bytes - p.ops[op].bytes) / MiB / dt).toFixed(1) : '-');
    const errors = STAT_OPS.reduce((n, op) => n + s.ops[op].errors, 0);
    const inflight = s.inflight.reduce((a, b) => a + b, 0);
    lines.push(pad([`ublkb${s.id}`, s.mode, s.target.length > 14 ? s.target.slice(0, 13) + '~' : s.target, rate(s.ops.read, p?.ops.read, dt),
      rate(s.ops.write, p?.ops.write, dt), mbps('read'), mbps('write'), inflight, s.ops.read.latency.p99, s.ops.write.latency.p99, errors,
      uptime(s.uptimeSec)], [...TOP_W, 8]));
  }
  if (all.length === 0) lines.push('no device served by a ublkit daemon');
  return lines.join('\n') + '\n';
}
