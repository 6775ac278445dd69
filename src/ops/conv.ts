/**
 * Conv and ConvTranspose (2-D, NCHW). Conv's gradients:
 * - dx at stride 1 (no dilation) by a plain Conv of dy with the weights transposed per group and
 *   flipped, pads k−1−p (a 1×1 conv's is the matrix product Wᵀ·dy): 0.5–0.8× ConvTranspose's
 *   time alone on 2 cores for NIN's cccp layers, VGG's 3×3 layers and GoogLeNet's reductions
 *   (MatMul over (N, C, H·W) reshapes measured no faster than either); a whole NIN step ~5 % less CPU;
 * - dx otherwise by ConvTranspose(dy, W) with the same strides/pads/dilations/group and
 *   output_padding = (H + pads − dil·(k−1) − 1) mod stride (never `output_shape`: ORT then ignores pads);
 * - dW by one ConvWeightGrad node (composite; its forms are src/runtime/lower/conv-weight-grad.ts's);
 * - db by ReduceSum over N, H, W.
 */
import { formatShape } from '../graph/dtype.js';
import { attr, COMPOSITE_DOMAIN, type OnnxAttrs, type OpDef, type Value, type Window } from '../graph/graph.js';
import { expectRank, req, sameDtype } from './util.js';
import { reduceSum, reshape, slice, transpose } from './shape.js';

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
      throw new Error(
        `input ${c}×${h}×${wd} is too small for a ${kh}×${kw} kernel with stride ${a.strides[0]} and padding ${a.pads[0]}`,
      );
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

export interface ConvTransposeAttrs extends ConvAttrs {
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

/** dL/dx for a Conv: at stride 1 a Conv of dy with the flipped, transposed weights; else a ConvTranspose of dy. */
export function convInputGrad(dy: Value, w: Value, xShape: readonly number[], a: ConvAttrs): Value {
  const [kh, kw] = [w.shape[2] ?? 1, w.shape[3] ?? 1];
  const [pt, pl, pb, pr] = a.pads;
  const unitStride = a.strides[0] === 1 && a.strides[1] === 1 && a.dilations[0] === 1 && a.dilations[1] === 1;
  if (unitStride && pt < kh && pb < kh && pl < kw && pr < kw) {
    const [m, cg] = w.shape as [number, number];
    const grp = a.group;
    const mg = m / grp;
    // The window is mirrored, then per group W (mg, cg, kh, kw) becomes (cg, mg, kh, kw). Mirrored
    // first, the channel Transpose is what the Conv reads, which the blocked-layout rewrite
    // (src/runtime/nchwc.ts) folds into its own reorder of the weights.
    const flip = [kh, kw].flatMap((k, i) => (k > 1 ? [i + 2] : []));
    const wf = flip.length ? slice(w, flip.map(() => -1), flip.map((ax) => -(w.shape[ax] ?? 1) - 1), flip, flip.map(() => -1)) : w;
    const wt = grp === 1 ? transpose(wf, [1, 0, 2, 3]) : reshape(transpose(reshape(wf, [grp, mg, cg, kh, kw]), [0, 2, 1, 3, 4]), [grp * cg, mg, kh, kw]);
    return conv(dy, wt, undefined, { strides: [1, 1], dilations: [1, 1], group: grp, pads: [kh - 1 - pt, kw - 1 - pl, kh - 1 - pb, kw - 1 - pr] });
  }
  const rem = (i: 0 | 1, k: number) =>
    ((xShape[2 + i] ?? 0) + a.pads[i] + a.pads[i + 2]! - a.dilations[i] * (k - 1) - 1) % a.strides[i];
  return convTranspose(dy, w, { ...a, outputPadding: [rem(0, kh), rem(1, kw)] });
}

export interface ConvWeightGradAttrs extends ConvAttrs {
  /** The Conv's weight shape (M, C/group, kH, kW): the gradient's. */
  wShape: readonly [number, number, number, number];
  xShape: readonly number[];
  dyShape: readonly number[];
}

/**
 * dL/dW of a Conv, from its input x and output gradient dy: one composite node, which
 * src/runtime/lower/conv-weight-grad.ts writes as the form the session's provider runs fastest
 * (one Conv over the batch, one product per kernel offset, or im2col and a batched MatMul). It
 * carries the Conv's attributes and the shapes of x, dy and the weights.
 */
export const ConvWeightGrad: OpDef<ConvWeightGradAttrs> = {
  type: 'ConvWeightGrad',
  domain: COMPOSITE_DOMAIN,
  infer(inputs, a) {
    const x = req(inputs, 0, 'X');
    const dy = req(inputs, 1, 'dY');
    expectRank(x, 4, 'input (N, C, H, W)');
    expectRank(dy, 4, 'output gradient (N, M, H, W)');
    sameDtype(x, dy, 'ConvWeightGrad');
    return [{ dtype: x.dtype, shape: [...a.wShape] }];
  },
  onnxAttrs: (a) => ({
    ...convOnnxAttrs(a),
    kernel_shape: attr.ints(a.wShape.slice(2)),
    w_shape: attr.ints(a.wShape),
    x_shape: attr.ints(a.xShape),
    dy_shape: attr.ints(a.dyShape),
  }),
};

/** dL/dW for a Conv (a ConvWeightGrad node). */
export function convWeightGrad(x: Value, dy: Value, wShape: readonly number[], a: ConvAttrs): Value {
  const [m, cg, kh, kw] = wShape as [number, number, number, number];
  return x.graph.add1(ConvWeightGrad, [x, dy], {
    strides: a.strides,
    pads: a.pads,
    dilations: a.dilations,
    group: a.group,
    wShape: [m, cg, kh, kw],
    xShape: x.shape,
    dyShape: dy.shape,
  });
}

// ---- emitters ----
export function conv(x: Value, w: Value, b: Value | undefined, a: ConvAttrs): Value {
  return x.graph.add1(Conv, [x, w, b], a);
}
export function convTranspose(x: Value, w: Value, a: ConvTransposeAttrs): Value {
  return x.graph.add1(ConvTranspose, [x, w], a);
}
