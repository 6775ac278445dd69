/** Every vector-Jacobian rule against finite differences, on tiny shapes. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gradients } from '../../src/autodiff/grad.js';
import { Graph, type OpDef, type Value } from '../../src/graph/graph.js';
import { conv } from '../../src/ops/conv.js';
import {
  add,
  div,
  exp,
  greater,
  identity,
  log,
  mul,
  neg,
  pow,
  relu,
  Relu,
  sqrt,
  sub,
  reduceMean,
  sumOf,
  where,
} from '../../src/ops/elementwise.js';
import type { NoAttrs } from '../../src/ops/util.js';
import { differentiableOps } from '../../src/ops/index.js';
import { gemm } from '../../src/ops/linalg.js';
import { lrn, lrnComposite } from '../../src/ops/lrn.js';
import { batchNormInference, batchNormTraining } from '../../src/ops/batchnorm.js';
import { avgPool, globalAvgPool, maxPool } from '../../src/ops/pool.js';
import { concat, flatten, pad, reduceSum, reshape, slice, transpose } from '../../src/ops/shape.js';
import { logSoftmax, softmax } from '../../src/ops/softmax.js';
import { crossEntropy } from '../../src/train/objective.js';
import { covered, coveredComposites, gradcheck, separated } from './gradcheck.js';
import { toModel } from '../../src/graph/serialize.js';
import { COMPOSITE_DOMAIN, DEFAULT_TABLE, lower } from '../../src/runtime/lower/index.js';
import { readdirSync } from 'node:fs';

const convAttrs = (s: number, p: number, group = 1, d = 1) => ({ strides: [s, s], pads: [p, p, p, p], dilations: [d, d], group }) as const;

test('Conv 3×3, pad 1, stride 1 (x, W, b)', async () => {
  await gradcheck((x, w, b) => conv(x, w, b, convAttrs(1, 1)), [{ shape: [2, 3, 5, 5] }, { shape: [4, 3, 3, 3] }, { shape: [4] }], {
    dtype: 'float32',
  });
});

test('Conv grouped (group 2), stride 2', async () => {
  await gradcheck((x, w, b) => conv(x, w, b, convAttrs(2, 1, 2)), [{ shape: [1, 4, 7, 7] }, { shape: [6, 2, 3, 3] }, { shape: [6] }], {
    dtype: 'float32',
  });
});

test('Conv 11×11 stride 4 with remainder 3 (AlexNet conv1 geometry)', async () => {
  // (26 − 11) mod 4 = 3: the output_padding case that output_shape gets wrong.
  await gradcheck((x, w) => conv(x, w, undefined, convAttrs(4, 0)), [{ shape: [1, 2, 26, 26] }, { shape: [2, 2, 11, 11] }], {
    dtype: 'float32',
    maxElements: 150,
  });
});

test('Conv dilation 2 and asymmetric remainder with padding', async () => {
  await gradcheck((x, w) => conv(x, w, undefined, convAttrs(2, 2, 1, 2)), [{ shape: [1, 2, 8, 9] }, { shape: [3, 2, 3, 3] }], {
    dtype: 'float32',
  });
});

test('Conv with more filters than positions (batch folded into one contraction), plain and grouped', async () => {
  await gradcheck((x, w, b) => conv(x, w, b, convAttrs(2, 1)), [{ shape: [2, 3, 4, 4] }, { shape: [20, 3, 3, 3] }, { shape: [20] }], {
    dtype: 'float32',
    maxElements: 120,
  });
  await gradcheck((x, w) => conv(x, w, undefined, convAttrs(1, 1, 2)), [{ shape: [2, 4, 3, 3] }, { shape: [24, 2, 3, 3] }], {
    dtype: 'float32',
    maxElements: 120,
  });
});

test('Conv stride 1 with a non-square kernel and asymmetric pads, grouped (dx by a Conv of the mirrored, transposed weights)', async () => {
  const a = { strides: [1, 1], pads: [2, 0, 1, 1], dilations: [1, 1], group: 2 } as const;
  await gradcheck((x, w, b) => conv(x, w, b, a), [{ shape: [2, 4, 5, 6] }, { shape: [6, 2, 3, 2] }, { shape: [6] }], {
    dtype: 'float32',
    maxElements: 120,
  });
});

test('Conv stride 1 padded by the kernel size or more (dx by ConvTranspose)', async () => {
  await gradcheck((x, w) => conv(x, w, undefined, convAttrs(1, 1)), [{ shape: [2, 3, 4, 4] }, { shape: [5, 3, 1, 1] }], {
    dtype: 'float32',
  });
});

test('the input gradient of a stride-1 Conv is a Conv, of a strided one a ConvTranspose', () => {
  const backwardOps = (stride: number): string[] => {
    const g = new Graph('ops');
    const x = g.input('x', 'float32', [2, 4, 6, 6]);
    const w = g.input('w', 'float32', [8, 4, 3, 3]);
    const loss = reduceSum(conv(x, w, undefined, convAttrs(stride, 1)), [0, 1, 2, 3]);
    g.output(gradients(loss, [x]).get(x)!, 'dx');
    const lowered = lower(toModel(g), DEFAULT_TABLE, { block: 0 });
    // The forward Conv feeds only the loss, which the gradient does not read.
    return lowered.graph.node.map((n) => n.opType);
  };
  assert.ok(backwardOps(1).includes('Conv') && !backwardOps(1).includes('ConvTranspose'), backwardOps(1).join(' '));
  assert.ok(backwardOps(2).includes('ConvTranspose'), backwardOps(2).join(' '));
});

test('Conv 5×5 stride 2 with asymmetric pads and a remainder (dW by one product per kernel offset)', async () => {
  const a = { strides: [2, 2], pads: [2, 1, 0, 2], dilations: [1, 1], group: 1 } as const;
  await gradcheck((x, w, b) => conv(x, w, b, a), [{ shape: [2, 2, 9, 10] }, { shape: [3, 2, 5, 5] }, { shape: [3] }], {
    dtype: 'float32',
    maxElements: 120,
  });
});

test('Conv 5×5 grouped (AlexNet conv2 geometry: group 2, pad 2), dW by one product per kernel offset', async () => {
  const a = { strides: [1, 1], pads: [2, 2, 2, 2], dilations: [1, 1], group: 2 } as const;
  await gradcheck((x, w) => conv(x, w, undefined, a), [{ shape: [2, 4, 6, 6] }, { shape: [4, 2, 5, 5] }], {
    dtype: 'float32',
    maxElements: 120,
  });
});

test('Conv 7×7 stride 2 (GoogLeNet conv1 geometry), dW by one Conv over the batch', async () => {
  const a = { strides: [2, 2], pads: [3, 3, 3, 3], dilations: [1, 1], group: 1 } as const;
  await gradcheck((x, w) => conv(x, w, undefined, a), [{ shape: [2, 2, 11, 11] }, { shape: [3, 2, 7, 7] }], {
    dtype: 'float32',
    maxElements: 120,
  });
});

test('Conv 3×3 lowered for blocked-layout kernels (block 2): dW by one Conv over the batch, stride 1 and stride 2 with uneven pads', async () => {
  for (const a of [
    { strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 },
    { strides: [2, 2], pads: [0, 1, 1, 0], dilations: [1, 1], group: 1 },
  ] as const) {
    // Batch 2 and 4 filters are multiples of the block 2: dW takes the Conv-over-batch form.
    let overBatch = false;
    await gradcheck((x, w) => conv(x, w, undefined, a), [{ shape: [2, 3, 7, 7] }, { shape: [4, 3, 3, 3] }], {
      dtype: 'float32',
      maxElements: 120,
      block: 2,
      inspect: (m) => (overBatch = m.graph.node.some((n) => n.opType === 'Conv' && n.output[0]?.includes('/dw'))),
    });
    assert.ok(overBatch, 'no Conv over the batch was built');
  }
});

test('Conv 1×1 (im2col is the input itself)', async () => {
  await gradcheck((x, w, b) => conv(x, w, b, convAttrs(1, 0)), [{ shape: [2, 3, 4, 4] }, { shape: [5, 3, 1, 1] }, { shape: [5] }], {
    dtype: 'float32',
  });
});

test('Relu (float64, inputs away from the kink)', async () => {
  await gradcheck((x) => relu(x), [{ shape: [2, 3, 4], data: separated(24) }], { dtype: 'float64' });
});

test('LRN sizes 5 and 3', async () => {
  const x = { shape: [2, 7, 3, 3] };
  await gradcheck((v) => lrn(v, { size: 5, alpha: 0.05, beta: 0.75, bias: 2 }), [x], { dtype: 'float32' });
  await gradcheck((v) => lrn(v, { size: 3, alpha: 0.3, beta: 0.6, bias: 1 }), [x], { dtype: 'float32' });
});

test('LRN from primitives: equals the ONNX LRN op and has the same gradient', async () => {
  const a = { size: 5, alpha: 0.05, beta: 0.75, bias: 2 };
  await gradcheck((v) => lrnComposite(v, a), [{ shape: [2, 7, 3, 3] }], { dtype: 'float32' });
  await gradcheck((v) => sub(lrnComposite(v, a), lrn(v, a)), [{ shape: [1, 6, 2, 2] }], { dtype: 'float32', atol: 1e-3 });
});

test('BatchNormalization in eval mode w.r.t. x, γ and β, the running statistics held (float64)', async () => {
  const stats = [
    { shape: [3], data: [0.2, -0.4, 0.1], check: false },
    { shape: [3], data: [0.5, 1.5, 0.9], check: false },
  ];
  await gradcheck(
    (x, gamma, beta, mean, variance) => batchNormInference(x, gamma!, beta!, mean!, variance!, 1e-5),
    [{ shape: [2, 3, 2, 3] }, { shape: [3] }, { shape: [3] }, ...stats],
    { dtype: 'float64' },
  );
});

test('batch norm in training mode (batch statistics) w.r.t. x, γ and β, and its batch mean and variance (float64)', async () => {
  const ins = [{ shape: [3, 2, 2, 3] }, { shape: [2] }, { shape: [2] }];
  await gradcheck((x, gamma, beta) => batchNormTraining(x, gamma!, beta!, 1e-5).y, ins, { dtype: 'float64' });
  // The statistics' own gradients (they feed the running statistics, not the loss, in training).
  const stats = (x: Value, gamma: Value, beta: Value) => {
    const b = batchNormTraining(x, gamma, beta, 1e-5);
    return add(mul(b.variance, beta), mul(b.mean, gamma));
  };
  await gradcheck((x, gamma, beta) => stats(x, gamma!, beta!), ins, { dtype: 'float64' });
});

test('Pow w.r.t. its base (float64)', async () => {
  await gradcheck((x) => pow(x, x.graph.floats([-0.75], [], 'float64')), [{ shape: [2, 3], data: [0.5, 1.2, 2, 0.7, 1.5, 3] }], {
    dtype: 'float64',
  });
});

test('MaxPool overlapping 3/2 and ceil mode with padding (float64)', async () => {
  const x = { shape: [2, 2, 7, 7], data: separated(196) };
  await gradcheck((v) => maxPool(v, { kernel: [3, 3], strides: [2, 2], pads: [0, 0, 0, 0], ceil: false }), [x], { dtype: 'float64' });
  const y = { shape: [1, 2, 6, 6], data: separated(72, 5) };
  await gradcheck((v) => maxPool(v, { kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceil: true }), [y], { dtype: 'float64' });
});

test('AveragePool with and without padding counted, ceil mode', async () => {
  for (const countIncludePad of [false, true]) {
    for (const ceil of [false, true]) {
      await gradcheck(
        (v) => avgPool(v, { kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceil, countIncludePad }),
        [{ shape: [1, 2, 6, 6] }],
        { dtype: 'float32' },
      );
    }
  }
  // GoogLeNet's auxiliary head: 5×5 stride 3, no padding.
  await gradcheck(
    (v) => avgPool(v, { kernel: [5, 5], strides: [3, 3], pads: [0, 0, 0, 0], ceil: false, countIncludePad: false }),
    [{ shape: [1, 1, 14, 14] }],
    {
      dtype: 'float32',
    },
  );
});

test('GlobalAveragePool', async () => {
  await gradcheck((x) => globalAvgPool(x), [{ shape: [2, 3, 4, 5] }], { dtype: 'float32' });
});

test('Concat, Flatten, Reshape, Transpose, Slice, Pad (float64)', async () => {
  await gradcheck((a, b) => concat([a, b], 1), [{ shape: [2, 3, 2] }, { shape: [2, 1, 2] }], { dtype: 'float64' });
  await gradcheck((a) => flatten(a, 1), [{ shape: [2, 3, 2, 2] }], { dtype: 'float64' });
  await gradcheck((a) => reshape(a, [3, 8]), [{ shape: [2, 3, 4] }], { dtype: 'float64' });
  await gradcheck((a) => transpose(a, [2, 0, 1]), [{ shape: [2, 3, 4] }], { dtype: 'float64' });
  await gradcheck((a) => slice(a, [1, 0], [3, -1], [1, 2]), [{ shape: [2, 4, 5] }], { dtype: 'float64' });
  await gradcheck((a) => pad(a, [0, 1, 2, 0, 2, 1]), [{ shape: [2, 3, 2] }], { dtype: 'float64' });
});

test('Gemm in every transpose combination, with bias (float64)', async () => {
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      await gradcheck(
        (a, b, c) => gemm(a, b, c, transA, transB),
        [{ shape: transA ? [4, 3] : [3, 4] }, { shape: transB ? [5, 4] : [4, 5] }, { shape: [5] }],
        { dtype: 'float64' },
      );
    }
  }
});

test('Add, Sub, Mul, Div, Sum with broadcasting; Neg, Exp, Log, Sqrt, Identity (float64)', async () => {
  const a = { shape: [2, 3, 4] };
  const b = { shape: [3, 1] };
  const pos = { shape: [2, 3], data: [0.5, 1.2, 2, 0.7, 1.5, 3] };
  await gradcheck((x, y) => add(x, y), [a, b], { dtype: 'float64' });
  await gradcheck((x, y) => sub(x, y), [a, b], { dtype: 'float64' });
  await gradcheck((x, y) => mul(x, y), [a, b], { dtype: 'float64' });
  await gradcheck((x, y) => div(x, y), [a, { shape: [3, 1], data: [0.5, -1.5, 2] }], { dtype: 'float64' });
  await gradcheck((x) => neg(exp(x)), [a], { dtype: 'float64' });
  await gradcheck((x, y, z) => sumOf([x, y, z]), [a, b, { shape: [4] }], { dtype: 'float64' });
  await gradcheck((x) => identity(log(x)), [pos], { dtype: 'float64' });
  await gradcheck((x) => sqrt(x), [pos], { dtype: 'float64' });
});

test('Where (float64)', async () => {
  await gradcheck(
    (x, y) => where(greater(x, y), x, y),
    [
      { shape: [2, 5], data: separated(10) },
      { shape: [5], data: separated(5, 9) },
    ],
    {
      dtype: 'float64',
    },
  );
});

test('ReduceSum, ReduceMean with and without keepdims (float64)', async () => {
  await gradcheck((x) => reduceSum(x, [1], true), [{ shape: [2, 3, 4] }], { dtype: 'float64' });
  await gradcheck((x) => reduceMean(x, [0, 2], false), [{ shape: [2, 3, 4] }], { dtype: 'float64' });
});

test('Softmax and LogSoftmax (float64)', async () => {
  await gradcheck((x) => softmax(x, 1), [{ shape: [3, 5] }], { dtype: 'float64' });
  await gradcheck((x) => logSoftmax(x, 1), [{ shape: [3, 5] }], { dtype: 'float64' });
});

test('cross-entropy with label smoothing w.r.t. the logits (float64)', async () => {
  await gradcheck(
    (logits) => {
      const labels = logits.graph.ints([2, 0, 4]);
      return crossEntropy(logits, labels, 0.1);
    },
    [{ shape: [3, 5] }],
    { dtype: 'float64' },
  );
});

test('a small network end to end: conv → relu → LRN → max pool → fc', async () => {
  await gradcheck(
    (x, w1, b1, w2, b2) => {
      let h: Value = relu(conv(x, w1, b1, convAttrs(1, 1)));
      h = lrn(h, { size: 3, alpha: 0.1, beta: 0.75, bias: 1 });
      h = maxPool(h, { kernel: [3, 3], strides: [2, 2], pads: [0, 0, 0, 0], ceil: true });
      return gemm(flatten(h, 1), w2, b2, false, true);
    },
    [{ shape: [2, 2, 6, 6], check: false }, { shape: [3, 2, 3, 3] }, { shape: [3] }, { shape: [4, 27] }, { shape: [4] }],
    { dtype: 'float32', eps: 2e-3, rtol: 3e-2 },
  );
});

test('every registered gradient rule has a finite-difference check above', () => {
  const missing = differentiableOps().filter((op) => !covered.has(op));
  assert.deepEqual(missing, [], `rules without a gradient check: ${missing.join(', ')}`);
});

test('every composite op a gradient rule emits has a lowering every provider takes, checked against finite differences above', async () => {
  // Every OpDef of the composite domain that src/ops exports, found by reading the modules.
  const dir = new URL('../../src/ops/', import.meta.url);
  const defs = new Set<string>();
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.js'))) {
    for (const v of Object.values(await import(new URL(f, dir).href))) {
      const d = v as { type?: unknown; domain?: unknown; infer?: unknown };
      if (d && typeof d === 'object' && d.domain === COMPOSITE_DOMAIN && typeof d.type === 'string' && typeof d.infer === 'function')
        defs.add(d.type);
    }
  }
  assert.ok(defs.size > 0, 'no composite ops found');
  for (const op of defs) {
    assert.ok(
      DEFAULT_TABLE.flat().some((r) => r.match({ opType: op, domain: COMPOSITE_DOMAIN, input: [], output: [] })),
      `${op} has no default lowering`,
    );
  }
  const missing = [...defs].filter((op) => !coveredComposites.has(op));
  assert.deepEqual(missing, [], `composites without a gradient check: ${missing.join(', ')}`);
});

test('the check catches a wrong rule (ReLU without its mask)', async () => {
  const WrongRelu: OpDef<NoAttrs> = { ...Relu, vjp: (_node, [dy]) => [dy] };
  await assert.rejects(
    gradcheck((x) => x.graph.add1(WrongRelu, [x], {}), [{ shape: [2, 6], data: separated(12) }], { dtype: 'float64' }),
    /autodiff .* vs finite difference/,
  );
});
