/**
 * Evaluating a trained model beyond one view per image: VGG's dense evaluation of whole images
 * (`denseModel`, `evaluateDense`), and the per-class table and confusion data `ilsvrc evaluate`
 * writes. The scoring itself is training's (src/train/score.ts), so validation and evaluation
 * count alike.
 */
import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { buildModel, findModel, MODELS, type ModelOptions } from '../zoo/index.js';
import { type Dataset, FileDataset, PixelDataset, probeImage, renderSample, type Skipped, Transforms } from '../data/index.js';
import { type BatchTarget, DEFAULT_DECODE } from '../data/decode.js';
import { decodeModel, encodeModel } from '../onnx/proto.js';
import { exportInferenceModel } from '../zoo/export.js';
import type { CsvValue } from '../util/csv.js';
import { UsageError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import { NEVER, type StopSignal } from '../util/stop.js';
import { type Confusion, type EvalResult, scoreViews, Tally } from '../train/score.js';

/**
 * The inference ONNX of a model's fully convolutional form (ModelSpec.dense) with `weights` (the
 * ordinary model's: same names and sizes), its input height and width left free ("H", "W").
 */
export function denseModel(model: string, options: ModelOptions, weights: ReadonlyMap<string, Float32Array>): Uint8Array {
  const spec = findModel(model);
  if (!spec.dense) {
    throw new UsageError(
      `Expected a model with a fully convolutional form (${MODELS.filter((m) => m.dense)
        .map((m) => m.name)
        .join(', ')}) for --crop dense but received ${spec.name}`,
    );
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
type DenseLogitsFn = (x: Float32Array, rows: number, height: number, width: number) => Promise<Float32Array>;

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
    if (!(Number.isInteger(q) && q >= o.minSide))
      throw new UsageError(`Expected dense scales of at least ${o.minSide} (the model's input size) but received ${q}`);
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
      const target: BatchTarget = {
        layout: 'nchw-f32',
        x: new Float32Array(2 * C * h * w),
        offset: new Float32Array(2 * C),
        channels: C,
        height: h,
        width: w,
        views: 2,
      };
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

/** Columns of per_class.csv: one row per class, in class order. */
export const PER_CLASS_COLUMNS = [
  'index',
  'class',
  'images',
  'top1_correct',
  'top1_accuracy',
  'top5_correct',
  'top5_accuracy',
  'most_mistaken_for',
  'mistaken_count',
] as const;

/** per_class.csv's rows (accuracies as fractions, empty for a class without images). */
export function* perClassRecords(r: EvalResult, names: readonly string[]): Generator<CsvValue[]> {
  const { images, top1, top5 } = r.classCounts;
  const mistake = r.confusion.worstMistakes();
  for (let c = 0; c < names.length; c++) {
    const n = images[c]!;
    const p = mistake.predicted[c]!;
    const accuracy = (hits: number) => (n ? hits / n : null);
    const mistaken = p >= 0 ? [names[p], mistake.count[c]] : [null, null];
    yield [c, names[c], n, top1[c], accuracy(top1[c]!), top5[c], accuracy(top5[c]!), ...mistaken];
  }
}

/** confusion.csv: the whole matrix (a header of predicted classes, a row per true class), or only its nonzero cells. */
export function confusionTable(
  c: Confusion,
  names: readonly string[],
  form: 'full' | 'sparse',
): { header: string[]; records: Iterable<CsvValue[]> } {
  if (form === 'sparse') return { header: ['true', 'predicted', 'count'], records: c.cells().map(([t, p, v]) => [names[t], names[p], v]) };
  return {
    header: ['true\\predicted', ...names],
    records: (function* () {
      let t = 0;
      for (const row of c.rows()) yield [names[t++], ...row];
    })(),
  };
}

/**
 * The k classes of lowest and of highest top-1 accuracy among those with images. Ties: the class
 * with more images first (its accuracy is the surer), then the lower index.
 */
export function rankClasses(r: EvalResult, k: number): { worst: number[]; best: number[] } {
  const { images } = r.classCounts;
  const seen = r.perClass.flatMap((_, c) => (images[c]! > 0 ? [c] : []));
  const by = (sign: number) => (a: number, b: number) => sign * (r.perClass[a]! - r.perClass[b]!) || images[b]! - images[a]! || a - b;
  return { worst: [...seen].sort(by(1)).slice(0, k), best: [...seen].sort(by(-1)).slice(0, k) };
}
