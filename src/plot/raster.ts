/**
 * Pixel math of the pictures, with nothing Node-only: tiles laid out into RGB rasters (HWC, uint8),
 * the jet colour map and heat maps over an image. src/plot/image.ts encodes them as PNG; the page
 * (src/web/) draws them on a canvas.
 */
/** A planar (CHW) float image: one filter, one feature map, one input. */
export interface Tile {
  data: Float32Array;
  channels: 1 | 3;
  height: number;
  width: number;
}

/**
 * How floats become grey levels: `per-tile` stretches each tile's own min..max to black..white
 * (ZFNet's contrast normalisation: every filter readable, magnitudes not comparable); `global`
 * uses one min..max for all tiles (magnitudes comparable); `none` maps [0, 1] and clamps.
 */
export type Normalize = 'per-tile' | 'global' | 'none';

export interface GridOptions {
  normalize: Normalize;
  /** Tiles per row; default: a near-square grid. */
  cols?: number;
  /** Pixels between tiles and around the grid; default 1. */
  pad?: number;
  /** Integer nearest-neighbour upsampling of every tile (small filters stay crisp); default 1. */
  scale?: number;
  /** Grey level of the padding, 0..255; default 255. */
  background?: number;
  /** Each tile enlarged by the largest integer factor that fits the cell (a small patch fills it like a large one). */
  fit?: boolean;
  /** Pixels kept free under each row (for the tiles' labels); default 0. */
  below?: number;
}

/** An RGB image, row-major, 3 bytes per pixel. */
export interface Raster {
  rgb: Uint8Array;
  width: number;
  height: number;
}

/** Where a grid put its tiles: cell i's top-left corner is (pad + (i % cols)·(cell.width + pad), pad + ⌊i / cols⌋·(cell.height + below + pad)). */
interface Grid extends Raster {
  cols: number;
  rows: number;
  pad: number;
  below: number;
  scale: number;
  cell: { width: number; height: number };
}

export function checkInt(name: string, v: number, min: number): void {
  if (!Number.isSafeInteger(v) || v < min) {
    throw new RangeError(`Expected an integer >= ${min} for ${name} but received ${v}`);
  }
}

export function finiteRange(data: Float32Array, range = { min: Infinity, max: -Infinity }): { min: number; max: number } {
  for (let i = 0; i < data.length; i++) {
    const v = data[i] as number;
    // NaN fails both comparisons, so it never becomes a bound.
    if (v < range.min) range.min = v;
    if (v > range.max) range.max = v;
  }
  if (range.min === -Infinity || range.max === Infinity) {
    // Infinite values would flatten every finite one: leave them out of the bounds.
    const r = { min: Infinity, max: -Infinity };
    for (let i = 0; i < data.length; i++) {
      const v = data[i] as number;
      if (Number.isFinite(v)) {
        if (v < r.min) r.min = v;
        if (v > r.max) r.max = v;
      }
    }
    return r;
  }
  return range;
}

