/**
 * The training objective as graph nodes: softmax cross-entropy from log-softmax and a one-hot target
 * (runs on every execution provider; SoftmaxCrossEntropyLoss has no CUDA kernel), with optional label
 * smoothing, plus top-1/top-5 hit counts for the metrics. A row labelled -1 (an image the loader
 * could not read) is ignored, as PyTorch's ignore_index: the loss is the mean over the other rows,
 * and a negative label is never a hit.
 */
import type { Value } from '../graph/graph.js';
import { add, cast, div, equal, greater, mul, neg, scale, scalarLike, zerosLike } from '../ops/elementwise.js';
import { reduceSum, reshape, slice } from '../ops/shape.js';
import { logSoftmax, topkIndices } from '../ops/softmax.js';
import { range } from '../ops/util.js';

/** Mean cross-entropy of logits (N, K) against int64 labels (N), over the rows whose label is >= 0. */
export function crossEntropy(logits: Value, labels: Value, smoothing = 0): Value {
  const g = logits.graph;
  const [n, k] = logits.shape as [number, number];
  const onehot = cast(equal(reshape(labels, [n, 1]), g.ints(range(k))), logits.dtype);
  const target = smoothing > 0 ? add(scale(onehot, 1 - smoothing), scalarLike(logits, smoothing / k)) : onehot;
  const valid = cast(greater(labels, g.ints([-1], true)), logits.dtype);
  const nll = mul(neg(reduceSum(mul(logSoftmax(logits, 1), target), [1])), valid);
  // sum / max(1, count): a batch without a readable row has loss 0, not 0/0.
  const count = reduceSum(valid, [0]);
  return div(reduceSum(nll, [0]), add(count, cast(equal(count, zerosLike(count)), logits.dtype)));
}

/** Number of samples whose label is the top-1 / among the top-5 logits (float scalars). */
export function hitCounts(logits: Value, labels: Value): { top1: Value; top5: Value } {
  const [n, k] = logits.shape as [number, number];
  const top = topkIndices(logits, Math.min(5, k));
  const hits = cast(equal(top, reshape(labels, [n, 1])), 'float32');
  return { top1: reduceSum(slice(hits, [0], [1], [1]), [0, 1]), top5: reduceSum(hits, [0, 1]) };
}
