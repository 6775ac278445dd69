/**
 * Scoring a model on a dataset: softmax averaged over each sample's views (one center crop, ten
 * crops, several scales, or VGG's dense evaluation of whole images), then top-1/top-5 hits,
 * per-class accuracy and the confusion matrix. The math is pure (`scoreViews`, `Tally`);
 * `evaluateLoader` and `evaluateDense` only feed pixels to something that returns logits. Images
 * that cannot be read are not scored (their rows carry label -1): `n` counts the images actually
 * scored, and `skipped` names the others.
 */
import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { buildModel, findModel, MODELS, type ModelOptions } from '../zoo/index.js';
import { type Dataset, FileDataset, type Loader, PixelDataset, probeImage, renderSample, type Skipped, Transforms } from '../data/index.js';
import { type BatchTarget, DEFAULT_DECODE } from '../data/decode.js';
import { decodeModel, encodeModel } from '../onnx/proto.js';
import { exportInferenceModel } from '../zoo/export.js';
import { UsageError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import { NEVER, type StopSignal } from '../util/stop.js';

/** Softmax of each row of `logits` ([rows, classes]), averaged over groups of `views` rows. */
export function scoreViews(logits: Float32Array, rows: number, classes: number, views: number): Float32Array {
  const n = Math.floor(rows / views);
  const out = new Float32Array(n * classes);
  for (let r = 0; r < n * views; r++) {
    const row = logits.subarray(r * classes, (r + 1) * classes);
    let max = -Infinity;
    for (const v of row) if (v > max) max = v;
    let sum = 0;
    for (const v of row) sum += Math.exp(v - max);
    const dst = Math.floor(r / views) * classes;
    for (let c = 0; c < classes; c++) out[dst + c]! += Math.exp(row[c]! - max) / sum / views;
  }
  return out;
}

/** Class indices by decreasing probability (ties: lower index first), the first k. */
export function topK(probs: ArrayLike<number>, k: number): number[] {
  const idx = Array.from({ length: probs.length }, (_, i) => i);
  idx.sort((a, b) => probs[b]! - probs[a]! || a - b);
  return idx.slice(0, k);
}

export interface EvalResult {
  /** Images scored (unreadable ones are not). */
  n: number;
  /** Mean cross-entropy of the averaged probabilities. */
  loss: number;
  top1: number;
  top5: number;
  /** confusion[true][predicted] counts. */
  confusion: number[][];
  perClass: number[];
  /** Images that could not be read, so were not scored (empty from a bare Tally). */
  skipped: Skipped[];
}

export class Tally {
  private n = 0;
  private lossSum = 0;
  private hits1 = 0;
  private hits5 = 0;
  readonly confusion: number[][];

  constructor(readonly classes: number) {
    this.confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  }

  /** Adds samples: `probs` [n, classes] (each row sums to 1), `labels` [n]; rows labelled < 0 are not scored. */
  add(probs: Float32Array, labels: ArrayLike<number>, n: number): void {
    const C = this.classes;
    for (let i = 0; i < n; i++) {
      const row = probs.subarray(i * C, (i + 1) * C);
      const y = labels[i]!;
      if (y < 0) continue;
      const top = topK(row, Math.min(5, C));
      this.n++;
      this.lossSum += -Math.log(Math.max(row[y] ?? 0, 1e-12));
      if (top[0] === y) this.hits1++;
      if (top.includes(y)) this.hits5++;
      this.confusion[y]![top[0]!]!++;
    }
  }

  result(): EvalResult {
    const perClass = this.confusion.map((row, c) => {
      const total = row.reduce((a, b) => a + b, 0);
      return total ? row[c]! / total : NaN;
    });
    const n = Math.max(1, this.n);
    return { n: this.n, loss: this.lossSum / n, top1: this.hits1 / n, top5: this.hits5 / n, confusion: this.confusion, perClass, skipped: [] };
  }
}

/** Anything that maps a batch of views to logits (a training session, an ORT inference session). */
export type LogitsFn = (x: Float32Array, rows: number, labels: Int32Array) => Promise<Float32Array>;

/** Evaluates every batch of `loader`'s epoch 0 (a deterministic, unshuffled eval loader); `stop` throws Stopped between batches. */
export async function evaluateLoader(
  loader: Loader,
  classes: number,
  logitsOf: LogitsFn,
  onBatch?: (done: number, total: number, t: Tally) => void,
  stop: StopSignal = NEVER,
): Promise<EvalResult> {
  const t = new Tally(classes);
  let done = 0;
  for await (const b of stop.each(loader.epoch(0), 'evaluation')) {
    const rows = b.labels.length * b.views;
    // Labels per view row: the session's graph has one label per input row.
    const rowLabels = new Int32Array(rows);
    for (let r = 0; r < rows; r++) rowLabels[r] = b.labels[Math.floor(r / b.views)]!;
    const labels = b.labels.slice(0, b.n);
    // Batches from loader workers live in shared memory, which onnxruntime rejects as a tensor.
    const x = b.x.buffer instanceof SharedArrayBuffer ? b.x.slice() : b.x;
    const logits = await logitsOf(x, rows, rowLabels);
    loader.recycle(b);
    t.add(scoreViews(logits, rows, classes, b.views), labels, b.n);
    done += b.n;
    onBatch?.(done, loader.dataset.length, t);
  }
  return { ...t.result(), skipped: loader.skipped(0) };
}

/**
 * The inference ONNX of a model's fully convolutional form (ModelSpec.dense) with `weights` (the
 * ordinary model's: same names and sizes), its input height and width left free ("H", "W").
 */
export function denseModel(model: string, options: ModelOptions, weights: ReadonlyMap<string, Float32Array>): Uint8Array {
  const spec = findModel(model);
  if (!spec.dense) {
    throw new UsageError(`Expected a model with a fully convolutional form (${MODELS.filter((m) => m.dense).map((m) => m.name).join(', ')}) for --crop dense but received ${spec.name}`);
  }
  const proto = decodeModel(exportInferenceModel(buildModel({ ...spec, build: spec.dense }, { ...options, aux: false }), weights));
  const dims = proto.graph.input?.[0]?.type?.tensorType?.shape?.dim;
  if (!dims || dims.length !== 4) throw new Error(`${spec.name}: the dense graph's input is not NCHW`);
  // Nothing after the convolutions depends on the size: the score map is averaged to one vector.
  dims[2] = { dimParam: 'H' };
  dims[3] = { dimParam: 'W' };
  return encodeModel(proto);
}

export interface DenseOptions {
  /** Shorter sides of the whole image (VGG's Q); the posteriors are averaged over scales and flips. */
  scales: readonly number[];
  channels: 1 | 3;
  mean?: readonly number[];
  std?: readonly number[];
  /** The smallest side the model takes (its inputSize): a smaller image has no score map. */
  minSide: number;
}

/** Logits [rows, classes] of x [rows, C, height, width]. */
export type DenseLogitsFn = (x: Float32Array, rows: number, height: number, width: number) => Promise<Float32Array>;

/**
 * VGG's dense evaluation, one image at a time (each has its own size): at every scale Q the whole
 * image, shorter side Q, and its mirror image go through the fully convolutional model; the
 * softmax of each (the score map already averaged in the graph) is averaged over all of them.
 * Unreadable images are left out and listed.
 */
export async function evaluateDense(
  ds: Dataset,
  classes: number,
  logitsOf: DenseLogitsFn,
  o: DenseOptions,
  onImage?: (done: number, total: number, t: Tally) => void,
  stop: StopSignal = NEVER,
): Promise<EvalResult & { skipped: Skipped[] }> {
  if (o.scales.length === 0) throw new UsageError('Expected at least one scale for dense evaluation but received none');
  const tfs = o.scales.map((q) => {
    if (!(Number.isInteger(q) && q >= o.minSide)) throw new UsageError(`Expected dense scales of at least ${o.minSide} (the model's input size) but received ${q}`);
    return Transforms.dense(q, { channels: o.channels, ...(o.mean ? { mean: o.mean } : {}), ...(o.std ? { std: o.std } : {}) });
  });
  const t = new Tally(classes);
  const skipped: Skipped[] = [];
  const views = 2 * tfs.length;
  for (let i = 0; i < ds.length; i++) {
    stop.throwIfRequested('evaluation');
    const size = await sourceSize(ds, i);
    let reason = typeof size === 'string' ? size : null;
    const logits = new Float32Array(views * classes);
    for (const [k, tf] of tfs.entries()) {
      if (reason !== null || typeof size === 'string') break;
      const [h, w] = tf.outputSize(size.width, size.height);
      const C = o.channels;
      const target: BatchTarget = { layout: 'nchw-f32', x: new Float32Array(2 * C * h * w), offset: new Float32Array(2 * C), channels: C, height: h, width: w, views: 2 };
      reason = await renderSample(ds, i, tf, new Rng(0), target, 0, DEFAULT_DECODE);
      if (reason === null) logits.set(await logitsOf(target.x as Float32Array, 2, h, w), 2 * k * classes);
    }
    if (reason !== null) skipped.push({ path: ds.name(i), reason });
    else t.add(scoreViews(logits, views, classes, views), [ds.label(i)], 1);
    onImage?.(i + 1, ds.length, t);
  }
  return { ...t.result(), skipped };
}

/** Width and height as the user sees the image (after EXIF orientation), or why it cannot be read. */
async function sourceSize(ds: Dataset, i: number): Promise<{ width: number; height: number } | string> {
  if (ds instanceof PixelDataset) return { width: ds.descriptor.width, height: ds.descriptor.height };
  let buf: Buffer;
  try {
    buf = ds instanceof FileDataset ? ds.read(i) : readFileSync(ds.name(i));
  } catch (e) {
    return `cannot read file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
  }
  const head = probeImage(buf);
  if (head) return head;
  try {
    const m = await sharp(buf).metadata();
    return { width: m.autoOrient.width, height: m.autoOrient.height };
  } catch (e) {
    return `not a readable image: ${String(e instanceof Error ? e.message : e).split('\n')[0] ?? ''}`;
  }
}
