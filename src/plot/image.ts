/**
 * Pictures of what a network learned: grids of filters or feature maps (as in ZFNet's figures)
 * and heat maps over an image (occlusion, saliency). Pixel math is pure and returns RGB rasters
 * (HWC, uint8); PNG encoding happens at the end.
 */
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';

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

interface GridOptions {
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

function checkInt(name: string, v: number, min: number): void {
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

export async function imageGrid(tiles: readonly Tile[], options: GridOptions): Promise<{ png: Buffer; width: number; height: number }> {
  const r = gridRaster(tiles, options);
  return { png: await toPng(r.rgb, r.width, r.height), width: r.width, height: r.height };
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

export async function heatOverlay(
  image: Uint8Array,
  w: number,
  h: number,
  heat: Float32Array,
  hw: number,
  hh: number,
  alpha: number,
): Promise<Buffer> {
  return toPng(heatOverlayRaster(image, w, h, heat, hw, hh, alpha), w, h);
}

// ---------------------------------------------------------------------------------------------
// PNG

function checkRaster(rgb: Uint8Array, w: number, h: number): void {
  checkInt('width', w, 1);
  checkInt('height', h, 1);
  if (rgb.length !== w * h * 3) throw new RangeError(`Expected ${w * h * 3} bytes (${h}×${w}×3) for rgb but received ${rgb.length}`);
}

/** PNG via sharp (libspng, off the main thread). */
export async function toPng(rgb: Uint8Array, w: number, h: number): Promise<Buffer> {
  checkRaster(rgb, w, h);
  const input = Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength);
  return sharp(input, { raw: { width: w, height: h, channels: 3 } })
    .png()
    .toBuffer();
}

/**
 * A synchronous PNG encoder (filter 0, zlib), for rasters embedded in SVG while the SVG is built,
 * e.g. the cells of a heat map too large to draw as one rectangle each.
 */
export function encodePngSync(rgb: Uint8Array, w: number, h: number): Buffer {
  checkRaster(rgb, w, h);
  const stride = w * 3;
  const raw = Buffer.alloc((stride + 1) * h);
  for (let y = 0; y < h; y++) raw.set(rgb.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type: RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', deflateSync(raw)),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

function pngChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(data, crc32(head.subarray(4))), 0);
  return Buffer.concat([head, data, crc]);
}

/**
 * The PNG with iTXt chunks (UTF-8 text: a class name or a "×" survives) after its header, so the
 * words drawn in a picture can also be read without looking at it.
 */
export function withText(png: Buffer, text: Readonly<Record<string, string>>): Buffer {
  const end = 8 + 8 + png.readUInt32BE(8) + 4; // signature, then IHDR
  const chunks = Object.entries(text).map(([k, v]) =>
    pngChunk('iTXt', Buffer.concat([Buffer.from(k, 'latin1'), Buffer.from([0, 0, 0, 0, 0]), Buffer.from(v, 'utf8')])),
  );
  return Buffer.concat([png.subarray(0, end), ...chunks, png.subarray(end)]);
}

/** The tEXt and iTXt (uncompressed) entries of a PNG. */
export function pngText(png: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  for (let o = 8; o + 8 <= png.length;) {
    const n = png.readUInt32BE(o);
    const type = png.toString('latin1', o + 4, o + 8);
    const data = png.subarray(o + 8, o + 8 + n);
    const z = data.indexOf(0);
    if (type === 'tEXt' && z > 0) out[data.toString('latin1', 0, z)] = data.toString('latin1', z + 1);
    if (type === 'iTXt' && z > 0 && data[z + 1] === 0) {
      const lang = data.indexOf(0, z + 3);
      const translated = data.indexOf(0, lang + 1);
      out[data.toString('latin1', 0, z)] = data.toString('utf8', translated + 1);
    }
    o += 12 + n;
  }
  return out;
}
