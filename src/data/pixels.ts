/**
 * The per-pixel work that sharp does not do: resampling a window out of an in-memory uint8 image
 * (IDX/CIFAR rows, or what sharp decoded), mirroring, padding, colour jitter, and the one pass to
 * the batch layout (planar float with normalisation and lighting folded into a per-channel
 * scale and bias, or HWC uint8). Pure functions over typed arrays; no allocation per pixel.
 */

/**
 * One view of an image, in the coordinates of the image resized to `sw`×`sh`: the `w`×`h` window
 * whose top-left corner is (`left`, `top`), mirrored when `flip`. Parts of the window outside the
 * resized image are padding (zeros).
 */
export interface View {
  sw: number;
  sh: number;
  left: number;
  top: number;
  w: number;
  h: number;
  flip: boolean;
}

/** An interleaved (HWC) uint8 image with 1–4 channels (2 and 4 carry alpha, which is ignored). */
export interface Image8 {
  data: Uint8Array;
  width: number;
  height: number;
  channels: number;
}

/**
 * Where `src` sits relative to the view's resized image: a scaled-image pixel u maps to source
 * coordinate (u + 0.5) * kx - 0.5 - offX. kx = W / sw for a full-resolution source; kx = 1 and
 * offX = the window's clipped left edge when sharp already resized and extracted.
 */
export interface SourceFrame {
  kx: number;
  ky: number;
  offX: number;
  offY: number;
}

interface Taps {
  start: Int32Array;
  count: Int32Array;
  weights: Float32Array;
  maxTaps: number;
}

/**
 * Triangle-filter taps for one axis (PIL's BILINEAR: the support widens when downscaling, so
 * shrinking averages instead of aliasing). Output positions outside [0, scaledLen) get no taps.
 */
function axisTaps(n: number, first: number, flip: boolean, scaledLen: number, k: number, off: number, srcLen: number): Taps {
  const support = Math.max(1, k);
  const maxTaps = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(n);
  const count = new Int32Array(n);
  const weights = new Float32Array(n * maxTaps);
  for (let o = 0; o < n; o++) {
    const u = first + (flip ? n - 1 - o : o);
    if (u < 0 || u >= scaledLen) continue;
    const center = (u + 0.5) * k - off;
    let lo = Math.max(0, Math.floor(center - support));
    const hi = Math.min(srcLen, Math.ceil(center + support));
    let total = 0;
    let m = 0;
    let firstTap = -1;
    for (let i = lo; i < hi; i++) {
      const wgt = 1 - Math.abs(i + 0.5 - center) / support;
      if (wgt <= 1e-6) continue;
      if (firstTap < 0) firstTap = i;
      weights[o * maxTaps + (i - firstTap)] = wgt;
      m = i - firstTap + 1;
      total += wgt;
    }
    if (firstTap < 0) {
      // A sliver outside the source (rounding at the edge): nearest pixel.
      lo = Math.min(srcLen - 1, Math.max(0, Math.round(center - 0.5)));
      start[o] = lo;
      count[o] = 1;
      weights[o * maxTaps] = 1;
      continue;
    }
    start[o] = firstTap;
    count[o] = m;
    for (let j = 0; j < m; j++) weights[o * maxTaps + j] = (weights[o * maxTaps + j] ?? 0) / total;
  }
  return { start, count, weights, maxTaps };
}

/** ITU-R 601 luma, as PIL's convert('L'). */
export function toGray(src: Image8): Image8 {
  const n = src.width * src.height;
  const out = new Uint8Array(n);
  const c = src.channels;
  const d = src.data;
  for (let i = 0, p = 0; i < n; i++, p += c) {
    out[i] = Math.round(0.299 * (d[p] ?? 0) + 0.587 * (d[p + 1] ?? 0) + 0.114 * (d[p + 2] ?? 0));
  }
  return { data: out, width: src.width, height: src.height, channels: 1 };
}

/**
 * Resamples the view out of `src` into `planar` (C×h×w floats on the 0–255 scale), where C is
 * `outChannels`. A gray source feeding 3 channels is replicated; an RGB source feeding 1 channel
 * must be converted with toGray first.
 */
