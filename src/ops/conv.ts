/**
 * Conv and ConvTranspose (2-D, NCHW). Conv's gradients:
 * - dx by one ConvInputGrad node and dW by one ConvWeightGrad node: composites that carry the Conv's
 *   attributes and shapes, written per provider by src/runtime/lower/ (conv-input-grad.ts,
 *   conv-weight-grad.ts, which hold the forms and their measurements);
 * - db by ReduceSum over N, H, W.
 */
import { formatShape } from '../graph/dtype.js';
import { attr, COMPOSITE_DOMAIN, type OnnxAttrs, type OpDef, type Value, type Window } from '../graph/graph.js';
import { expectRank, req, sameDtype } from './util.js';
import { reduceSum } from './shape.js';

export interface ConvAttrs {
  strides: readonly [number, number];
  /** [top, left, bottom, right] as ONNX orders them. */
  pads: readonly [number, number, number, number];
  dilations: readonly [number, number];
  group: number;
}

function convOnnxAttrs(a: ConvAttrs): OnnxAttrs {
  return { strides: attr.ints(a.strides), pads: attr.ints(a.pads), dilations: attr.ints(a.dilations), group: attr.int(a.group) };
}

export function convOutSize(size: number, k: number, s: number, d: number, p0: number, p1: number): number {
  return Math.floor((size + p0 + p1 - d * (k - 1) - 1) / s) + 1;
}

export const Conv: OpDef<ConvAttrs> = {
  type: 'Conv',
  infer(inputs, a) {
    const x = req(inputs, 0, 'X');
    const w = req(inputs, 1, 'W');
    expectRank(x, 4, 'input (N, C, H, W)');
    expectRank(w, 4, 'weight (M, C/group, kH, kW)');
    sameDtype(x, w, 'Conv');
    const [n, c, h, wd] = x.shape as [number, number, number, number];
    const [m, cg, kh, kw] = w.shape as [number, number, number, number];
    if (c % a.group !== 0 || m % a.group !== 0 || cg * a.group !== c) {
      throw new Error(`weight ${formatShape(w.shape)} with group ${a.group} does not fit ${c} input channels`);
    }
    const b = inputs[2];
    if (b && (b.rank !== 1 || b.shape[0] !== m)) throw new Error(`bias ${formatShape(b.shape)} does not fit ${m} output channels`);
    const ho = convOutSize(h, kh, a.strides[0], a.dilations[0], a.pads[0], a.pads[2]);
    const wo = convOutSize(wd, kw, a.strides[1], a.dilations[1], a.pads[1], a.pads[3]);
    if (ho < 1 || wo < 1) {
      throw new Error(`input ${c}×${h}×${wd} is too small for a ${kh}×${kw} kernel with stride ${a.strides[0]} and padding ${a.pads[0]}`);
    }
    return [{ dtype: x.dtype, shape: [n, m, ho, wo] }];
  },
  onnxAttrs: convOnnxAttrs,
  macs(node) {
    const y = req(node.outputs, 0, 'Y');
    const w = req(node.inputs, 1, 'W');
    const [, cg, kh, kw] = w.shape as [number, number, number, number];
    return y.size * cg * kh * kw;
  },
  window: (node): Window => {
    const w = req(node.inputs, 1, 'W');
    return { kernel: [w.shape[2] ?? 1, w.shape[3] ?? 1], strides: node.attrs.strides, dilations: node.attrs.dilations };
  },
  vjp(node, [dy], ctx) {
    const x = req(node.inputs, 0, 'X');
    const w = req(node.inputs, 1, 'W');
    const b = node.inputs[2];
    if (!dy) return [undefined, undefined, undefined];
    const a = node.attrs;
    const dx = ctx.needsGrad(x) ? convInputGrad(dy, w, x.shape, a) : undefined;
    const dw = ctx.needsGrad(w) ? convWeightGrad(x, dy, w.shape, a) : undefined;
    const db = b && ctx.needsGrad(b) ? reduceSum(dy, [0, 2, 3]) : undefined;
    return [dx, dw, db];
  },
};

interface ConvTransposeAttrs extends ConvAttrs {
  outputPadding: readonly [number, number];
}