/** Lays tiles out row by row into one RGB raster. */
export function gridRaster(tiles: readonly Tile[], options: GridOptions): Grid {
  if (tiles.length === 0) throw new RangeError('Expected at least one tile for tiles but received 0');
  const pad = options.pad ?? 1;
  const below = options.below ?? 0;
  checkInt('below', below, 0);
  const scale = options.scale ?? 1;
  const cols = options.cols ?? Math.ceil(Math.sqrt(tiles.length));
  const background = options.background ?? 255;
  checkInt('pad', pad, 0);
  checkInt('scale', scale, 1);
  checkInt('cols', cols, 1);
  checkInt('background', background, 0);
  if (background > 255) throw new RangeError(`Expected an integer in 0..255 for background but received ${background}`);
  tiles.forEach((t, i) => {
    checkInt(`tiles[${i}].width`, t.width, 1);
    checkInt(`tiles[${i}].height`, t.height, 1);
    if (t.channels !== 1 && t.channels !== 3) {
      throw new RangeError(`Expected 1 or 3 for tiles[${i}].channels but received ${String(t.channels)}`);
    }
    const want = t.channels * t.height * t.width;
    if (t.data.length !== want) {
      throw new RangeError(
        `Expected ${want} values (${t.channels}×${t.height}×${t.width}) for tiles[${i}].data but received ${t.data.length}`,
      );
    }
  });

  let global = { min: 0, max: 1 };
  if (options.normalize === 'global') {
    const r = { min: Infinity, max: -Infinity };
    for (const t of tiles) {
      const tr = finiteRange(t.data);
      r.min = Math.min(r.min, tr.min);
      r.max = Math.max(r.max, tr.max);
    }
    global = r;
  }

  const rows = Math.ceil(tiles.length / cols);
  const cellW = Math.max(...tiles.map((t) => t.width)) * scale;
  const cellH = Math.max(...tiles.map((t) => t.height)) * scale;
  const width = cols * cellW + (cols + 1) * pad;
  const height = rows * (cellH + below) + (rows + 1) * pad;
  const rgb = new Uint8Array(width * height * 3).fill(background);

  tiles.forEach((t, i) => {
    const { min, max } = options.normalize === 'per-tile' ? finiteRange(t.data) : global;
    const span = max - min;
    // A constant tile has no contrast to stretch: show it mid-grey rather than divide by zero.
    const level = (v: number): number => {
      if (!(span > 0)) return Number.isNaN(v) || !Number.isFinite(min) ? 0 : 128;
      const u = (v - min) / span;
      return Number.isNaN(u) ? 0 : Math.round(Math.min(1, Math.max(0, u)) * 255);
    };
    const k = options.fit ? Math.max(1, Math.min(Math.floor(cellW / t.width), Math.floor(cellH / t.height))) : scale;
    // A fitted tile sits in the middle of its cell.
    const x0 = pad + (i % cols) * (cellW + pad) + (options.fit ? Math.floor((cellW - t.width * k) / 2) : 0);
    const y0 = pad + Math.floor(i / cols) * (cellH + below + pad) + (options.fit ? Math.floor((cellH - t.height * k) / 2) : 0);
    const plane = t.height * t.width;
    for (let y = 0; y < t.height * k; y++) {
      const sy = Math.floor(y / k);
      for (let x = 0; x < t.width * k; x++) {
        const s = sy * t.width + Math.floor(x / k);
        const o = ((y0 + y) * width + x0 + x) * 3;
        for (let c = 0; c < 3; c++) rgb[o + c] = level(t.data[(t.channels === 3 ? c * plane : 0) + s] as number);
      }
    }
  });
  return { rgb, width, height, cols, rows, pad, below, scale, cell: { width: cellW, height: cellH } };
}

// ---------------------------------------------------------------------------------------------
// Heat maps

/** A jet-like colormap: blue → cyan → yellow → red, t in [0, 1], RGB in 0..255. */
export function jet(t: number): [number, number, number] {
  const x = Number.isFinite(t) ? Math.min(1, Math.max(0, t)) : 0;
  const ch = (centre: number): number => Math.round(Math.min(1, Math.max(0, 1.5 - Math.abs(4 * x - centre))) * 255);
  return [ch(3), ch(2), ch(1)];
}

/**
 * Bilinear resize with pixel centres aligned (as `align_corners=False`): a coarse occlusion or
 * saliency grid lines up with the image it was measured on.
 */
export function upsampleBilinear(src: Float32Array, sw: number, sh: number, dw: number, dh: number): Float32Array {
  const out = new Float32Array(dw * dh);
  for (let y = 0; y < dh; y++) {
    const fy = Math.min(sh - 1, Math.max(0, ((y + 0.5) * sh) / dh - 0.5));
    const y0 = Math.floor(fy);
    const y1 = Math.min(sh - 1, y0 + 1);
    const wy = fy - y0;
    for (let x = 0; x < dw; x++) {
      const fx = Math.min(sw - 1, Math.max(0, ((x + 0.5) * sw) / dw - 0.5));
      const x0 = Math.floor(fx);
      const x1 = Math.min(sw - 1, x0 + 1);
      const wx = fx - x0;
      const a = src[y0 * sw + x0] as number;
      const b = src[y0 * sw + x1] as number;
      const c = src[y1 * sw + x0] as number;
      const d = src[y1 * sw + x1] as number;
      out[y * dw + x] = (a * (1 - wx) + b * wx) * (1 - wy) + (c * (1 - wx) + d * wx) * wy;
    }
  }
  return out;
}

