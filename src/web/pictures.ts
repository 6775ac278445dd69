/**
 * The page's three pictures of a trained network, as ZFNet's paper drew them: conv1's filters, a
 * deconvnet projection of the strongest unit of the last conv layer back to pixels (ZF 2014 Fig. 2:
 * the same backward sweep as training, with ReLU's backward rule rectifying the signal), and an
 * occlusion map (Fig. 7: the predicted class's probability with a grey square at each place).
 * Pure numbers out (RGB rasters, HWC uint8); the page draws them.
 */
import { gradients } from '../autodiff/grad.js';
import type { Value } from '../graph/graph.js';
import { toModel } from '../graph/serialize.js';
import { identity, mul, relu } from '../ops/elementwise.js';
import { reduceSum } from '../ops/shape.js';
import { tensor, type OrtSession, type SessionOptions } from '../runtime/ort.js';
import { buildModel } from '../zoo/index.js';
import { argmax, webSession, type WebTrainer } from './trainer.js';

/** An RGB raster, HWC uint8. */
export interface Picture {
  width: number;
  height: number;
  rgb: Uint8Array;
}

/** Values stretched to 0–255 by their own minimum and maximum (a constant map is mid-grey). */
function stretch(v: ArrayLike<number>): Uint8Array {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < v.length; i++) [lo, hi] = [Math.min(lo, v[i]!), Math.max(hi, v[i]!)];
  const out = new Uint8Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = hi > lo ? Math.round((255 * (v[i]! - lo)) / (hi - lo)) : 128;
  return out;
}

/** Planar C×S×S values (C = 3) as an RGB raster, each channel stretched with the others. */
function planarToRgb(x: Float32Array, side: number): Picture {
  const s = stretch(x);
  const plane = side * side;
  const rgb = new Uint8Array(plane * 3);
  for (let p = 0; p < plane; p++) for (let ch = 0; ch < 3; ch++) rgb[p * 3 + ch] = s[ch * plane + p]!;
  return { width: side, height: side, rgb };
}

/** conv1's RGB filters in a grid, each stretched on its own, one pixel of white between. */
export function conv1Filters(t: WebTrainer): Picture {
  const p = t.built.graph.params.find((q) => q.value.shape.length === 4 && q.value.shape[1] === 3);
  if (!p) throw new Error(`${t.built.spec.name} has no RGB conv layer`);
  const [n, , kh, kw] = p.value.shape as [number, number, number, number];
  const w = t.params.get(p.name)!;
  const cols = Math.ceil(Math.sqrt(n));
  const rows = Math.ceil(n / cols);
  const [width, height] = [cols * (kw + 1) + 1, rows * (kh + 1) + 1];
  const rgb = new Uint8Array(width * height * 3).fill(255);
  const size = 3 * kh * kw;
  for (let f = 0; f < n; f++) {
    const tile = planarToRgb(w.subarray(f * size, (f + 1) * size), kh);
    const [x0, y0] = [1 + (f % cols) * (kw + 1), 1 + Math.floor(f / cols) * (kh + 1)];
    for (let y = 0; y < kh; y++) rgb.set(tile.rgb.subarray(y * kw * 3, (y + 1) * kw * 3), ((y0 + y) * width + x0) * 3);
  }
  return { width, height, rgb };
}

/** The output of the last ReLU with a spatial map (the last conv layer's units). */
function lastConvUnits(nodes: readonly { op: string; outputs: readonly Value[] }[]): Value {
  for (let i = nodes.length - 1; i >= 0; i--) {
    const y = nodes[i]!.outputs[0];
    if (nodes[i]!.op === 'Relu' && y && y.shape.length === 4) return y;
  }
  throw new Error('no ReLU with a spatial map');
}

/** Deconvnet session: forward to the last conv units, and their projection to pixels for a seed. */
async function deconvSession(t: WebTrainer, options: SessionOptions): Promise<{ session: OrtSession; shape: readonly number[] }> {
  const b = buildModel(t.config.model, t.built.options, { training: false, batch: 1 });
  const target = lastConvUnits(b.graph.nodes);
  const seed = b.graph.input('seed', target.dtype, target.shape);
  const loss = reduceSum(
    mul(target, seed),
    target.shape.map((_, i) => i),
  );
  // Zeiler and Fergus's deconvnet: the backward signal through a ReLU is rectified, whatever the forward pass did.
  const rules = new Map([['Relu', (_n: unknown, [dy]: readonly (Value | undefined)[]) => [dy ? relu(dy) : undefined]]]);
  const projection = gradients(loss, [b.input], { rules }).get(b.input)!;
  b.graph.output(identity(target), 'units');
  b.graph.output(projection, 'projection');
  return { session: await webSession(toModel(b.graph, { weights: t.params }), options), shape: target.shape };
}

