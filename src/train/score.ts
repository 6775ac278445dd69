/**
 * Scoring logits: softmax averaged over each sample's views, then top-1/top-5 hits, per-class
 * counts and the confusion matrix, linear in the classes. The math is pure (`scoreViews`, `Tally`);
 * `evaluateLoader` only feeds a loader's batches to something that returns logits — training's
 * validation and `ilsvrc evaluate` both score through it. Images that cannot be read are not
 * scored (their rows carry label -1): `n` counts the images actually scored.
 */
import { type Loader, type Skipped } from '../data/index.js';
import { NEVER, type StopSignal } from '../util/stop.js';

/** Softmax of each row of `logits` ([rows, classes]), averaged over groups of `views` rows. */
export function scoreViews(logits: Float32Array, rows: number, classes: number, views: number): Float32Array {
  const n = Math.floor(rows / views);
  const out = new Float32Array(n * classes);
  // Indexed loops and one exp per logit: at 10 000 classes this runs for every image.
  const e = new Float64Array(classes);
  for (let r = 0; r < n * views; r++) {
    const base = r * classes;
    let max = -Infinity;
    for (let c = 0; c < classes; c++) if (logits[base + c]! > max) max = logits[base + c]!;
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += e[c] = Math.exp(logits[base + c]! - max);
    const dst = Math.floor(r / views) * classes;
    const scale = 1 / (sum * views);
    for (let c = 0; c < classes; c++) out[dst + c]! += e[c]! * scale;
  }
  return out;
}

/** Class indices by decreasing probability (ties: lower index first), the first k. */
export function topK(probs: ArrayLike<number>, k: number): number[] {
  const n = probs.length;
  const m = Math.min(k, n);
  if (m > 64) {
    const idx = Array.from({ length: n }, (_, i) => i);
    idx.sort((a, b) => probs[b]! - probs[a]! || a - b);
    return idx.slice(0, m);
  }
  // A selection in one pass, O(n·k): a sort of every class per image costs O(n log n) each.
  const top: number[] = [];
  for (let i = 0; i < n && m > 0; i++) {
    const v = probs[i]!;
    if (top.length === m) {
      if (!(v > probs[top[m - 1]!]!)) continue;
      top.pop();
    }
    let j = top.length;
    while (j > 0 && v > probs[top[j - 1]!]!) j--;
    top.splice(j, 0, i);
  }
  return top;
}

/**
 * The prediction (the first maximum) of the row at `base`, and how many classes rank above class y
 * (ties rank the lower index first, as topK orders them): y is in the top 5 when fewer than 5 do.
 */
function rank(row: Float32Array, base: number, classes: number, y: number): { best: number; above: number } {
  const vy = row[base + y] ?? 0;
  let best = 0;
  let bv = row[base]!;
  let above = 0;
  for (let c = 0; c < classes; c++) {
    const v = row[base + c]!;
    if (v > bv) {
      bv = v;
      best = c;
    }
    if (v > vy || (v === vy && c < y)) above++;
  }
  return { best, above };
}

/**
 * Counts of (true, predicted) pairs. Up to DENSE_MAX classes a dense matrix; beyond, only the
 * pairs that occur (at most one per image), so 10 000 classes cost what their images cost, not
 * 10⁸ cells.
 */
export class Confusion {
  static readonly DENSE_MAX = 256;
  private readonly dense: Uint32Array | undefined;
  private readonly sparse = new Map<number, number>();

  constructor(readonly classes: number) {
    this.dense = classes <= Confusion.DENSE_MAX ? new Uint32Array(classes * classes) : undefined;
  }

  add(truth: number, predicted: number, count = 1): void {
    const key = truth * this.classes + predicted;
    if (this.dense) this.dense[key]! += count;
    else this.sparse.set(key, (this.sparse.get(key) ?? 0) + count);
  }

  get(truth: number, predicted: number): number {
    const key = truth * this.classes + predicted;
    return this.dense ? this.dense[key]! : (this.sparse.get(key) ?? 0);
  }

  /** The nonzero cells [true, predicted, count], by true class, then predicted. */
  cells(): [number, number, number][] {
    const C = this.classes;
    const out: [number, number, number][] = [];
    if (this.dense) {
      this.dense.forEach((v, key) => v && out.push([Math.floor(key / C), key % C, v]));
      return out;
    }
    for (const key of [...this.sparse.keys()].sort((a, b) => a - b)) out.push([Math.floor(key / C), key % C, this.sparse.get(key)!]);
    return out;
  }

  /** The matrix a row at a time, made from the nonzero cells (the same array each time: read it before the next). */
  *rows(): Generator<Uint32Array> {
    const C = this.classes;
    if (this.dense) {
      for (let t = 0; t < C; t++) yield this.dense.subarray(t * C, (t + 1) * C);
      return;
    }
    const row = new Uint32Array(C);
    const cells = this.cells();
    let k = 0;
    for (let t = 0; t < C; t++) {
      row.fill(0);
      for (; k < cells.length && cells[k]![0] === t; k++) row[cells[k]![1]] = cells[k]![2];
      yield row;
    }
  }

