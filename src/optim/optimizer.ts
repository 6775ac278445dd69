/**
 * Optimizers as graph nodes. Each takes a parameter, its gradient, its state tensors and the step's
 * hyper-parameters (graph inputs, so schedules live in TypeScript) and emits the updated values.
 *
 * SGD follows PyTorch's convention by default: g = ∇ + λw; v = μv + g; w −= lr·v (Nesterov:
 * w −= lr·(g + μv)). The Caffe convention (the papers' own) folds the rate into the velocity:
 * v = μv + lr·g; w −= v — the same trajectory at a constant rate, different when the rate changes.
 * AdamW decouples the decay: w −= lr·(m̂ / (√v̂ + ε) + λw).
 */
import type { Value } from '../graph/graph.js';
import { add, div, mul, scalarLike, scale, sqrt, sub, sumOf } from '../ops/elementwise.js';

/**
 * The optimizers: the per-step scalar inputs each reads (hyperNames) and the state tensors it keeps
 * per parameter (stateSuffixes; SGD keeps none without momentum).
 */
const OPTIMIZERS = {
  sgd: { hypers: ['lr'], states: ['momentum'] },
  nesterov: { hypers: ['lr'], states: ['momentum'] },
  adamw: { hypers: ['lr', 'adam_bc1', 'adam_bc2'], states: ['exp_avg', 'exp_avg_sq'] },
} as const;
type OptimizerKind = keyof typeof OPTIMIZERS;
export const OPTIMIZER_KINDS = Object.keys(OPTIMIZERS) as OptimizerKind[];
/** SGD's momentum conventions (above), the first the default. */
export const SGD_CONVENTIONS = ['pytorch', 'caffe'] as const;

export interface OptimizerConfig {
  kind: OptimizerKind;
  momentum: number;
  weightDecay: number;
  /** Apply weight decay to biases too (PyTorch's default); the Caffe models mostly did not. */
  decayBiases: boolean;
  convention: (typeof SGD_CONVENTIONS)[number];
  beta1: number;
  beta2: number;
  eps: number;
}

export const DEFAULT_OPTIMIZER: OptimizerConfig = {
  kind: 'sgd',
  momentum: 0.9,
  weightDecay: 5e-4,
  decayBiases: true,
  convention: 'pytorch',
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
};

/** Per-step scalar inputs an optimizer reads (each a float32 scalar graph input). */
export function hyperNames(c: OptimizerConfig): string[] {
  return [...OPTIMIZERS[c.kind].hypers];
}

/** Values of the per-step scalars for step t (1-based) at learning rate lr. */
export function hyperValues(c: OptimizerConfig, lr: number, t: number): number[] {
  return c.kind === 'adamw' ? [lr, 1 / (1 - c.beta1 ** t), 1 / (1 - c.beta2 ** t)] : [lr];
}

/** Names of the state tensors kept per parameter. */
export function stateSuffixes(c: OptimizerConfig): string[] {
  return c.kind !== 'adamw' && !(c.momentum > 0) ? [] : [...OPTIMIZERS[c.kind].states];
}

export function applyUpdate(
  c: OptimizerConfig,
  w: Value,
  grad: Value,
  states: readonly Value[],
  hyper: readonly Value[],
  isBias: boolean,
): { param: Value; states: Value[] } {
  const lr = hyper[0]!;
  const wd = isBias && !c.decayBiases ? 0 : c.weightDecay;
  if (c.kind === 'adamw') {
    const [m0, v0] = states as [Value, Value];
    const [bc1, bc2] = [hyper[1]!, hyper[2]!];
    const m = add(scale(m0, c.beta1), scale(grad, 1 - c.beta1));
    const v = add(scale(v0, c.beta2), scale(mul(grad, grad), 1 - c.beta2));
    const denom = add(sqrt(mul(v, bc2)), scalarLike(w, c.eps));
    let step = div(mul(m, bc1), denom);
    if (wd > 0) step = add(step, scale(w, wd));
    return { param: sub(w, mul(step, lr)), states: [m, v] };
  }
  if (c.momentum === 0) return { param: sub(w, mul(wd > 0 ? add(grad, scale(w, wd)) : grad, lr)), states: [] };
  const v0 = states[0]!;
  if (c.convention === 'caffe') {
    const g = wd > 0 ? add(grad, scale(w, wd)) : grad;
    const v = add(scale(v0, c.momentum), mul(g, lr));
    return { param: sub(w, v), states: [v] };
  }
  // One variadic Sum instead of two Adds: the update is memory-bound, each pass over the weights counts.
  const decay = wd > 0 ? [scale(w, wd)] : [];
  const v = sumOf([scale(v0, c.momentum), grad, ...decay]);
  const dir = c.kind === 'nesterov' ? sumOf([grad, ...decay, scale(v, c.momentum)]) : v;
  return { param: sub(w, mul(dir, lr)), states: [v] };
}
