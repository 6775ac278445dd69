/**
 * Forward probes: an inference session whose outputs are chosen layer values or reductions of them,
 * run over any number of images in fixed-size batches (the last one padded), so a probe over a
 * dataset holds one batch at a time.
 */
import { sizeOf } from '../graph/dtype.js';
import type { Value } from '../graph/graph.js';
import { tensor, type OrtSession } from '../runtime/ort.js';
import { compile, type Network, type NetworkGraph } from './layers.js';

interface Rows {
  /** n rows, each of `shape`. */
  data: Float32Array;
  shape: number[];
}

export class Probe {
  private constructor(
    private readonly net: Network,
    private readonly session: OrtSession,
    readonly batch: number,
    private readonly shapes: Record<string, number[]>,
  ) {}

  /** `pick` chooses the outputs on a fresh build of the network at this batch size. */
  static async create(net: Network, batch: number, pick: (ng: NetworkGraph) => Record<string, Value>): Promise<Probe> {
    const ng = net.build(batch);
    const outputs = pick(ng);
    const shapes = Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, v.shape.slice(1)]));
    return new Probe(net, await compile(net, ng, outputs), batch, shapes);
  }

  /** Runs `images` (each C×H×W), returning every output as n rows. */
  async run(images: readonly Float32Array[]): Promise<Record<string, Rows>> {
    const { channels: c, inputSize: s } = this.net;
    const imgSize = c * s * s;
    const out: Record<string, Rows> = {};
    for (const [k, shape] of Object.entries(this.shapes)) out[k] = { data: new Float32Array(images.length * sizeOf(shape)), shape };
    for (let start = 0; start < images.length; start += this.batch) {
      const n = Math.min(this.batch, images.length - start);
      const x = new Float32Array(this.batch * imgSize);
      for (let i = 0; i < n; i++) {
        const img = images[start + i]!;
        if (img.length !== imgSize) throw new Error(`probe: image ${start + i} has ${img.length} values, expected ${imgSize}`);
        x.set(img, i * imgSize);
      }
      const r = await this.session.run({ input: tensor('float32', x, [this.batch, c, s, s]) });
      for (const [k, rows] of Object.entries(out)) {
        const row = sizeOf(rows.shape);
        rows.data.set((r[k]!.data as Float32Array).subarray(0, n * row), start * row);
      }
    }
    return out;
  }

  release(): Promise<void> {
    return this.session.release();
  }
}
