/**
 * The one layout of every picture of a network: a title strip (what network, layer, mode, image and
 * class), a grid of tiles enlarged by nearest neighbour (pixels stay pixels) to at least MIN_TILE px,
 * a label under each tile, and a colour bar at the right for each colour that stands for a number.
 * Words are SVG rendered by sharp (librsvg) in the margins only: nothing is drawn over a tile. The
 * title and the layout also go into the PNG as text chunks ("Title", "Layout"), so they can be read
 * without looking.
 */
import sharp from 'sharp';
import { escapeXml, fitText, textWidth } from './chart.js';
import { gridRaster, jet, withText, type Normalize, type Tile } from './image.js';

/** Smallest side of a drawn tile in pixels: a 3×3 or 7×7 kernel must be seen, not guessed. */
export const MIN_TILE = 48;

export interface ColorBar {
  /** What the colour stands for, e.g. "fall in P(triangle)". */
  label: string;
  /** Values at the bottom and top; words ("tile min") where each tile has its own scale. */
  min: number | string;
  max: number | string;
  colors: 'jet' | 'gray';
}

interface FigureSpec {
  title: string;
  /** A second, smaller line: how the tiles were scaled, what the rows are. */
  subtitle?: string;
  tiles: readonly Tile[];
  /** One short label per tile (fewer: the rest unlabelled). */
  labels?: readonly string[];
  normalize: Normalize;
  cols?: number;
  /** Smallest tile side in pixels; default MIN_TILE. */
  minTile?: number;
  /** Each tile enlarged to fill its cell (tiles of different sizes). */
  fit?: boolean;
  bars?: readonly ColorBar[];
}

/** Where everything went, in pixels of the PNG (also its "Layout" text chunk, as JSON). */
export interface FigureLayout {
  title: string;
  width: number;
  height: number;
  /** Rows 0..titleHeight hold the title (and subtitle) only. */
  titleHeight: number;
  grid: { left: number; top: number; width: number; height: number; cols: number; rows: number; pad: number; labelHeight: number };
  /** A tile's cell: every tile is drawn at least this large (small ones fitted or scaled into it). */
  cell: { width: number; height: number };
  scale: number;
  minTile: number;
  tiles: number;
  bars: string[];
}

const FONT = 'DejaVu Sans, Helvetica, Arial, sans-serif';
const MARGIN = 8;
const LABEL_FONT = 10;
const BAR = { width: 14, minHeight: 120, font: 10 } as const;
const num = (v: number | string): string => (typeof v === 'string' ? v : String(Number(v.toPrecision(3))));

/** Text at (x, y); with `room`, made to fit it rather than run into the next tile. */
function text(x: number, y: number, s: string, size: number, attrs = '', room = Infinity): string {
  const t = fitText(s, size, room);
  return `<text x="${x}" y="${y}" font-size="${t.size}" ${attrs}>${escapeXml(t.text)}</text>`;
}

function colorBar(bar: ColorBar, id: number, x: number, y: number, h: number): { svg: string[]; width: number } {
  const stops = bar.colors === 'jet' ? Array.from({ length: 9 }, (_, i) => jet(i / 8)) : [[0, 0, 0] as const, [255, 255, 255] as const];
  const svg = [`<defs><linearGradient id="bar${id}" x1="0" y1="1" x2="0" y2="0">`];
  stops.forEach(([r, g, b], i) => svg.push(`<stop offset="${i / (stops.length - 1)}" stop-color="rgb(${r},${g},${b})"/>`));
  svg.push('</linearGradient></defs>');
  svg.push(`<rect x="${x}" y="${y}" width="${BAR.width}" height="${h}" fill="url(#bar${id})" stroke="#333"/>`);
  const hi = num(bar.max);
  const lo = num(bar.min);
  const nx = x + BAR.width + 4;
  svg.push(text(nx, y + BAR.font, hi, BAR.font, 'fill="#222"'), text(nx, y + h, lo, BAR.font, 'fill="#222"'));
  const lx = nx + Math.max(textWidth(hi, BAR.font), textWidth(lo, BAR.font)) + 6 + BAR.font;
  const t = fitText(bar.label, BAR.font, h);
  svg.push(
    `<text transform="translate(${lx} ${y + h / 2}) rotate(-90)" font-size="${t.size}" text-anchor="middle">${escapeXml(t.text)}</text>`,
  );
  return { svg, width: lx + 4 - x };
}

