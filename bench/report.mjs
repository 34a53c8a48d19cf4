// Summaries, the text table and the SVG chart for bench/run.mjs. No dependencies.

export const MODES = [
  { mode: 'copy', flags: [] },
  { mode: 'get-data', flags: ['-g'] },
  { mode: 'user-copy', flags: ['-u'] },
  { mode: 'zero-copy', flags: ['-z'] },
  { mode: 'auto-buf-reg', flags: ['--auto_zc'] },
];

const mean = (a) => a.reduce((s, x) => s + x, 0) / a.length;
function median(a) {
  const b = [...a].sort((x, y) => x - y);
  const m = b.length >> 1;
  return b.length % 2 ? b[m] : (b[m - 1] + b[m]) / 2;
}
function stdev(a) {
  if (a.length < 2) return 0;
  const m = mean(a);
  return Math.sqrt(a.reduce((s, x) => s + (x - m) ** 2, 0) / (a.length - 1));
}

/**
 * One (system, job) cell over the repetitions that succeeded: medians (one disturbed repetition on a
 * shared, emulated machine does not move them), min/max/stdev of MiB/s, mean competing host load.
 */
export function summarize(reps) {
  const ok = reps.filter((r) => !r.error);
  if (!ok.length) return { n: 0, errors: reps.length, error: reps.find((r) => r.error)?.error };
  const bw = ok.map((r) => r.mibps);
  return {
    n: ok.length,
    errors: reps.length - ok.length,
    iops: median(ok.map((r) => r.iops)),
    mibps: median(bw),
    mibpsMin: Math.min(...bw),
    mibpsMax: Math.max(...bw),
    mibpsStdev: stdev(bw),
    p50us: median(ok.map((r) => r.p50us)),
    p99us: median(ok.map((r) => r.p99us)),
    srvCpuPct: ok[0].srvCpuPct === undefined ? undefined : median(ok.map((r) => r.srvCpuPct)),
    srvUsPerIo: ok[0].srvUsPerIo === undefined ? undefined : median(ok.map((r) => r.srvUsPerIo)),
    hostOthers: ok.every((r) => r.hostOthers !== undefined) ? mean(ok.map((r) => r.hostOthers)) : undefined,
  };
}

/** Adds ratio fields: vsKernelLoop (loop-backed rows and the bare file), ublkitVsKublk (same target+mode). */
export function addRatios(results, systems) {
  const byName = new Map(systems.map((s) => [s.name, s]));
  const cell = (sys, job) => results.find((r) => r.system === sys && r.job === job)?.summary;
  for (const r of results) {
    const s = byName.get(r.system);
    if (!r.summary.n) continue;
    if (s.target === 'loop' || s.name === 'file') {
      const k = cell('kernel-loop', r.job);
      if (k?.n && s.name !== 'kernel-loop') r.summary.vsKernelLoop = r.summary.mibps / k.mibps;
    }
    if (s.impl === 'ublkit') {
      const k = cell(`kublk-${s.target}-${s.mode}`, r.job);
      if (k?.n) r.summary.ublkitVsKublk = r.summary.mibps / k.mibps;
    }
  }
}

function fmt(x, digits = 0) {
  if (x === undefined || x === null || Number.isNaN(x)) return '-';
  if (Math.abs(x) >= 1e4 && digits === 0) return Math.round(x).toString();
  return x.toFixed(digits);
}

function pad(rows) {
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  const num = rows[0].map((_, i) => rows.slice(1).every((r) => /^[-\d.%x±]*$/.test(String(r[i]))));
  return rows.map((r) => r.map((c, i) => (num[i] ? String(c).padStart(w[i]) : String(c).padEnd(w[i]))).join('  ').trimEnd());
}

