/**
 * Layers with parameters, named the way the papers name them ("conv1.weight", "fc6.bias").
 * Each helper opens a scope, creates its parameters and emits the ops.
 */
import type { Graph, Init, Value } from '../graph/graph.js';
import { conv } from '../ops/conv.js';
import { gemm } from '../ops/linalg.js';
import { relu, mul } from '../ops/elementwise.js';
import { avgPool, globalAvgPool, maxPool } from '../ops/pool.js';
import { lrnComposite, type LrnAttrs } from '../ops/lrn.js';
import { flatten } from '../ops/shape.js';
import { pairOf } from '../ops/util.js';
import { batchNormInference, batchNormTraining, runningUpdate } from '../ops/batchnorm.js';

interface ConvSpec {
  out: number;
  k: number | readonly [number, number];
  stride?: number;
  /** Symmetric padding, or [top, left, bottom, right]. */
  pad?: number | readonly [number, number, number, number];
  groups?: number;
  dilation?: number;
  init: Init;
  biasInit?: Init;
  /** Apply ReLU after the convolution (in the same layer). */
  relu?: boolean;
}

export function conv2d(x: Value, name: string, s: ConvSpec): Value {
  const g = x.graph;
  return g.scope(name, () => {
    const [kh, kw] = pairOf(s.k);
    const groups = s.groups ?? 1;
    const cin = x.shape[1] ?? 0;
    const w = g.param('weight', [s.out, cin / groups, kh, kw], s.init);
    const b = g.param('bias', [s.out], s.biasInit ?? { kind: 'constant', value: 0 }, true);
    const p = s.pad ?? 0;
    const pads = typeof p === 'number' ? ([p, p, p, p] as const) : p;
    const stride = s.stride ?? 1;
    const d = s.dilation ?? 1;
    const y = conv(x, w, b, { strides: [stride, stride], pads, dilations: [d, d], group: groups });
    return s.relu === false ? y : relu(y);
  });
}

interface LinearSpec {
  out: number;
  init: Init;
  biasInit?: Init;
  relu?: boolean;
}

/** Fully connected layer; flattens its input first. Weight is (out, in) as in Caffe and PyTorch. */
export function linear(x: Value, name: string, s: LinearSpec): Value {
  const g = x.graph;
  return g.scope(name, () => {
    const flat = x.rank === 2 ? x : flatten(x, 1);
    const w = g.param('weight', [s.out, flat.shape[1] ?? 0], s.init);
    const b = g.param('bias', [s.out], s.biasInit ?? { kind: 'constant', value: 0 }, true);
    const y = gemm(flat, w, b, false, true);
    return s.relu ? relu(y) : y;
  });
}

export function maxPool2d(x: Value, name: string, k: number, stride: number, opts: { pad?: number; ceil?: boolean } = {}): Value {
  const p = opts.pad ?? 0;
  return x.graph.scope(name, () => maxPool(x, { kernel: [k, k], strides: [stride, stride], pads: [p, p, p, p], ceil: opts.ceil ?? false }));
}

export function avgPool2d(x: Value, name: string, k: number, stride: number, opts: { pad?: number; ceil?: boolean } = {}): Value {
  const p = opts.pad ?? 0;
  return x.graph.scope(name, () =>
    avgPool(x, { kernel: [k, k], strides: [stride, stride], pads: [p, p, p, p], ceil: opts.ceil ?? false, countIncludePad: false }),
  );
}

export function gap(x: Value, name: string): Value {
  return x.graph.scope(name, () => globalAvgPool(x));
}

export function norm(x: Value, name: string, a: LrnAttrs): Value {
  return x.graph.scope(name, () => lrnComposite(x, a));
}

/**
 * Dropout: the identity in inference graphs. In training graphs the keep-mask (already scaled by
 * 1/(1−p)) is a graph input named "<layer>.mask", drawn in TypeScript from a seeded PRNG, so runs are
 * reproducible and the graph runs on every execution provider.
 */
export function dropout(x: Value, name: string, p: number): Value {
  const g: Graph = x.graph;
  if (!g.training || p <= 0) return x;
  return g.scope(name, () => {
    const mask = g.input(`${g.scopeName}.mask`, x.dtype, x.shape);
    g.dropoutMasks.set(mask, p);
    return mul(x, mask);
  });
}

/**
 * Batch normalisation over channels, torch.nn.BatchNorm2d's parameters and buffers under its names:
 * "<name>.weight" (γ, 1), "<name>.bias" (β, 0), buffers "<name>.running_mean" (0) and
 * "<name>.running_var" (1). Training graphs normalise by the batch's statistics and record the
 * buffers' next values in Graph.bufferUpdates; inference graphs, and training graphs in which
 * the layer's weight and bias are both frozen, normalise by the running statistics.
 */
export function batchNorm2d(x: Value, name: string, o: { eps?: number; momentum?: number } = {}): Value {
  const g = x.graph;
  const eps = o.eps ?? 1e-5;
  const momentum = o.momentum ?? 0.1;
  return g.scope(name, () => {
    const c = [x.shape[1] ?? 0];
    const gamma = g.param('weight', c, { kind: 'constant', value: 1 });
    const beta = g.param('bias', c, { kind: 'constant', value: 0 }, true);
    const mean = g.buffer('running_mean', c, { kind: 'constant', value: 0 });
    const variance = g.buffer('running_var', c, { kind: 'constant', value: 1 });
    const frozen = g.frozen.has(`${g.scopeName}.weight`) && g.frozen.has(`${g.scopeName}.bias`);
    if (!g.training || frozen) return batchNormInference(x, gamma, beta, mean, variance, eps);
    const batch = batchNormTraining(x, gamma, beta, eps);
    const n = (x.shape[0] ?? 1) * (x.shape[2] ?? 1) * (x.shape[3] ?? 1);
    const next = runningUpdate(mean, variance, batch, n, momentum);
    g.bufferUpdates.set(mean, next.mean);
    g.bufferUpdates.set(variance, next.variance);
    return batch.y;
  });
}
