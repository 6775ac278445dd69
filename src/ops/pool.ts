/**
 * MaxPool, AveragePool, GlobalAveragePool (2-D, NCHW).
 * MaxPool's gradient sends dy to the recorded argmax (the Indices output, flat over N·C·H·W, ties to
 * the first element): one MaxPoolGrad node (composite), written by src/runtime/lower/ as a
 * ScatterElements(reduction='add'), right for overlapping windows and ceil_mode, or on the CPU as
 * MaxUnpool where the windows tile the input. AveragePool's gradient spreads dy/count with a
 * ConvTranspose of a ones kernel per channel.
 */
import { DTYPES, sizeOf, type DType } from '../graph/dtype.js';
import { attr, COMPOSITE_DOMAIN, type OpDef, type Value, type Window } from '../graph/graph.js';
import { expectRank, req } from './util.js';
import { expand, slice } from './shape.js';
import { mul, scale } from './elementwise.js';
import { convTranspose } from './conv.js';

interface PoolAttrs {
  kernel: readonly [number, number];
  strides: readonly [number, number];
  /** [top, left, bottom, right]. */
  pads: readonly [number, number, number, number];
  ceil: boolean;
}
interface AvgPoolAttrs extends PoolAttrs {
  countIncludePad: boolean;
  /** The pooled axis holds channels (LRN's window sum), so it widens no receptive field. */
  overChannels?: boolean;
}