export function renderView(src: Image8, frame: SourceFrame, view: View, outChannels: 1 | 3, planar: Float32Array): void {
  const { w, h } = view;
  const colour = src.channels >= 3 ? 3 : 1;
  if (colour === 3 && outChannels === 1) throw new Error('renderView: convert RGB to gray with toGray first');
  const stride = src.channels;
  const xt = axisTaps(w, view.left, view.flip, view.sw, frame.kx, frame.offX, src.width);
  const yt = axisTaps(h, view.top, false, view.sh, frame.ky, frame.offY, src.height);
  let y0 = src.height;
  let y1 = 0;
  for (let o = 0; o < h; o++) {
    const c = yt.count[o] ?? 0;
    if (c === 0) continue;
    const s = yt.start[o] ?? 0;
    if (s < y0) y0 = s;
    if (s + c > y1) y1 = s + c;
  }
  planar.fill(0, 0, outChannels * w * h);
  if (y1 <= y0) return;
  // Horizontal pass over the rows the vertical taps touch: tmp is rows × w × colour.
  const rows = y1 - y0;
  const tmp = new Float32Array(rows * w * colour);
  const d = src.data;
  const rowLen = src.width * stride;
  for (let r = 0; r < rows; r++) {
    const rowBase = (y0 + r) * rowLen;
    const tBase = r * w * colour;
    for (let o = 0; o < w; o++) {
      const cnt = xt.count[o] ?? 0;
      if (cnt === 0) continue;
      let p = rowBase + (xt.start[o] ?? 0) * stride;
      const wb = o * xt.maxTaps;
      if (colour === 3) {
        let a = 0;
        let b = 0;
        let g = 0;
        for (let j = 0; j < cnt; j++, p += stride) {
          const wt = xt.weights[wb + j] ?? 0;
          a += (d[p] ?? 0) * wt;
          b += (d[p + 1] ?? 0) * wt;
          g += (d[p + 2] ?? 0) * wt;
        }
        const t = tBase + o * 3;
        tmp[t] = a;
        tmp[t + 1] = b;
        tmp[t + 2] = g;
      } else {
        let a = 0;
        for (let j = 0; j < cnt; j++, p += stride) a += (d[p] ?? 0) * (xt.weights[wb + j] ?? 0);
        tmp[tBase + o] = a;
      }
    }
  }
  // Vertical pass into planar output.
  const plane = w * h;
  for (let oy = 0; oy < h; oy++) {
    const cnt = yt.count[oy] ?? 0;
    if (cnt === 0) continue;
    const r0 = (yt.start[oy] ?? 0) - y0;
    const wb = oy * yt.maxTaps;
    for (let c = 0; c < colour; c++) {
      const outBase = c * plane + oy * w;
      for (let ox = 0; ox < w; ox++) {
        let a = 0;
        let t = (r0 * w + ox) * colour + c;
        for (let j = 0; j < cnt; j++, t += w * colour) a += (tmp[t] ?? 0) * (yt.weights[wb + j] ?? 0);
        planar[outBase + ox] = a;
      }
    }
  }
  if (colour === 1 && outChannels === 3) {
    planar.copyWithin(plane, 0, plane);
    planar.copyWithin(2 * plane, 0, plane);
  }
}

export interface ColourJitter {
  brightness: number;
  contrast: number;
  saturation: number;
}

/** torchvision's ColorJitter factors applied in the order brightness, contrast, saturation, clamped to 0–255 after each. */
export function applyColourJitter(planar: Float32Array, channels: 1 | 3, plane: number, f: ColourJitter): void {
  const n = channels * plane;
  const clamp = (v: number): number => (v < 0 ? 0 : v > 255 ? 255 : v);
  if (f.brightness !== 1) for (let i = 0; i < n; i++) planar[i] = clamp((planar[i] ?? 0) * f.brightness);
  if (f.contrast !== 1) {
    let mean = 0;
    if (channels === 3) {
      for (let i = 0; i < plane; i++)
        mean += 0.299 * (planar[i] ?? 0) + 0.587 * (planar[plane + i] ?? 0) + 0.114 * (planar[2 * plane + i] ?? 0);
    } else {
      for (let i = 0; i < plane; i++) mean += planar[i] ?? 0;
    }
    mean /= plane;
    for (let i = 0; i < n; i++) planar[i] = clamp(((planar[i] ?? 0) - mean) * f.contrast + mean);
  }
  if (f.saturation !== 1 && channels === 3) {
    for (let i = 0; i < plane; i++) {
      const r = planar[i] ?? 0;
      const g = planar[plane + i] ?? 0;
      const b = planar[2 * plane + i] ?? 0;
      const y = 0.299 * r + 0.587 * g + 0.114 * b;
      planar[i] = clamp((r - y) * f.saturation + y);
      planar[plane + i] = clamp((g - y) * f.saturation + y);
      planar[2 * plane + i] = clamp((b - y) * f.saturation + y);
    }
  }
}

