/**
 * Projections of one unit back to pixel space, as a backward sweep over the network's own graph
 * (the same machinery as training): max-unpooling with the forward pass's recorded switches (MaxPool's
 * Indices), transposed filters (Conv's input gradient is a ConvTranspose with the same weights).
 * The three methods differ ONLY in the backward rule of ReLU, chosen from RELU_RULES:
 *   gradient  (saliency, Simonyan et al. 2014): dy · [y > 0]      — the true gradient
 *   deconvnet (Zeiler & Fergus 2014):           max(dy, 0)        — rectify the backward signal
 *   guided    (Springenberg et al. 2015):       max(dy, 0) · [y > 0]
 */
import { gradients, type VjpRule } from '../autodiff/grad.js';
import { sizeOf } from '../graph/dtype.js';
import type { Value } from '../graph/graph.js';
import { mul, relu, reluOpen } from '../ops/elementwise.js';
import { reduceSum } from '../ops/shape.js';
import { tensor, type OrtSession } from '../runtime/ort.js';
import { compile, findLayer, logitsLayer, type Network, type NetworkGraph } from './layers.js';

export const MODES = ['gradient', 'deconvnet', 'guided'] as const;
export type Mode = (typeof MODES)[number];

/** The one switch: Relu's backward rule per mode (every other op keeps its training rule). */
const RELU_RULES: Record<Mode, VjpRule> = {
  gradient: (node, dy, ctx) => node.vjp(dy, ctx), // Relu's own (training) rule
  deconvnet: (_node, [dy]) => [dy ? relu(dy) : undefined],
  guided: (node, [dy]) => {
    const y = node.outputs[0];
    return [dy && y ? mul(relu(dy), reluOpen(y)) : undefined];
  },
};

interface ProjectionGraph {
  ng: NetworkGraph;
  /** The layer's output (N, C, …). */
  target: Value;
  /** Graph input of the target's shape: the backward signal put into the target. */
  seed: Value;
  /** d(Σ target·seed)/d input under the mode's ReLU rule: (N, channels, H, W). */
  projection: Value;
}

/** Builds forward + modified backward for a layer (`'logits'` for the class scores). */
export function projectionGraph(net: Network, layer: string, mode: Mode, batch: number): ProjectionGraph {
  const ng = net.build(batch);
  const target = layer === 'logits' ? logitsLayer(ng).value : findLayer(ng, layer, net.name).value;
  const seed = ng.graph.input('seed', target.dtype, target.shape);
  const loss = reduceSum(
    mul(target, seed),
    target.shape.map((_, i) => i),
  );
  const projection = gradients(loss, [ng.input], { rules: new Map([['Relu', RELU_RULES[mode]]]) }).get(ng.input);
  if (!projection) throw new Error(`${layer} does not depend on the input`);
  return { ng, target, seed, projection };
}

/** One unit of a layer: a channel (or fc unit) at a position of its feature map. */
interface Unit {
  channel: number;
  /** Flat index into the channel's map (0 for fully connected layers). */
  position: number;
}

/**
 * Runs projections for a layer in batches of `batch` units (a large layer streams through a fixed
 * batch: memory does not grow with the number of channels asked for).
 */
export class Projector {
  private constructor(
    private readonly net: Network,
    private readonly session: OrtSession,
    readonly batch: number,
    /** Target shape without the batch dimension. */
    readonly unitShape: readonly number[],
    readonly mode: Mode,
  ) {}

  static async create(net: Network, layer: string, mode: Mode, batch: number): Promise<Projector> {
    const pg = projectionGraph(net, layer, mode, batch);
    const session = await compile(net, pg.ng, { projection: pg.projection });
    return new Projector(net, session, batch, pg.target.shape.slice(1), mode);
  }

  /**
   * Projects `units[i]` of image `images[i]` (each a C×H×W tensor), seeding the unit with 1.
   * Returns one C×H×W projection per unit.
   */
  async project(images: readonly Float32Array[], units: readonly Unit[]): Promise<Float32Array[]> {
    if (images.length !== units.length) throw new Error(`project: ${images.length} images for ${units.length} units`);
    const { channels: c, inputSize: s } = this.net;
    const imgSize = c * s * s;
    const unitSize = sizeOf(this.unitShape);
    const plane = sizeOf(this.unitShape.slice(1));
    const out: Float32Array[] = [];
    for (let start = 0; start < units.length; start += this.batch) {
      const x = new Float32Array(this.batch * imgSize);
      const seed = new Float32Array(this.batch * unitSize);
      const n = Math.min(this.batch, units.length - start);
      for (let i = 0; i < n; i++) {
        const img = images[start + i]!;
        const u = units[start + i]!;
        if (img.length !== imgSize) throw new Error(`project: image ${start + i} has ${img.length} values, expected ${imgSize}`);
        x.set(img, i * imgSize);
        seed[i * unitSize + u.channel * plane + u.position] = 1;
      }
      const r = await this.session.run({
        input: tensor('float32', x, [this.batch, c, s, s]),
        seed: tensor('float32', seed, [this.batch, ...this.unitShape]),
      });
      const data = r['projection']!.data as Float32Array;
      for (let i = 0; i < n; i++) out.push(data.slice(i * imgSize, (i + 1) * imgSize));
    }
    return out;
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

/** The strongest position of each channel in one image's layer output (C, …spatial). */
export function strongest(act: Float32Array, shape: readonly number[]): { channel: number; position: number; value: number }[] {
  const c = shape[0] ?? 1;
  const plane = sizeOf(shape.slice(1));
  const out = [];
  for (let ch = 0; ch < c; ch++) {
    let best = 0;
    let value = -Infinity;
    for (let p = 0; p < plane; p++) {
      const v = act[ch * plane + p]!;
      if (v > value) {
        value = v;
        best = p;
      }
    }
    out.push({ channel: ch, position: best, value });
  }
  return out;
}