/** Output size with PyTorch's/ORT's ceil rule: the last window must start inside input + left pad. */
function poolOutSize(size: number, k: number, s: number, p0: number, p1: number, ceil: boolean): number {
  const span = size + p0 + p1 - k;
  let out = (ceil ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
  if (ceil && (out - 1) * s >= size + p0) out--;
  return out;
}

function poolShape(x: Value, a: PoolAttrs): [number, number, number, number] {
  expectRank(x, 4, 'input (N, C, H, W)');
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const ho = poolOutSize(h, a.kernel[0], a.strides[0], a.pads[0], a.pads[2], a.ceil);
  const wo = poolOutSize(w, a.kernel[1], a.strides[1], a.pads[1], a.pads[3], a.ceil);
  if (ho < 1 || wo < 1 || h + a.pads[0] + a.pads[2] < a.kernel[0]) {
    throw new Error(`input ${c}×${h}×${w} is too small for a ${a.kernel[0]}×${a.kernel[1]} pooling window`);
  }
  return [n, c, ho, wo];
}

const poolAttrs = (a: PoolAttrs) => ({
  kernel_shape: attr.ints(a.kernel),
  strides: attr.ints(a.strides),
  pads: attr.ints(a.pads),
  ceil_mode: attr.int(a.ceil ? 1 : 0),
});
const poolWindow = (a: PoolAttrs): Window => ({ kernel: a.kernel, strides: a.strides, dilations: [1, 1] });

export const MaxPool: OpDef<PoolAttrs> = {
  type: 'MaxPool',
  optionalOutputs: true,
  infer(inputs, a) {
    const shape = poolShape(req(inputs, 0, 'X'), a);
    return [
      { dtype: req(inputs, 0, 'X').dtype, shape },
      { dtype: 'int64', shape },
    ];
  },
  onnxAttrs: poolAttrs,
  window: (node) => poolWindow(node.attrs),
  vjp(node, [dy]) {
    const x = req(node.inputs, 0, 'X');
    const idx = req(node.outputs, 1, 'Indices');
    if (!dy) return [undefined];
    return [x.graph.add1(MaxPoolGrad, [dy, idx], { ...node.attrs, xShape: x.shape, yShape: dy.shape, dtype: dy.dtype })];
  },
};

interface MaxPoolGradAttrs extends PoolAttrs {
  /** The pool's input shape: the gradient's. */
  xShape: readonly number[];
  /** The pool's output shape: dy's and the Indices'. */
  yShape: readonly number[];
  /** dy's element type (the zeros the scatter writes into take it). */
  dtype: DType;
}

/** dL/dx of a MaxPool from dy and its Indices: a composite node carrying the pool's window and input shape. */
export const MaxPoolGrad: OpDef<MaxPoolGradAttrs> = {
  type: 'MaxPoolGrad',
  domain: COMPOSITE_DOMAIN,
  infer(inputs, a) {
    return [{ dtype: req(inputs, 0, 'dY').dtype, shape: [...a.xShape] }];
  },
  onnxAttrs: (a) => ({
    ...poolAttrs(a),
    x_shape: attr.ints(a.xShape),
    y_shape: attr.ints(a.yShape),
    dtype: attr.int(DTYPES[a.dtype].onnx),
  }),
};

export const AveragePool: OpDef<AvgPoolAttrs> = {
  type: 'AveragePool',
  infer(inputs, a) {
    return [{ dtype: req(inputs, 0, 'X').dtype, shape: poolShape(req(inputs, 0, 'X'), a) }];
  },
  onnxAttrs: (a) => ({ ...poolAttrs(a), count_include_pad: attr.int(a.countIncludePad ? 1 : 0) }),
  window: (node) => (node.attrs.overChannels ? undefined : poolWindow(node.attrs)),
  vjp(node, [dy]) {
    const x = req(node.inputs, 0, 'X');
    if (!dy) return [undefined];
    const a = node.attrs;
    const [, c, h, w] = x.shape as [number, number, number, number];
    const [, , ho, wo] = dy.shape as [number, number, number, number];
    const inv = new Float32Array(ho * wo);
    for (let i = 0; i < ho; i++) {
      for (let j = 0; j < wo; j++) {
        inv[i * wo + j] = 1 / (windowCount(i, h, 0, a) * windowCount(j, w, 1, a));
      }
    }
    const g = x.graph;
    const weights = g.constant(dy.dtype === 'float64' ? Float64Array.from(inv) : inv, [1, 1, ho, wo], dy.dtype);
    const ones = g.floats(new Array<number>(c * a.kernel[0] * a.kernel[1]).fill(1), [c, 1, a.kernel[0], a.kernel[1]], dy.dtype);
    // Natural ConvTranspose extent, then pad (output_padding < stride) or crop to the input size.
    const natural = (o: number, idx: 0 | 1) => (o - 1) * a.strides[idx] + a.kernel[idx] - a.pads[idx] - a.pads[idx + 2]!;
    const extra = [h - natural(ho, 0), w - natural(wo, 1)] as const;
    const outputPadding: [number, number] = [Math.max(0, extra[0]), Math.max(0, extra[1])];
    let dx = convTranspose(mul(dy, weights), ones, {
      strides: a.strides,
      pads: a.pads,
      dilations: [1, 1],
      group: c,
      outputPadding,
    });
    if (extra[0] < 0 || extra[1] < 0) dx = slice(dx, [0, 0], [h, w], [2, 3]);
    return [dx];
  },
};

/** Number of elements a window covers along one axis, as ORT's AveragePool counts them. */
function windowCount(o: number, size: number, idx: 0 | 1, a: AvgPoolAttrs): number {
  const start = o * a.strides[idx] - a.pads[idx];
  const end = start + a.kernel[idx];
  if (a.countIncludePad) return Math.min(end, size + a.pads[idx + 2]!) - start;
  return Math.min(end, size) - Math.max(start, 0);
}

export const GlobalAveragePool: OpDef<Record<never, never>> = {
  type: 'GlobalAveragePool',
  global: true,
  infer(inputs) {
    const x = req(inputs, 0, 'X');
    expectRank(x, 4, 'input (N, C, H, W)');
    return [{ dtype: x.dtype, shape: [x.shape[0] ?? 0, x.shape[1] ?? 0, 1, 1] }];
  },
  onnxAttrs: () => ({}),
  vjp(node, [dy]) {
    const x = req(node.inputs, 0, 'X');
    if (!dy) return [undefined];
    return [expand(scale(dy, 1 / sizeOf(x.shape.slice(2))), x.shape)];
  },
};

interface ScatterAttrs {
  axis: number;
  reduction: 'none' | 'add';
}
export const ScatterElements: OpDef<ScatterAttrs> = {
  type: 'ScatterElements',
  infer(inputs) {
    const d = req(inputs, 0, 'data');
    return [{ dtype: d.dtype, shape: d.shape }];
  },
  onnxAttrs: (a) => ({ axis: attr.int(a.axis), reduction: attr.string(a.reduction) }),
};

// ---- emitters ----
export function maxPool(x: Value, a: PoolAttrs): Value {
  return req(x.graph.add(MaxPool, [x], a), 0, 'Y');
}
export function avgPool(x: Value, a: AvgPoolAttrs): Value {
  return x.graph.add1(AveragePool, [x], a);
}
export function globalAvgPool(x: Value): Value {
  return x.graph.add1(GlobalAveragePool, [x], {});
}