/** out[c][i] = planar[c][i] * scale[c] + bias[c]: normalisation with lighting folded into the bias. */
export function writePlanarF32(
  planar: Float32Array,
  channels: number,
  plane: number,
  scale: ArrayLike<number>,
  bias: ArrayLike<number>,
  out: Float32Array,
  offset: number,
): void {
  for (let c = 0; c < channels; c++) {
    const s = scale[c] ?? 1;
    const b = bias[c] ?? 0;
    const base = c * plane;
    const o = offset + base;
    for (let i = 0; i < plane; i++) out[o + i] = (planar[base + i] ?? 0) * s + b;
  }
}

/** HWC uint8 for models that normalise in their first ONNX nodes. */
export function writeInterleavedU8(planar: Float32Array, channels: number, plane: number, out: Uint8Array, offset: number): void {
  // A clamped view rounds and saturates on store; a plain Uint8Array would wrap modulo 256.
  const dst = new Uint8ClampedArray(out.buffer, out.byteOffset, out.length);
  for (let c = 0; c < channels; c++) {
    const base = c * plane;
    for (let i = 0, o = offset + c; i < plane; i++, o += channels) dst[o] = planar[base + i] ?? 0;
  }
}

/**
 * The common case after sharp did the geometry: the view is a 1:1 window of `src` (which starts at
 * (offX, offY) of the resized image). One pass straight into the batch, mirroring, padding with
 * zero pixels, replicating gray, and applying out = v * scale + bias (f32) or storing v (u8 HWC).
 */
export function copyWindow(
  src: Image8,
  offX: number,
  offY: number,
  v: View,
  outChannels: 1 | 3,
  scale: ArrayLike<number>,
  bias: ArrayLike<number>,
  out: Float32Array | Uint8Array,
  offset: number,
): void {
  const { w, h } = v;
  const plane = w * h;
  const stride = src.channels;
  const gray = src.channels < 3;
  const d = src.data;
  const f32 = out instanceof Float32Array ? out : null;
  const u8 = out instanceof Uint8Array ? out : null;
  const inside =
    v.top - offY >= 0 &&
    v.top + h - offY <= src.height &&
    v.left - offX >= 0 &&
    v.left + w - offX <= src.width &&
    v.top + h <= v.sh &&
    v.left + w <= v.sw;
  if (f32 && inside) {
    // The usual case (the window lies inside the image): no bounds checks per pixel, which made
    // this loop the loader's hottest spot.
    for (let c = 0; c < outChannels; c++) {
      const s = scale[c] ?? 1;
      const b = bias[c] ?? 0;
      const sc = gray ? 0 : c;
      for (let oy = 0; oy < h; oy++) {
        const row = ((v.top + oy - offY) * src.width + (v.left - offX)) * stride + sc;
        const o = offset + c * plane + oy * w;
        if (v.flip) for (let ox = 0; ox < w; ox++) f32[o + ox] = d[row + (w - 1 - ox) * stride]! * s + b;
        else for (let ox = 0; ox < w; ox++) f32[o + ox] = d[row + ox * stride]! * s + b;
      }
    }
    return;
  }
  for (let c = 0; c < outChannels; c++) {
    const s = scale[c] ?? 1;
    const b = bias[c] ?? 0;
    const sc = gray ? 0 : c;
    for (let oy = 0; oy < h; oy++) {
      const sy = v.top + oy - offY;
      const inRow = sy >= 0 && sy < src.height && v.top + oy < v.sh;
      const rowBase = sy * src.width;
      const o = c * plane + oy * w;
      for (let ox = 0; ox < w; ox++) {
        const u = v.left + (v.flip ? w - 1 - ox : ox);
        const sx = u - offX;
        const val = inRow && u >= 0 && u < v.sw && sx >= 0 && sx < src.width ? (d[(rowBase + sx) * stride + sc] ?? 0) : 0;
        if (f32) f32[offset + o + ox] = val * s + b;
        else if (u8) u8[offset + (oy * w + ox) * outChannels + c] = val;
      }
    }
  }
}