/** Lays out and renders a picture; the PNG carries the title and the layout as text. */
export async function figure(spec: FigureSpec): Promise<{ png: Buffer; layout: FigureLayout }> {
  const minTile = Math.max(MIN_TILE, spec.minTile ?? MIN_TILE);
  const side = Math.min(Math.max(...spec.tiles.map((t) => t.width)), Math.max(...spec.tiles.map((t) => t.height)));
  const scale = Math.max(1, Math.ceil(minTile / side));
  const labelHeight = spec.labels?.length ? LABEL_FONT + 5 : 0;
  const g = gridRaster(spec.tiles, {
    normalize: spec.normalize,
    ...(spec.cols !== undefined ? { cols: spec.cols } : {}),
    pad: 2,
    scale,
    below: labelHeight,
    ...(spec.fit ? { fit: true } : {}),
  });
  const titleHeight = 30 + (spec.subtitle ? 16 : 0);
  const left = MARGIN;
  const top = titleHeight;
  const svg: string[] = [text(MARGIN, 21, spec.title, 15, 'font-weight="bold"')];
  if (spec.subtitle) svg.push(text(MARGIN, 39, spec.subtitle, 11, 'fill="#444"'));
  (spec.labels ?? []).forEach((label, i) => {
    if (i >= spec.tiles.length || label === '') return;
    const x = left + g.pad + (i % g.cols) * (g.cell.width + g.pad);
    const y = top + g.pad + Math.floor(i / g.cols) * (g.cell.height + g.below + g.pad) + g.cell.height + LABEL_FONT + 1;
    svg.push(text(x + g.cell.width / 2, y, label, LABEL_FONT, 'text-anchor="middle" fill="#222"', g.cell.width - 4));
  });
  let x = left + g.width + 10;
  const barHeight = Math.max(BAR.minHeight, g.height - 2 * g.pad);
  (spec.bars ?? []).forEach((bar, i) => {
    const b = colorBar(bar, i, x, top + g.pad, barHeight);
    svg.push(...b.svg);
    x += b.width + 12;
  });
  const width = Math.ceil(
    Math.max(x, left + g.width + MARGIN, MARGIN * 2 + textWidth(spec.title, 15, true), textWidth(spec.subtitle ?? '', 11)),
  );
  const height = top + Math.max(g.height, spec.bars?.length ? barHeight + 2 * g.pad : 0) + MARGIN;
  const overlay = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="${FONT}">${svg.join('')}</svg>`;
  const png = await sharp(Buffer.from(g.rgb.buffer, g.rgb.byteOffset, g.rgb.byteLength), {
    raw: { width: g.width, height: g.height, channels: 3 },
  })
    .extend({ top, left, right: width - left - g.width, bottom: height - top - g.height, background: '#ffffff' })
    .composite([{ input: Buffer.from(overlay), top: 0, left: 0 }])
    .removeAlpha()
    .png()
    .toBuffer();
  const layout: FigureLayout = {
    title: spec.title,
    width,
    height,
    titleHeight,
    grid: { left, top, width: g.width, height: g.height, cols: g.cols, rows: g.rows, pad: g.pad, labelHeight },
    cell: g.cell,
    scale,
    minTile,
    tiles: spec.tiles.length,
    bars: (spec.bars ?? []).map((b) => b.label),
  };
  const words: Record<string, string> = { Title: spec.title, Layout: JSON.stringify(layout) };
  if (spec.subtitle) words['Description'] = spec.subtitle;
  return { png: withText(png, words), layout };
}