export const ConvTranspose: OpDef<ConvTransposeAttrs> = {
  type: 'ConvTranspose',
  infer(inputs, a) {
    const x = req(inputs, 0, 'X');
    const w = req(inputs, 1, 'W');
    expectRank(x, 4, 'input (N, C, H, W)');
    expectRank(w, 4, 'weight (C, M/group, kH, kW)');
    const [n, c, h, wd] = x.shape as [number, number, number, number];
    const [cw, mg, kh, kw] = w.shape as [number, number, number, number];
    if (cw !== c) throw new Error(`weight ${formatShape(w.shape)} does not fit ${c} input channels`);
    const size = (i: number, k: number, idx: 0 | 1) =>
      a.strides[idx] * (i - 1) + a.outputPadding[idx] + (k - 1) * a.dilations[idx] + 1 - a.pads[idx] - a.pads[idx + 2]!;
    return [{ dtype: x.dtype, shape: [n, mg * a.group, size(h, kh, 0), size(wd, kw, 1)] }];
  },
  onnxAttrs: (a) => ({ ...convOnnxAttrs(a), output_padding: attr.ints(a.outputPadding) }),
  macs(node) {
    const x = req(node.inputs, 0, 'X');
    const w = req(node.inputs, 1, 'W');
    const [, mg, kh, kw] = w.shape as [number, number, number, number];
    return x.size * mg * kh * kw;
  },
};

interface ConvGradAttrs extends ConvAttrs {
  /** The Conv's input, weight and output shapes. */
  xShape: readonly number[];
  wShape: readonly [number, number, number, number];
  dyShape: readonly number[];
}

const convGradOnnxAttrs = (a: ConvGradAttrs): OnnxAttrs => ({
  ...convOnnxAttrs(a),
  kernel_shape: attr.ints(a.wShape.slice(2)),
  x_shape: attr.ints(a.xShape),
  w_shape: attr.ints(a.wShape),
  dy_shape: attr.ints(a.dyShape),
});

function convGradAttrs(a: ConvAttrs, xShape: readonly number[], wShape: readonly number[], dyShape: readonly number[]): ConvGradAttrs {
  const [m, cg, kh, kw] = wShape as [number, number, number, number];
  return { strides: a.strides, pads: a.pads, dilations: a.dilations, group: a.group, xShape, wShape: [m, cg, kh, kw], dyShape };
}

/** A composite gradient of a Conv: inputs `names` (rank 4, described by `what`), the output shaped as `out` says. */
function convGradDef(
  type: string,
  names: readonly [string, string],
  what: readonly [string, string],
  out: (a: ConvGradAttrs) => readonly number[],
): OpDef<ConvGradAttrs> {
  return {
    type,
    domain: COMPOSITE_DOMAIN,
    infer(inputs, a) {
      const [p, q] = [req(inputs, 0, names[0]), req(inputs, 1, names[1])];
      expectRank(p, 4, what[0]);
      expectRank(q, 4, what[1]);
      sameDtype(p, q, type);
      return [{ dtype: p.dtype, shape: [...out(a)] }];
    },
    onnxAttrs: convGradOnnxAttrs,
  };
}

/**
 * dL/dx of a Conv, from dy and the weights: one composite node, which
 * src/runtime/lower/conv-input-grad.ts writes as a Conv of dy with the weights transposed per group
 * and mirrored (stride 1), or a ConvTranspose; on the CPU, blocked where the layer is.
 */
const ConvInputGrad = convGradDef(
  'ConvInputGrad',
  ['dY', 'W'],
  ['output gradient (N, M, H, W)', 'weight (M, C/group, kH, kW)'],
  (a) => a.xShape,
);

/**
 * dL/dW of a Conv, from its input x and output gradient dy: one composite node, which
 * src/runtime/lower/conv-weight-grad.ts writes as the form the session's provider runs fastest
 * (one Conv over the batch, one product per kernel offset, or im2col and a batched MatMul).
 */
const ConvWeightGrad = convGradDef('ConvWeightGrad', ['X', 'dY'], ['input (N, C, H, W)', 'output gradient (N, M, H, W)'], (a) => a.wShape);

/** dL/dx for a Conv (a ConvInputGrad node). */
export function convInputGrad(dy: Value, w: Value, xShape: readonly number[], a: ConvAttrs): Value {
  return dy.graph.add1(ConvInputGrad, [dy, w], convGradAttrs(a, xShape, w.shape, dy.shape));
}

/** dL/dW for a Conv (a ConvWeightGrad node). */
export function convWeightGrad(x: Value, dy: Value, wShape: readonly number[], a: ConvAttrs): Value {
  return x.graph.add1(ConvWeightGrad, [x, dy], convGradAttrs(a, x.shape, wShape, dy.shape));
}

// ---- emitters ----
export function conv(x: Value, w: Value, b: Value | undefined, a: ConvAttrs): Value {
  return x.graph.add1(Conv, [x, w, b], a);
}
export function convTranspose(x: Value, w: Value, a: ConvTransposeAttrs): Value {
  return x.graph.add1(ConvTranspose, [x, w], a);
}
