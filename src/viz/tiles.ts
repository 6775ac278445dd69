/**
 * The network's inputs and projections as pictures, with nothing Node-only: normalised tensors back to
 * RGB bytes, rasters and projections as tiles, a projection's support box and crops of it.
 */
import { defaultMean, defaultStd } from '../data/transforms.js';
import type { Raster, Tile } from '../plot/raster.js';

/** Undoes the normalisation: interleaved RGB bytes (gray repeated) of a C×H×W input. */
export function toRgb(x: Float32Array, channels: number, size: number): Uint8Array {
  const c = channels === 1 ? 1 : 3;
  const mean = defaultMean(c);
  const std = defaultStd(c);
  const plane = size * size;
  const out = new Uint8Array(plane * 3);
  for (let i = 0; i < plane; i++) {
    for (let k = 0; k < 3; k++) {
      const ch = c === 1 ? 0 : k;
      const v = (x[ch * plane + i]! * std[ch]! + mean[ch]!) * 255;
      out[i * 3 + k] = Math.max(0, Math.min(255, Math.round(v)));
    }
  }
  return out;
}

/** An RGB raster as a tile to be drawn with `normalize: 'none'`. */
export function rasterTile(r: Raster): Tile {
  const plane = r.width * r.height;
  const data = new Float32Array(plane * 3);
  for (let i = 0; i < plane; i++) for (let k = 0; k < 3; k++) data[k * plane + i] = r.rgb[i * 3 + k]! / 255;
  return { data, channels: 3, height: r.height, width: r.width };
}

/** A projection as a tile: RGB (or gray) as it is, or, for saliency, max over channels of |g|. */
export function projectionTile(p: Float32Array, channels: number, size: number, magnitude: boolean): Tile {
  const plane = size * size;
  if (!magnitude && (channels === 3 || channels === 1)) return { data: p, channels, height: size, width: size };
  const data = new Float32Array(plane);
  for (let i = 0; i < plane; i++) {
    let m = 0;
    for (let k = 0; k < channels; k++) m = Math.max(m, Math.abs(p[k * plane + i]!));
    data[i] = m;
  }
  return { data, channels: 1, height: size, width: size };
}

export interface Box {
  top: number;
  left: number;
  height: number;
  width: number;
}

/** Bounding box of the non-zero pixels of a C×H×W map (the unit's receptive field, clipped); undefined when all zero. */
export function supportBox(p: Float32Array, channels: number, size: number): Box | undefined {
  const plane = size * size;
  let top = size;
  let left = size;
  let bottom = -1;
  let right = -1;
  for (let i = 0; i < plane; i++) {
    let nz = false;
    for (let k = 0; k < channels && !nz; k++) nz = p[k * plane + i] !== 0;
    if (!nz) continue;
    const y = Math.floor(i / size);
    const x = i % size;
    top = Math.min(top, y);
    bottom = Math.max(bottom, y);
    left = Math.min(left, x);
    right = Math.max(right, x);
  }
  return bottom < 0 ? undefined : { top, left, height: bottom - top + 1, width: right - left + 1 };
}

/** The box's window of a tile. */
export function cropTile(t: Tile, b: Box): Tile {
  const data = new Float32Array(t.channels * b.height * b.width);
  for (let k = 0; k < t.channels; k++) {
    for (let y = 0; y < b.height; y++) {
      const src = k * t.height * t.width + (b.top + y) * t.width + b.left;
      data.set(t.data.subarray(src, src + b.width), k * b.height * b.width + y * b.width);
    }
  }
  return { data, channels: t.channels, height: b.height, width: b.width };
}

/** A tile stretched to [0, 1] by its own min..max (so it can share a grid drawn with `normalize: 'none'`). */
export function stretch(t: Tile): Tile {
  let min = Infinity;
  let max = -Infinity;
  for (const v of t.data) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const span = max - min;
  const data = t.data.map((v) => (span > 0 ? (v - min) / span : 0.5));
  return { ...t, data };
}
