/**
 * Batch normalisation over (N, C, H, W), per channel c (Ioffe & Szegedy 2015, as torch.nn.BatchNorm2d):
 *   y = γ · (x − μ) / √(σ² + ε) + β.
 * Eval mode: μ, σ² are the running statistics, and the node is ONNX's BatchNormalization in its
 * inference form (every provider runs it; export writes it as it is). Its vjp treats μ and σ² as
 * constants, which is what a layer frozen in eval mode needs.
 * Training mode: μ, σ² are the batch's (σ² biased, over N·H·W), built from primitives that ORT's
 * inference build runs (its BatchNormalization kernel has no training mode), so the gradient is
 * the primitives' own rules, through μ and σ² as well. The running statistics then move as torch's do:
 *   r ← (1 − m)·r + m·s,  with s = μ for the mean and s = σ²·n/(n − 1) (unbiased) for the variance.
 */
import { attr, type OpDef, type Value } from '../graph/graph.js';
import { expectRank, req } from './util.js';
import { add, mul, pow, scalarLike, scale, sub } from './elementwise.js';
import { reduceMean } from './elementwise.js';
import { reduceSum, reshape } from './shape.js';
import { formatShape } from '../graph/dtype.js';

interface BatchNormAttrs {
  epsilon: number;
}

/** (C) → (1, C, 1, 1), to broadcast over an (N, C, H, W) tensor. */
function perChannel(v: Value): Value {
  return reshape(v, [1, v.shape[0] ?? 0, 1, 1]);
}

export const BatchNormalization: OpDef<BatchNormAttrs> = {
  type: 'BatchNormalization',
  infer(inputs) {
    const x = req(inputs, 0, 'X');
    expectRank(x, 4, 'input (N, C, H, W)');
    const c = x.shape[1] ?? 0;
    ['scale', 'B', 'input_mean', 'input_var'].forEach((what, i) => {
      const v = req(inputs, i + 1, what);
      if (v.rank !== 1 || v.shape[0] !== c) throw new Error(`expected ${what} of shape (${c}) but received ${formatShape(v.shape)}`);
      if (v.dtype !== x.dtype) throw new Error(`${what}: dtypes differ (${v.dtype} vs ${x.dtype})`);
    });
    return [{ dtype: x.dtype, shape: x.shape }];
  },
  onnxAttrs: (a) => ({ epsilon: attr.float(a.epsilon) }),
  // One multiply–add per element once folded into y = k·x + b.
  macs: (node) => req(node.outputs, 0, 'Y').size,
  vjp(node, [dy], ctx) {
    const [x, gamma, beta, mean, variance] = node.inputs;
    if (!dy || !x || !gamma || !beta || !mean || !variance) return [undefined, undefined, undefined, undefined, undefined];
    const inv = pow(add(variance, scalarLike(variance, node.attrs.epsilon)), scalarLike(variance, -0.5));
    const dx = ctx.needsGrad(x) ? mul(dy, perChannel(mul(gamma, inv))) : undefined;
    const xhat = () => mul(sub(x, perChannel(mean)), perChannel(inv));
    const dGamma = ctx.needsGrad(gamma) ? reduceSum(mul(dy, xhat()), [0, 2, 3]) : undefined;
    const dBeta = ctx.needsGrad(beta) ? reduceSum(dy, [0, 2, 3]) : undefined;
    return [dx, dGamma, dBeta, undefined, undefined];
  },
};

/** Eval mode: normalises by the given (running) statistics. */
export function batchNormInference(x: Value, gamma: Value, beta: Value, mean: Value, variance: Value, epsilon: number): Value {
  return x.graph.add1(BatchNormalization, [x, gamma, beta, mean, variance], { epsilon });
}

interface BatchNormTraining {
  y: Value;
  /** The batch mean, (C). */
  mean: Value;
  /** The batch variance, biased (divided by N·H·W), (C). */
  variance: Value;
}

/** Training mode: normalises by the batch's own statistics, from primitives (see the file header). */
export function batchNormTraining(x: Value, gamma: Value, beta: Value, epsilon: number): BatchNormTraining {
  expectRank(x, 4, 'input (N, C, H, W)');
  const c = x.shape[1] ?? 0;
  const mean = reduceMean(x, [0, 2, 3], true);
  const centred = sub(x, mean);
  const variance = reduceMean(mul(centred, centred), [0, 2, 3], true);
  const inv = pow(add(variance, scalarLike(variance, epsilon)), scalarLike(variance, -0.5));
  const y = add(mul(centred, mul(inv, perChannel(gamma))), perChannel(beta));
  return { y, mean: reshape(mean, [c]), variance: reshape(variance, [c]) };
}

/**
 * The running statistics after one training batch: (1 − m)·r + m·s, the variance's s unbiased
 * (× n/(n − 1), n = N·H·W values per channel), as torch.nn.BatchNorm2d updates them.
 */
export function runningUpdate(
  runningMean: Value,
  runningVar: Value,
  batch: BatchNormTraining,
  n: number,
  momentum: number,
): { mean: Value; variance: Value } {
  const blend = (r: Value, s: Value) => add(scale(r, 1 - momentum), scale(s, momentum));
  return { mean: blend(runningMean, batch.mean), variance: blend(runningVar, scale(batch.variance, n > 1 ? n / (n - 1) : 1)) };
}
