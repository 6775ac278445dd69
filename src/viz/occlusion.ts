/**
 * Occlusion sensitivity (ZF 2014, Fig. 7): a grey square (the mean pixel: 0 after normalisation)
 * slides over the image; for each position the probability of the class and the total activation
 * of the layer's strongest feature map (in the clean image) are recorded. Occluded copies run in
 * batches through one probe whose outputs are only the class probabilities and per-channel sums.
 */
import { softmax } from '../ops/softmax.js';
import { reduceSum } from '../ops/shape.js';
import { figure } from '../plot/figure.js';
import { finiteRange, heatOverlayRaster } from '../plot/image.js';
import { expected } from '../util/errors.js';
import { caption, className, percent } from './caption.js';
import { rasterTile, toRgb } from './images.js';
import { findLayer, lastSpatialLayer, type Network } from './network.js';
import { Probe } from './probe.js';

export interface OcclusionOptions {
  /** Side of the grey square in pixels. */
  size: number;
  stride: number;
  /** The class whose probability is mapped (default: the predicted one). */
  target?: number;
  /** Layer of the feature map (default: the last layer with feature maps). */
  layer?: string;
  batch: number;
}

export interface OcclusionResult {
  class: { index: number; name: string };
  predicted: number;
  /** The class's probability on the clean image. */
  clean: number;
  layer: string;
  /** The strongest feature map of the clean image in that layer, and its total activation. */
  channel: number;
  cleanActivation: number;
  size: number;
  stride: number;
  /** Top-left corners of the square along each axis (the same for x and y). */
  starts: number[];
  /** Row-major maps over the square's positions. */
  probability: number[];
  activation: number[];
  /** Square (top, left) where the class's probability falls most. */
  peak: { top: number; left: number; probability: number };
}

/** Top-left corners: every `stride` pixels, plus the last position flush with the edge. */
export function occluderStarts(side: number, size: number, stride: number): number[] {
  const out: number[] = [];
  for (let s = 0; s + size <= side; s += stride) out.push(s);
  if (out[out.length - 1] !== side - size) out.push(side - size);
  return out;
}

export function defaultOcclusion(inputSize: number): { size: number; stride: number } {
  const size = Math.max(2, Math.round(inputSize / 5));
  return { size, stride: Math.max(1, Math.round(size / 2)) };
}

export async function occlusion(net: Network, x: Float32Array, o: OcclusionOptions): Promise<OcclusionResult> {
  const side = net.inputSize;
  if (!(o.size >= 1 && o.size <= side)) throw expected(`a square side in [1, ${side}]`, '--size', o.size);
  const layerName = o.layer ?? lastSpatialLayer(net.build(1)).name;
  const probe = await Probe.create(net, o.batch, (ng) => {
    const l = findLayer(ng, layerName, net.name, { spatial: true });
    return { probs: softmax(ng.logits), sums: reduceSum(l.value, [2, 3]) };
  });
  try {
    const clean = await probe.run([x]);
    const p0 = clean['probs']!.data;
    const s0 = clean['sums']!.data;
    const k = p0.length;
    let predicted = 0;
    for (let i = 1; i < k; i++) if (p0[i]! > p0[predicted]!) predicted = i;
    const target = o.target ?? predicted;
    if (!(Number.isInteger(target) && target >= 0 && target < k)) throw expected(`a class index in [0, ${k - 1}]`, '--class', target);
    let channel = 0;
    for (let i = 1; i < s0.length; i++) if (s0[i]! > s0[channel]!) channel = i;

    const starts = occluderStarts(side, o.size, o.stride);
    const plane = side * side;
    const copies: Float32Array[] = [];
    for (const top of starts) {
      for (const left of starts) {
        const c = x.slice();
        for (let ch = 0; ch < net.channels; ch++) {
          for (let y = top; y < top + o.size; y++) c.fill(0, ch * plane + y * side + left, ch * plane + y * side + left + o.size);
        }
        copies.push(c);
      }
    }
    const probability: number[] = [];
    const activation: number[] = [];
    const nc = s0.length;
    // Batches of copies, so memory holds one batch of images however fine the grid.
    for (let i = 0; i < copies.length; i += o.batch * 4) {
      const r = await probe.run(copies.slice(i, i + o.batch * 4));
      const p = r['probs']!.data;
      const s = r['sums']!.data;
      for (let j = 0; j < p.length / k; j++) {
        probability.push(p[j * k + target]!);
        activation.push(s[j * nc + channel]!);
      }
    }
    let peak = 0;
    for (let i = 1; i < probability.length; i++) if (probability[i]! < probability[peak]!) peak = i;
    const n = starts.length;
    return {
      class: { index: target, name: className(net, target) },
      predicted,
      clean: p0[target]!,
      layer: layerName,
      channel,
      cleanActivation: s0[channel]!,
      size: o.size,
      stride: o.stride,
      starts,
      probability,
      activation,
      peak: { top: starts[Math.floor(peak / n)]!, left: starts[peak % n]!, probability: probability[peak]! },
    };
  } finally {
    await probe.release();
  }
}

/**
 * The image, then the fall of the class's probability (red: occluding there hurts most), then the
 * strongest feature map's activation (red: high), each over the image as a heat map with its colour
 * bar. Each map value sits at the centre of its square's position.
 */
export async function renderOcclusion(net: Network, x: Float32Array, r: OcclusionResult, image?: string): Promise<Buffer> {
  const s = net.inputSize;
  const rgb = toRgb(x, net.channels, s);
  const n = r.starts.length;
  const drop = Float32Array.from(r.probability, (p) => r.clean - p);
  const act = Float32Array.from(r.activation);
  const tiles = [
    rasterTile({ rgb, width: s, height: s }),
    rasterTile({ rgb: heatOverlayRaster(rgb, s, s, drop, n, n, 0.5), width: s, height: s }),
    rasterTile({ rgb: heatOverlayRaster(rgb, s, s, act, n, n, 0.5), width: s, height: s }),
  ];
  const d = finiteRange(drop);
  const a = finiteRange(act);
  const cls = r.class.name;
  const predicted = r.predicted === r.class.index ? '' : ` (predicted ${className(net, r.predicted)})`;
  const { png } = await figure({
    title:
      caption(net, { layer: r.layer, mode: 'occlusion', image, class: { index: r.class.index, probability: r.clean, what: 'class' } }) +
      predicted,
    subtitle: `a ${r.size} px grey square every ${r.stride} px: the fall of P(${cls}), then ${r.layer} channel ${r.channel}'s total activation`,
    tiles,
    labels: ['input', `fall in P(${cls})`, `${r.layer} ch ${r.channel}`],
    cols: 3,
    normalize: 'none',
    minTile: 128,
    bars: [
      { label: `fall in P(${cls})`, min: percent(d.min), max: percent(d.max), colors: 'jet' },
      { label: `${r.layer} ch ${r.channel} activation`, min: a.min, max: a.max, colors: 'jet' },
    ],
  });
  return png;
}
