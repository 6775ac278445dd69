/**
 * Training curves and confusion matrices as SVG, rendered to PNG by sharp (librsvg). The layout
 * math (ticks, scales, colours) is pure and exported; only the `write*` functions touch disk.
 */
import sharp from 'sharp';
import { writeFileAtomic } from '../util/fsx.js';
import { encodePngSync } from './image.js';

interface Series {
  name: string;
  points: ReadonlyArray<readonly [number, number]>;
  /** CSS colour; defaults to the next colour of the palette. */
  color?: string;
}

interface LineChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly Series[];
  logY?: boolean;
  width?: number;
  height?: number;
}

interface HeatmapSpec {
  title: string;
  rowLabels: readonly string[];
  colLabels: readonly string[];
  values: readonly (readonly number[])[];
  /** Numbers in the cells; by default only when the cells are large enough to read them. */
  annotate?: boolean;
  xLabel?: string;
  yLabel?: string;
  /** Cell edge in pixels; by default the matrix fits in about 640 px. */
  cellSize?: number;
}

/** Matplotlib's tab10: distinguishable, and familiar to anyone who reads training curves. */
const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'] as const;

const FONT = 'DejaVu Sans, Helvetica, Arial, sans-serif';

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Advance of a DejaVu Sans character, as a share of the font size, a little over its mean (bold wider). */
export const textWidth = (s: string, size: number, bold = false): number => s.length * size * (bold ? 0.6 : 0.55);

/**
 * Text that fits `room` pixels: a smaller font down to 7 px, then cut with an ellipsis (librsvg
 * ignores SVG's textLength, so the text itself must fit).
 */
export function fitText(s: string, size: number, room: number): { text: string; size: number } {
  if (textWidth(s, size) <= room) return { text: s, size };
  const smaller = Math.floor((room / textWidth(s, 1)) * 10) / 10;
  if (smaller >= 7) return { text: s, size: smaller };
  const chars = Math.max(1, Math.floor(room / textWidth('x', 7)) - 1);
  return { text: `${s.slice(0, chars)}…`, size: 7 };
}

// ---------------------------------------------------------------------------------------------
// Axes

interface Axis {
  min: number;
  max: number;
  ticks: number[];
  /** Formats a tick value consistently with the others. */
  format: (v: number) => string;
}

/**
 * Round-number ticks covering [min, max] (steps of 1, 2 or 5 × 10^k), about `target` of them;
 * the axis is widened to the outer ticks. A degenerate range is widened around its value.
 */