/** The main table: one row per (system, job), grouped by job. */
export function table(results, systems, jobs) {
  const rows = [['system', 'mode', 'job', 'IOPS', 'MiB/s', 'p50us', 'p99us', 'min-max MiB/s', '±sd%', 'vs kloop', 'ublkit/kublk', 'srvCPU%', 'srv us/IO', 'host busy']];
  for (const job of jobs) {
    for (const s of systems) {
      const r = results.find((x) => x.system === s.name && x.job === job.name);
      if (!r) continue;
      const m = r.summary;
      if (!m.n) { rows.push([s.name, s.mode, job.name, 'FAIL', '-', '-', '-', '-', '-', '-', '-', '-', '-', '-']); continue; }
      rows.push([
        s.name, s.mode, job.name, fmt(m.iops), fmt(m.mibps, 1), fmt(m.p50us), fmt(m.p99us),
        m.n > 1 ? `${fmt(m.mibpsMin, 1)}-${fmt(m.mibpsMax, 1)}` : '-',
        m.n > 1 ? fmt((100 * m.mibpsStdev) / m.mibps, 0) : '-',
        m.vsKernelLoop !== undefined ? `${fmt(m.vsKernelLoop, 2)}x` : '-',
        m.ublkitVsKublk !== undefined ? `${fmt(m.ublkitVsKublk, 2)}x` : '-',
        fmt(m.srvCpuPct), m.srvUsPerIo !== undefined ? fmt(m.srvUsPerIo, 1) : '-',
        m.hostOthers !== undefined ? fmt(m.hostOthers, 1) : '-',
      ]);
    }
    rows.push(rows[0].map(() => ''));
  }
  return pad(rows).join('\n');
}

/** ublkit/kublk MiB/s ratio per target x mode x job, and loop modes vs the kernel loop driver. */
export function ratioMatrix(results, systems, jobs) {
  const out = [];
  const cell = (sys, job) => results.find((r) => r.system === sys && r.job === job)?.summary;
  for (const target of ['null', 'loop']) {
    const rows = [[`ublkit/kublk ${target}`, ...jobs.map((j) => j.name)]];
    for (const { mode } of MODES) {
      if (!systems.some((s) => s.name === `ublkit-${target}-${mode}`)) continue;
      rows.push([mode, ...jobs.map((j) => {
        const c = cell(`ublkit-${target}-${mode}`, j.name);
        return c?.ublkitVsKublk !== undefined ? `${fmt(c.ublkitVsKublk, 2)}x` : '-';
      })]);
    }
    if (rows.length > 1) out.push(pad(rows).join('\n'));
  }
  for (const target of ['null', 'loop']) {
    const rows = [[`server CPU us/IO ublkit/kublk ${target}`, ...jobs.map((j) => j.name)]];
    for (const { mode } of MODES) {
      if (!systems.some((s) => s.name === `ublkit-${target}-${mode}`)) continue;
      rows.push([mode, ...jobs.map((j) => {
        const a = cell(`ublkit-${target}-${mode}`, j.name);
        const k = cell(`kublk-${target}-${mode}`, j.name);
        return a?.srvUsPerIo && k?.srvUsPerIo ? `${fmt(a.srvUsPerIo / k.srvUsPerIo, 2)}x` : '-';
      })]);
    }
    if (rows.slice(1).some((r) => r.slice(1).some((c) => c !== '-'))) out.push(pad(rows).join('\n'));
  }
  if (systems.some((s) => s.name === 'kernel-loop')) {
    const rows = [['vs kernel loop', ...jobs.map((j) => j.name)]];
    for (const s of systems.filter((x) => x.target === 'loop' || x.name === 'file')) {
      if (s.name === 'kernel-loop') continue;
      rows.push([s.name, ...jobs.map((j) => {
        const c = cell(s.name, j.name);
        return c?.vsKernelLoop !== undefined ? `${fmt(c.vsKernelLoop, 2)}x` : '-';
      })]);
    }
    if (rows.length > 1) out.push(pad(rows).join('\n'));
  }
  return out.join('\n\n');
}

/** Axis end and tick step: 1, 2, 2.5 or 5 x 10^k, about four ticks. */
function niceAxis(v) {
  if (!(v > 0)) return { max: 1, step: 0.25 };
  const raw = v / 4;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * p).find((x) => x >= raw);
  return { max: Math.ceil(v / step - 1e-9) * step, step };
}

function esc(s) {
  return String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c]));
}

function color(s) {
  if (s.impl === 'ublkit') return s.target === 'null' ? '#1f5fbf' : '#4a90e2';
  if (s.impl === 'kublk') return s.target === 'null' ? '#c0601a' : '#f0a040';
  return '#6a6a6a';
}