  /** The k most frequent mistakes [true, predicted, count] (most images first; ties: lower true, then predicted class). */
  mostConfused(k: number): [number, number, number][] {
    const off = this.cells().filter(([t, p]) => t !== p);
    // A stable sort keeps the cells' order among equal counts.
    return off.sort((a, b) => b[2] - a[2]).slice(0, k);
  }

  /** For each true class, the class it is most often mistaken for (-1: never) and how often (ties: the lower class). */
  worstMistakes(): { predicted: Int32Array; count: Uint32Array } {
    const predicted = new Int32Array(this.classes).fill(-1);
    const count = new Uint32Array(this.classes);
    for (const [t, p, v] of this.cells()) {
      if (t !== p && v > count[t]!) {
        predicted[t] = p;
        count[t] = v;
      }
    }
    return { predicted, count };
  }
}

/** Per class: images scored, and how many of them were right at top-1 and within the top 5. */
interface ClassCounts {
  images: Uint32Array;
  top1: Uint32Array;
  top5: Uint32Array;
}

export interface EvalResult {
  /** Images scored (unreadable ones are not). */
  n: number;
  /** Mean cross-entropy of the averaged probabilities. */
  loss: number;
  top1: number;
  top5: number;
  /** (true, predicted) counts. */
  confusion: Confusion;
  /** Top-1 accuracy of each class (NaN when it had no images). */
  perClass: number[];
  classCounts: ClassCounts;
  /** Images that could not be read, so were not scored (empty from a bare Tally). */
  skipped: Skipped[];
}

/** Running totals of an evaluation; each image costs O(classes), whatever the number of classes. */
export class Tally {
  private n = 0;
  private lossSum = 0;
  private hits1 = 0;
  private hits5 = 0;
  readonly confusion: Confusion;
  readonly counts: ClassCounts;

  constructor(readonly classes: number) {
    this.confusion = new Confusion(classes);
    this.counts = { images: new Uint32Array(classes), top1: new Uint32Array(classes), top5: new Uint32Array(classes) };
  }

  /** Adds samples: `probs` [n, classes] (each row sums to 1), `labels` [n]; rows labelled < 0 are not scored. */
  add(probs: Float32Array, labels: ArrayLike<number>, n: number): void {
    const C = this.classes;
    for (let i = 0; i < n; i++) {
      const y = labels[i]!;
      if (y < 0) continue;
      const { best, above } = rank(probs, i * C, C, y);
      this.record(y, best, above, probs[i * C + y] ?? 0);
    }
  }

  /**
   * Adds samples from one view's logits [n, classes]: the same counts as `add` of their softmax, ranked
   * by the logits themselves (which the softmax keeps in order), with one exp per logit and no
   * probability row written — at 10 000 classes this is most of an evaluation's own work.
   */
  addLogits(logits: Float32Array, labels: ArrayLike<number>, n: number): void {
    const C = this.classes;
    for (let i = 0; i < n; i++) {
      const y = labels[i]!;
      if (y < 0) continue;
      const base = i * C;
      const { best, above } = rank(logits, base, C, y);
      const max = logits[base + best]!;
      let sum = 0;
      for (let c = 0; c < C; c++) sum += Math.exp(logits[base + c]! - max);
      this.record(y, best, above, Math.exp(logits[base + y]! - max) / sum);
    }
  }

  private record(y: number, best: number, above: number, py: number): void {
    this.n++;
    this.lossSum += -Math.log(Math.max(py, 1e-12));
    const counts = this.counts;
    counts.images[y]!++;
    if (best === y) {
      this.hits1++;
      counts.top1[y]!++;
    }
    if (above < 5) {
      this.hits5++;
      counts.top5[y]!++;
    }
    this.confusion.add(y, best);
  }

  /** Top-1 accuracy so far (cheap: for a progress bar). */
  get top1(): number {
    return this.hits1 / Math.max(1, this.n);
  }

  result(): EvalResult {
    const { images, top1 } = this.counts;
    const perClass = Array.from(images, (total, c) => (total ? top1[c]! / total : NaN));
    const n = Math.max(1, this.n);
    return {
      n: this.n,
      loss: this.lossSum / n,
      top1: this.hits1 / n,
      top5: this.hits5 / n,
      confusion: this.confusion,
      perClass,
      classCounts: this.counts,
      skipped: [],
    };
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
    if (b.views === 1) t.addLogits(logits, labels, b.n);
    else t.add(scoreViews(logits, rows, classes, b.views), labels, b.n);
    done += b.n;
    onBatch?.(done, loader.dataset.length, t);
  }
  return { ...t.result(), skipped: loader.skipped(0) };
}
