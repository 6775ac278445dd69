/**
 * Scoring a model on a dataset: softmax averaged over each sample's views (one center crop, ten
 * crops, several scales), then top-1/top-5 hits, per-class accuracy and the confusion matrix. The
 * math is pure (`scoreViews`, `Tally`); `evaluateLoader` only feeds batches to something that
 * returns logits. Images that cannot be read are not scored (their rows carry label -1): `n` counts
 * the images actually scored, and `skipped` names the others.
 */
import type { Loader, Skipped } from '../data/index.js';

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

/** Evaluates every batch of `loader`'s epoch 0 (a deterministic, unshuffled eval loader). */
export async function evaluateLoader(
  loader: Loader,
  classes: number,
  logitsOf: LogitsFn,
  onBatch?: (done: number, total: number, t: Tally) => void,
): Promise<EvalResult> {
  const t = new Tally(classes);
  let done = 0;
  for await (const b of loader.epoch(0)) {
    const rows = b.labels.length * b.views;
    // Labels per view row: the session's graph has one label per input row.
    const rowLabels = new Int32Array(rows);
    for (let r = 0; r < rows; r++) rowLabels[r] = b.labels[Math.floor(r / b.views)]!;
    const labels = b.labels.slice(0, b.n);
    const logits = await logitsOf(b.x, rows, rowLabels);
    loader.recycle(b);
    t.add(scoreViews(logits, rows, classes, b.views), labels, b.n);
    done += b.n;
    onBatch?.(done, loader.dataset.length, t);
  }
  return { ...t.result(), skipped: loader.skipped(0) };
}