/** Blends the min..max-normalised heat map, in jet colours, over an RGB image. */
export function heatOverlayRaster(
  image: Uint8Array,
  w: number,
  h: number,
  heat: Float32Array,
  hw: number,
  hh: number,
  alpha: number,
): Uint8Array {
  checkInt('w', w, 1);
  checkInt('h', h, 1);
  checkInt('hw', hw, 1);
  checkInt('hh', hh, 1);
  if (image.length !== w * h * 3) throw new RangeError(`Expected ${w * h * 3} bytes (${h}×${w}×3) for image but received ${image.length}`);
  if (heat.length !== hw * hh) throw new RangeError(`Expected ${hw * hh} values (${hh}×${hw}) for heat but received ${heat.length}`);
  if (!(alpha >= 0 && alpha <= 1)) throw new RangeError(`Expected a number in [0, 1] for alpha but received ${alpha}`);
  const { min, max } = finiteRange(heat);
  const span = max - min;
  const up = upsampleBilinear(heat, hw, hh, w, h);
  const out = new Uint8Array(w * h * 3);
  for (let i = 0; i < w * h; i++) {
    const t = span > 0 ? ((up[i] as number) - min) / span : 0;
    const color = jet(t);
    for (let c = 0; c < 3; c++) {
      out[i * 3 + c] = Math.round((1 - alpha) * (image[i * 3 + c] as number) + alpha * color[c as 0 | 1 | 2]);
    }
  }
  return out;
}

/** A colour that stands for a number, as a bar beside a picture: its label and the numbers at both ends. */
export interface ColorBar {
  /** What the colour stands for, e.g. "fall in P(triangle)". */
  label: string;
  /** Values at the bottom and top; words ("tile min") where each tile has its own scale. */
  min: number | string;
  max: number | string;
  colors: 'jet' | 'gray';
}

/** A bar's colours from its bottom to its top. */
export function barColors(bar: ColorBar): (readonly [number, number, number])[] {
  return bar.colors === 'jet' ? Array.from({ length: 9 }, (_, i) => jet(i / 8)) : [[0, 0, 0] as const, [255, 255, 255] as const];
}

/** A bar's end as written beside it: three significant digits, or its words. */
export const barValue = (v: number | string): string => (typeof v === 'string' ? v : String(Number(v.toPrecision(3))));

/** A picture of a network before it is drawn: words, tiles, colour bars (figure.ts renders it as PNG; the page, on a canvas). */
export interface FigureSpec {
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

/** Smallest side of a drawn tile in pixels: a 3×3 or 7×7 kernel must be seen, not guessed. */
export const MIN_TILE = 48;

/** A figure's tiles laid out: enlarged by nearest neighbour to at least its minTile, room for a label under each. */
export function figureGrid(spec: FigureSpec, labelFont: number): { g: Grid; minTile: number; scale: number; labelHeight: number } {
  const minTile = Math.max(MIN_TILE, spec.minTile ?? MIN_TILE);
  const side = Math.min(Math.max(...spec.tiles.map((t) => t.width)), Math.max(...spec.tiles.map((t) => t.height)));
  const scale = Math.max(1, Math.ceil(minTile / side));
  const labelHeight = spec.labels?.length ? labelFont + 5 : 0;
  const g = gridRaster(spec.tiles, {
    normalize: spec.normalize,
    ...(spec.cols !== undefined ? { cols: spec.cols } : {}),
    pad: 2,
    scale,
    below: labelHeight,
    ...(spec.fit ? { fit: true } : {}),
  });
  return { g, minTile, scale, labelHeight };
}