/** Hand-written SVG: one panel per job, a horizontal bar (mean MiB/s, min-max whisker) per system. */
export function svg(results, systems, jobs, meta) {
  const barH = 14, gap = 4, labelW = 190, plotW = 330, valueW = 70, panelPad = 34;
  const panelW = labelW + plotW + valueW;
  const panelH = panelPad + systems.length * (barH + gap) + 26;
  const cols = jobs.length > 1 ? 2 : 1;
  const rowsN = Math.ceil(jobs.length / cols);
  const headH = 58, legendH = 26;
  const W = cols * panelW + (cols + 1) * 20;
  const H = headH + rowsN * panelH + legendH + 10;
  const o = [];
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`);
  o.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  o.push(`<text x="20" y="24" font-size="16" font-weight="bold">ublkit benchmark: median MiB/s per job and system (higher is better)</text>`);
  o.push(`<text x="20" y="42" fill="#444">${esc(meta.subtitle)}</text>`);
  jobs.forEach((job, ji) => {
    const px = 20 + (ji % cols) * (panelW + 20);
    const py = headH + Math.floor(ji / cols) * panelH;
    const cells = systems.map((s) => results.find((r) => r.system === s.name && r.job === job.name)?.summary);
    const { max, step } = niceAxis(Math.max(...cells.map((c) => (c?.n ? c.mibpsMax : 0))));
    const scale = plotW / max;
    o.push(`<g transform="translate(${px},${py})">`);
    o.push(`<text x="0" y="16" font-size="13" font-weight="bold">${esc(job.title)}</text>`);
    const x0 = labelW;
    o.push(`<line x1="${x0}" y1="${panelPad - 6}" x2="${x0}" y2="${panelPad + systems.length * (barH + gap)}" stroke="#999"/>`);
    for (let v = 0; v <= max + step / 1e6; v += step) {
      const x = (x0 + v * scale).toFixed(1);
      o.push(`<line x1="${x}" y1="${panelPad - 6}" x2="${x}" y2="${panelPad + systems.length * (barH + gap)}" stroke="#e4e4e4"/>`);
      o.push(`<text x="${x}" y="${panelPad + systems.length * (barH + gap) + 14}" text-anchor="middle" fill="#666">${fmt(v, step < 1 ? 1 : 0)}</text>`);
    }
    systems.forEach((s, i) => {
      const y = panelPad + i * (barH + gap);
      if (i > 0 && (systems[i - 1].target === 'null') !== (s.target === 'null')) {
        o.push(`<line x1="0" y1="${y - gap / 2}" x2="${x0 + plotW}" y2="${y - gap / 2}" stroke="#bbb" stroke-dasharray="3 3"/>`);
      }
      const c = cells[i];
      o.push(`<text x="${x0 - 6}" y="${y + barH - 3}" text-anchor="end">${esc(s.name)}</text>`);
      if (!c) return;
      if (!c.n) { o.push(`<text x="${x0 + 4}" y="${y + barH - 3}" fill="#c00">failed</text>`); return; }
      o.push(`<rect x="${x0}" y="${y}" width="${Math.max(0.5, c.mibps * scale).toFixed(1)}" height="${barH}" fill="${color(s)}"><title>${esc(`${s.name} ${job.name}: ${fmt(c.mibps, 1)} MiB/s, ${fmt(c.iops)} IOPS, p50 ${fmt(c.p50us)} us, p99 ${fmt(c.p99us)} us`)}</title></rect>`);
      if (c.n > 1) {
        const a = x0 + c.mibpsMin * scale, b = x0 + c.mibpsMax * scale, m = y + barH / 2;
        o.push(`<path d="M${a.toFixed(1)} ${m}H${b.toFixed(1)}M${a.toFixed(1)} ${m - 3}V${m + 3}M${b.toFixed(1)} ${m - 3}V${m + 3}" stroke="#222" stroke-width="1"/>`);
      }
      o.push(`<text x="${x0 + plotW + 6}" y="${y + barH - 3}">${fmt(c.mibps, 1)}</text>`);
    });
    o.push('</g>');
  });
  const ly = H - legendH + 4;
  const legend = [['#1f5fbf', 'ublkit null'], ['#4a90e2', 'ublkit loop'], ['#c0601a', 'kublk null'], ['#f0a040', 'kublk loop'], ['#6a6a6a', 'kernel baselines'], [null, 'whisker: min-max over repetitions']];
  let lx = 20;
  for (const [c, t] of legend) {
    if (c) { o.push(`<rect x="${lx}" y="${ly}" width="12" height="12" fill="${c}"/>`); lx += 16; }
    o.push(`<text x="${lx}" y="${ly + 10}">${esc(t)}</text>`);
    lx += t.length * 6.2 + 18;
  }
  o.push('</svg>');
  return o.join('\n') + '\n';
}