export function niceAxis(min: number, max: number, target = 5): Axis {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return niceAxis(0, 1, target);
  if (max < min) [min, max] = [max, min];
  if (max === min) {
    const pad = min === 0 ? 1 : Math.abs(min) * 0.1;
    return niceAxis(min - pad, max + pad, target);
  }
  const rough = (max - min) / Math.max(1, target);
  const mag = 10 ** Math.floor(Math.log10(rough));
  const r = rough / mag;
  const step = (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag;
  const lo = Math.floor(min / step + 1e-9);
  const hi = Math.ceil(max / step - 1e-9);
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  const ticks: number[] = [];
  // Integer multiples, rounded to the step's decimals, so 0.1 + 0.2 shows as 0.3.
  for (let i = lo; i <= hi; i++) ticks.push(Number((i * step).toFixed(Math.min(decimals, 20))));
  const big = Math.max(Math.abs(lo * step), Math.abs(hi * step));
  const format =
    big >= 1e6 || step < 1e-4
      ? (v: number) => (v === 0 ? '0' : v.toExponential(Math.max(0, significantDecimals(step, big))))
      : (v: number) => v.toFixed(decimals);
  return { min: lo * step, max: hi * step, ticks, format };
}

/** Mantissa decimals needed to tell ticks `step` apart on a scale of magnitude `big`. */
function significantDecimals(step: number, big: number): number {
  return Math.floor(Math.log10(big)) - Math.floor(Math.log10(step));
}

/** Decades covering [min, max] (both > 0), with 2 and 5 in between when the span is short. */
export function logAxis(min: number, max: number): Axis {
  if (!(min > 0) || !(max > 0) || !Number.isFinite(min) || !Number.isFinite(max)) return logAxis(1, 10);
  if (max < min) [min, max] = [max, min];
  const lo = Math.floor(Math.log10(min) + 1e-9);
  let hi = Math.ceil(Math.log10(max) - 1e-9);
  if (hi === lo) hi = lo + 1;
  const ticks: number[] = [];
  const fine = hi - lo <= 2;
  for (let e = lo; e <= hi; e++) {
    for (const m of fine && e < hi ? [1, 2, 5] : [1]) ticks.push(Number(`${m}e${e}`));
  }
  // Many decades: label every other one so the labels do not collide.
  const shown = hi - lo > 8 ? ticks.filter((t) => Math.round(Math.log10(t) - lo) % 2 === 0) : ticks;
  const format = (v: number): string => {
    const e = Math.log10(v);
    return v >= 1e-3 && v < 1e5 ? String(Number(v.toPrecision(6))) : `1e${Math.round(e)}`;
  };
  // `1e-5` parses exactly where 10 ** -5 does not.
  return { min: Number(`1e${lo}`), max: Number(`1e${hi}`), ticks: shown, format };
}

// ---------------------------------------------------------------------------------------------
// Line chart

/** Splits a series into runs of finite (and, on a log axis, positive) points. */
function segments(points: Series['points'], logY: boolean): [number, number][][] {
  const runs: [number, number][][] = [];
  let run: [number, number][] = [];
  for (const [x, y] of points) {
    if (Number.isFinite(x) && Number.isFinite(y) && (!logY || y > 0)) run.push([x, y]);
    else if (run.length > 0) {
      runs.push(run);
      run = [];
    }
  }
  if (run.length > 0) runs.push(run);
  return runs;
}

const fmt = (v: number): string => (Math.round(v * 100) / 100).toString();

export function lineChart(spec: LineChartSpec): string {
  const width = spec.width ?? 720;
  const height = spec.height ?? 440;
  const logY = spec.logY ?? false;
  // The legend sits right of the plot, never over a curve.
  const named = spec.series.map((s, i) => ({ s, i })).filter(({ s }) => s.name !== '');
  const lw = named.length > 0 ? Math.min(width / 3, 34 + Math.max(...named.map(({ s }) => s.name.length)) * 7) : 0;
  const m = { left: 72, right: named.length > 0 ? lw + 28 : 20, top: 40, bottom: 52 };
  const pw = Math.max(10, width - m.left - m.right);
  const ph = Math.max(10, height - m.top - m.bottom);

  const runs = spec.series.map((s) => segments(s.points, logY));
  const xs: number[] = [];
  const ys: number[] = [];
  for (const rs of runs)
    for (const r of rs)
      for (const [x, y] of r) {
        xs.push(x);
        ys.push(y);
      }
  const empty = xs.length === 0;
  const minOf = (a: number[]): number => a.reduce((p, v) => Math.min(p, v), Infinity);
  const maxOf = (a: number[]): number => a.reduce((p, v) => Math.max(p, v), -Infinity);
  const xAxis = empty ? niceAxis(0, 1) : niceAxis(minOf(xs), maxOf(xs), 6);
  const yAxis = empty ? (logY ? logAxis(1, 10) : niceAxis(0, 1)) : logY ? logAxis(minOf(ys), maxOf(ys)) : niceAxis(minOf(ys), maxOf(ys), 5);

  const sx = (x: number): number => m.left + ((x - xAxis.min) / (xAxis.max - xAxis.min)) * pw;
  const ty = logY ? Math.log10 : (v: number) => v;
  const y0 = ty(yAxis.min);
  const y1 = ty(yAxis.max);
  const sy = (y: number): number => m.top + ph - ((ty(y) - y0) / (y1 - y0)) * ph;

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${FONT}">`,
  );
  out.push(`<rect width="100%" height="100%" fill="#ffffff"/>`);
  out.push(`<text x="${fmt(width / 2)}" y="24" font-size="16" font-weight="bold" text-anchor="middle">${escapeXml(spec.title)}</text>`);
  // Grid and tick labels.
  for (const t of xAxis.ticks) {
    const x = fmt(sx(t));
    out.push(`<line x1="${x}" y1="${m.top}" x2="${x}" y2="${m.top + ph}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${x}" y="${m.top + ph + 16}" font-size="11" text-anchor="middle" fill="#333">${escapeXml(xAxis.format(t))}</text>`);
  }
  for (const t of yAxis.ticks) {
    const y = fmt(sy(t));
    out.push(`<line x1="${m.left}" y1="${y}" x2="${m.left + pw}" y2="${y}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${m.left - 6}" y="${y}" dy="4" font-size="11" text-anchor="end" fill="#333">${escapeXml(yAxis.format(t))}</text>`);
  }
  out.push(`<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${fmt(m.left + pw / 2)}" y="${height - 12}" font-size="13" text-anchor="middle">${escapeXml(spec.xLabel)}</text>`);
  out.push(
    `<text transform="translate(16 ${fmt(m.top + ph / 2)}) rotate(-90)" font-size="13" text-anchor="middle">${escapeXml(spec.yLabel)}</text>`,
  );

  // Curves, clipped to the plot area.
  out.push(`<defs><clipPath id="plot"><rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}"/></clipPath></defs>`);
  out.push(`<g clip-path="url(#plot)" fill="none" stroke-width="2" stroke-linejoin="round" stroke-linecap="round">`);
  spec.series.forEach((s, i) => {
    const color = escapeXml(s.color ?? PALETTE[i % PALETTE.length] ?? '#000');
    for (const run of runs[i] ?? []) {
      if (run.length === 1) {
        // A lone point has no line to draw: mark it.
        const [x, y] = run[0] as [number, number];
        out.push(`<circle cx="${fmt(sx(x))}" cy="${fmt(sy(y))}" r="3" fill="${color}" stroke="none"/>`);
      } else {
        const d = run.map(([x, y], k) => `${k === 0 ? 'M' : 'L'}${fmt(sx(x))} ${fmt(sy(y))}`).join('');
        out.push(`<path d="${d}" stroke="${color}"/>`);
      }
    }
  });
  out.push('</g>');

  if (empty) {
    out.push(`<text x="${fmt(m.left + pw / 2)}" y="${fmt(m.top + ph / 2)}" font-size="14" text-anchor="middle" fill="#888">no data</text>`);
  }
  if (named.length > 0) {
    const lx = m.left + pw + 12;
    const ly = m.top;
    out.push(
      `<rect x="${fmt(lx)}" y="${ly}" width="${fmt(lw)}" height="${named.length * 18 + 8}" fill="#ffffff" fill-opacity="0.85" stroke="#bbb"/>`,
    );
    named.forEach(({ s, i }, row) => {
      const color = escapeXml(s.color ?? PALETTE[i % PALETTE.length] ?? '#000');
      const y = ly + 13 + row * 18;
      out.push(`<line x1="${fmt(lx + 6)}" y1="${y}" x2="${fmt(lx + 26)}" y2="${y}" stroke="${color}" stroke-width="2"/>`);
      const t = fitText(s.name, 11, lw - 36);
      out.push(`<text x="${fmt(lx + 31)}" y="${y}" dy="4" font-size="${t.size}">${escapeXml(t.text)}</text>`);
    });
  }
  out.push('</svg>');
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Heatmap

/** Sequential white → dark blue (ColorBrewer "Blues" stops), t in [0, 1]. */
const BLUES: readonly (readonly [number, number, number])[] = [
  [247, 251, 255],
  [222, 235, 247],
  [198, 219, 239],
  [158, 202, 225],
  [107, 174, 214],
  [66, 146, 198],
  [33, 113, 181],
  [8, 81, 156],
  [8, 48, 107],
];

export function blues(t: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (BLUES.length - 1);
  const i = Math.min(BLUES.length - 2, Math.floor(x));
  const f = x - i;
  const a = BLUES[i] as readonly [number, number, number];
  const b = BLUES[i + 1] as readonly [number, number, number];
  return [0, 1, 2].map((c) => Math.round((a[c] as number) + ((b[c] as number) - (a[c] as number)) * f)) as [number, number, number];
}

const rgbHex = ([r, g, b]: readonly number[]): string => `#${[r, g, b].map((v) => (v ?? 0).toString(16).padStart(2, '0')).join('')}`;

/**
 * Rows or columns beyond which a heatmap is refused: at the default ~640 px its cells would be
 * under 2.5 px, no label fits, and at 10 000 classes the raster alone would be 300 MB.
 */
export const HEATMAP_MAX = 256;

export function heatmap(spec: HeatmapSpec): string {
  const rows = spec.values.length;
  const cols = spec.colLabels.length;
  if (rows > HEATMAP_MAX || cols > HEATMAP_MAX) {
    const what = `at most ${HEATMAP_MAX} rows and columns for heatmap "${spec.title}" (more cannot be read)`;
    throw new RangeError(`Expected ${what} but received ${rows}×${cols}`);
  }
  if (spec.rowLabels.length !== rows || spec.values.some((r) => r.length !== cols)) {
    const lengths = [...new Set(spec.values.map((r) => r.length))].join('/');
    throw new RangeError(
      `Expected a ${spec.rowLabels.length}×${cols} matrix (rowLabels × colLabels) for heatmap "${spec.title}" but received ${rows} rows of length ${lengths || 0}`,
    );
  }
  const cell = spec.cellSize ?? Math.max(1, Math.min(48, Math.floor(640 / Math.max(1, rows, cols))));
  if (!Number.isSafeInteger(cell) || cell < 1) throw new RangeError(`Expected a positive integer for cellSize but received ${cell}`);
  const labelFont = Math.min(12, Math.floor(cell * 0.8));
  const showLabels = labelFont >= 7;

  let lo = 0; // confusion counts start at zero; a negative value extends the scale down
  let hi = -Infinity;
  let integers = true;
  let widest = 1;
  for (const row of spec.values) {
    for (const v of row) {
      if (!Number.isFinite(v)) continue;
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
      if (!Number.isInteger(v)) integers = false;
    }
  }
  if (hi === -Infinity) hi = 1;
  const span = hi > lo ? hi - lo : 1;
  const label = (v: number): string => (integers ? String(v) : v.toFixed(2));
  for (const row of spec.values) for (const v of row) if (Number.isFinite(v)) widest = Math.max(widest, label(v).length);
  const valueFont = Math.min(12, Math.floor((cell * 1.5) / widest));
  const annotate = spec.annotate ?? valueFont >= 8;

  const longest = (xs: readonly string[]): number => xs.reduce((p, s) => Math.max(p, s.length), 0);
  const textWidth = (chars: number): number => Math.min(160, chars * labelFont * 0.62);
  // Integer origin, so the cell raster lands on whole pixels and stays crisp.
  const left = Math.ceil(20 + (spec.yLabel ? 20 : 0) + (showLabels ? textWidth(longest(spec.rowLabels)) + 6 : 0));
  const top = 40;
  const bottom = (showLabels ? textWidth(longest(spec.colLabels)) * 0.75 + 12 : 4) + (spec.xLabel ? 26 : 8);
  const barX = left + cols * cell + 16;
  const width = Math.max(200, barX + 16 + 8 + 7 * label(hi).length + 8);
  const height = Math.ceil(top + Math.max(40, rows * cell) + bottom);

  // The cells as one raster at the final resolution: a 1000-class matrix is a million cells,
  // far too many SVG elements.
  const w = cols * cell;
  const h = rows * cell;
  const rgb = new Uint8Array(w * h * 3);
  for (let r = 0; r < rows; r++) {
    const row = spec.values[r] as readonly number[];
    for (let c = 0; c < cols; c++) {
      const v = row[c] as number;
      const color = Number.isFinite(v) ? blues((v - lo) / span) : ([217, 217, 217] as const);
      for (let y = r * cell; y < (r + 1) * cell; y++) {
        for (let x = c * cell; x < (c + 1) * cell; x++) rgb.set(color, (y * w + x) * 3);
      }
    }
  }

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${FONT}">`,
  );
  out.push(`<rect width="100%" height="100%" fill="#ffffff"/>`);
  out.push(`<text x="${fmt(width / 2)}" y="24" font-size="16" font-weight="bold" text-anchor="middle">${escapeXml(spec.title)}</text>`);
  if (rows > 0 && cols > 0) {
    out.push(
      `<image x="${left}" y="${top}" width="${w}" height="${h}" href="data:image/png;base64,${encodePngSync(rgb, w, h).toString('base64')}"/>`,
    );
  }
  out.push(`<rect x="${left}" y="${top}" width="${w}" height="${h}" fill="none" stroke="#333"/>`);
  if (annotate) {
    for (let r = 0; r < rows; r++) {
      const row = spec.values[r] as readonly number[];
      for (let c = 0; c < cols; c++) {
        const v = row[c] as number;
        if (!Number.isFinite(v)) continue;
        const fill = (v - lo) / span > 0.55 ? '#ffffff' : '#000000';
        out.push(
          `<text x="${fmt(left + c * cell + cell / 2)}" y="${fmt(top + r * cell + cell / 2)}" dy="${fmt(valueFont * 0.35)}" font-size="${valueFont}" text-anchor="middle" fill="${fill}">${label(v)}</text>`,
        );
      }
    }
  }
  if (showLabels) {
    spec.rowLabels.forEach((s, r) => {
      out.push(
        `<text x="${left - 6}" y="${fmt(top + r * cell + cell / 2)}" dy="${fmt(labelFont * 0.35)}" font-size="${labelFont}" text-anchor="end">${escapeXml(s)}</text>`,
      );
    });
    spec.colLabels.forEach((s, c) => {
      out.push(
        `<text transform="translate(${fmt(left + c * cell + cell / 2)} ${top + h + 8}) rotate(-45)" font-size="${labelFont}" text-anchor="end">${escapeXml(s)}</text>`,
      );
    });
  }
  if (spec.xLabel) {
    out.push(`<text x="${fmt(left + w / 2)}" y="${height - 8}" font-size="13" text-anchor="middle">${escapeXml(spec.xLabel)}</text>`);
  }
  if (spec.yLabel) {
    out.push(
      `<text transform="translate(16 ${fmt(top + h / 2)}) rotate(-90)" font-size="13" text-anchor="middle">${escapeXml(spec.yLabel)}</text>`,
    );
  }
  // Colour bar: the scale from lo (bottom) to hi (top).
  const barH = Math.max(40, h);
  out.push('<defs><linearGradient id="scale" x1="0" y1="1" x2="0" y2="0">');
  BLUES.forEach((c, i) => out.push(`<stop offset="${fmt(i / (BLUES.length - 1))}" stop-color="${rgbHex(c)}"/>`));
  out.push('</linearGradient></defs>');
  out.push(`<rect x="${barX}" y="${top}" width="16" height="${barH}" fill="url(#scale)" stroke="#333"/>`);
  out.push(`<text x="${barX + 22}" y="${top + 10}" font-size="11">${label(hi)}</text>`);
  out.push(`<text x="${barX + 22}" y="${top + barH}" font-size="11">${label(lo)}</text>`);
  out.push('</svg>');
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Rendering

/** Renders at the SVG's own pixel size, flattened onto white (RGB, no alpha). */
export async function svgToPng(svg: string): Promise<Buffer> {
  return sharp(Buffer.from(svg)).flatten({ background: '#ffffff' }).png().toBuffer();
}

export async function writeChartPng(path: string, spec: LineChartSpec): Promise<void> {
  writeFileAtomic(path, await svgToPng(lineChart(spec)));
}

export async function writeHeatmapPng(path: string, spec: HeatmapSpec): Promise<void> {
  writeFileAtomic(path, await svgToPng(heatmap(spec)));
}