/** The projection of the strongest last-conv unit for image `x` (CHW), and that unit. */
export async function deconvProjection(
  t: WebTrainer,
  x: Float32Array,
  options: SessionOptions,
): Promise<{ picture: Picture; channel: number; value: number }> {
  const side = t.config.inputSize;
  const { session, shape } = await deconvSession(t, options);
  try {
    const input = tensor('float32', x, [1, 3, side, side]);
    const seed = new Float32Array(shape.reduce((a, d) => a * d, 1));
    const units = (await session.run({ input, seed: tensor('float32', seed, shape) }))['units']!.data as Float32Array;
    const unit = argmax(units);
    seed[unit] = 1;
    const p = (await session.run({ input, seed: tensor('float32', seed, shape) }))['projection']!.data as Float32Array;
    const plane = shape.slice(2).reduce((a, d) => a * d, 1);
    return { picture: planarToRgb(p, side), channel: Math.floor(unit / plane), value: units[unit]! };
  } finally {
    await session.release();
  }
}

/** Blue (0) to red (1) through green and yellow. */
function heat(v: number): [number, number, number] {
  const c = (x: number) => Math.round(255 * Math.min(1, Math.max(0, x)));
  return [c(1.5 - Math.abs(4 * v - 3)), c(1.5 - Math.abs(4 * v - 2)), c(1.5 - Math.abs(4 * v - 1))];
}

/**
 * The probability of the predicted class with a grey (mean-colour: zero after normalising) square
 * of a fifth of the side over each place, as a heat map over the image: red where hiding hurts most.
 */
export async function occlusionMap(
  t: WebTrainer,
  x: Float32Array,
  image: Picture,
): Promise<{ picture: Picture; predicted: number; probability: number; lowest: number }> {
  const side = t.config.inputSize;
  const k = t.config.classes;
  const size = Math.max(2, Math.round(side / 5));
  const stride = Math.max(1, Math.round(size / 2));
  const starts: number[] = [];
  for (let s = 0; s + size <= side; s += stride) starts.push(s);
  if (starts.at(-1) !== side - size) starts.push(side - size);
  const probs = (l: Float32Array, i: number): Float32Array => softmaxRow(l.subarray(i * k, (i + 1) * k));
  const clean = probs(await t.logits(x, 1), 0);
  const predicted = argmax(clean);
  const plane = side * side;
  const copies = new Float32Array(starts.length * starts.length * 3 * plane);
  starts.forEach((top, r) =>
    starts.forEach((left, c) => {
      const at = (r * starts.length + c) * 3 * plane;
      copies.set(x, at);
      for (let ch = 0; ch < 3; ch++)
        for (let y = top; y < top + size; y++) copies.fill(0, at + ch * plane + y * side + left, at + ch * plane + y * side + left + size);
    }),
  );
  const logits = await t.logits(copies, starts.length ** 2);
  const p = Array.from({ length: starts.length ** 2 }, (_, i) => probs(logits, i)[predicted]!);
  // Each pixel takes the mean drop of the squares that cover it.
  const drop = new Float32Array(plane);
  const cover = new Float32Array(plane);
  starts.forEach((top, r) =>
    starts.forEach((left, c) => {
      for (let y = top; y < top + size; y++)
        for (let xx = left; xx < left + size; xx++) {
          drop[y * side + xx]! += clean[predicted]! - p[r * starts.length + c]!;
          cover[y * side + xx]! += 1;
        }
    }),
  );
  let [lo, hi] = [Infinity, -Infinity];
  for (let i = 0; i < plane; i++) [lo, hi] = [Math.min(lo, drop[i]! / cover[i]!), Math.max(hi, drop[i]! / cover[i]!)];
  const rgb = new Uint8Array(plane * 3);
  for (let i = 0; i < plane; i++) {
    const h = heat(hi > lo ? (drop[i]! / cover[i]! - lo) / (hi - lo) : 0);
    for (let ch = 0; ch < 3; ch++) rgb[i * 3 + ch] = Math.round(0.45 * image.rgb[i * 3 + ch]! + 0.55 * h[ch]!);
  }
  return { picture: { width: side, height: side, rgb }, predicted, probability: clean[predicted]!, lowest: Math.min(...p) };
}

function softmaxRow(l: ArrayLike<number>): Float32Array {
  let m = -Infinity;
  for (let i = 0; i < l.length; i++) m = Math.max(m, l[i]!);
  const e = Float32Array.from({ length: l.length }, (_, i) => Math.exp(l[i]! - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}
