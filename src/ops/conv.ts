/**
 * Conv and ConvTranspose (2-D, NCHW). Conv's gradients:
 * - dx at stride 1 (no dilation) by a plain Conv of dy with the weights transposed per group and
 *   flipped, pads k−1−p (a 1×1 conv's is the matrix product Wᵀ·dy): 0.5–0.8× ConvTranspose's
 *   time alone on 2 cores for NIN's cccp layers, VGG's 3×3 layers and GoogLeNet's reductions
 *   (MatMul over (N, C, H·W) reshapes measured no faster than either); a whole NIN step ~5 % less CPU;
 * - dx otherwise by ConvTranspose(dy, W) with the same strides/pads/dilations/group and
 *   output_padding = (H + pads − dil·(k−1) − 1) mod stride (never `output_shape`: ORT then ignores pads);
 * - dW for ungrouped kernels of 7×7 and more by one Conv over the batch (x and dy transposed to
 *   channel-major, dy as the kernel dilated by the stride), and so for any ungrouped kernel in a
 *   graph built for the CPU's blocked-layout kernels (Graph.convBlock) where they take that Conv;
 *   for 5×5 by one MatMul per kernel
 *   offset (dy against that offset's Slice of the input); otherwise by im2col (k·k strided Slices
 *   of the padded input, concatenated; the input itself for 1×1/stride-1 convs) and one batched
 *   MatMul per group, summed over the batch. The Slices replaced a depthwise Conv with one-hot
 *   kernels, which cost more than the forward layer: a Fashion-MNIST VGG-A step went from 579 to
 *   ~300 ms on 2 cores;
 * - db by ReduceSum over N, H, W.
 */
import { formatShape } from '../graph/dtype.js';
import { attr, BLOCKED_MAX_KERNEL, type OnnxAttrs, type OpDef, type Value, type Window } from '../graph/graph.js';
import { expectRank, req, sameDtype } from './util.js';
import { concat, pad, reduceSum, reshape, slice, transpose } from './shape.js';
import { matmul } from './linalg.js';

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

/** dL/dW for a Conv by im2col + batched MatMul (per group), summed over the batch. */
export function convWeightGrad(x: Value, dy: Value, wShape: readonly number[], a: ConvAttrs): Value {
  const [n] = x.shape as [number];
  const [m, cg, kh, kw] = wShape as [number, number, number, number];
  const [, , ho, wo] = dy.shape as [number, number, number, number];
  const l = ho * wo;
  const kk = kh * kw;
  const block = x.graph.convBlock;
  const blocked = block > 1 && n % block === 0 && m % block === 0 && ho <= BLOCKED_MAX_KERNEL && wo <= BLOCKED_MAX_KERNEL;
  if (a.group === 1 && (kk >= 49 || blocked) && a.dilations[0] === 1 && a.dilations[1] === 1) {
    // A large kernel's im2col is kk copies of the input. As one Conv over the batch instead (x and
    // dy channel-major, dy as the kernel dilated by the stride; the output is kh×kw plus the
    // stride's remainder, sliced off) it was 0.6–0.95× the time for 7×7 and 11×11 layers on 2 cores.
    // Where the CPU's blocked-layout kernels take that Conv (the batch a multiple of their block, a
    // feature map of at most BLOCKED_MAX_KERNEL a side) it is also the faster form for small
    // kernels: a Fashion-MNIST VGG-A step 138–141 → 121–127 ms on 2 AVX-512 cores (8×8 maps and
    // less), where without those kernels it was 5 % slower than im2col.
    let wT = conv(transpose(x, [1, 0, 2, 3]), transpose(dy, [1, 0, 2, 3]), undefined, { strides: [1, 1], pads: a.pads, dilations: a.strides, group: 1 });
    if (wT.shape[2] !== kh || wT.shape[3] !== kw) wT = slice(wT, [0, 0], [kh, kw], [2, 3]);
    return transpose(wT, [1, 0, 2, 3]);
  }
  const grp = a.group;
  const mg = m / grp;
  const dyF = () => reshape(transpose(reshape(dy, [n, grp, mg, l]), [1, 2, 0, 3]), [grp, mg, n * l]);
  if (kk >= 25) {
    // 5×5: one product per kernel offset, dy (grp, mg, n·l) by that offset's strided Slice of the
    // padded, channel-major input, no patches tensor. NIN's conv2 (96 → 256 at 27×27, batch 16):
    // ~1.3 s → ~1.2 s per step, where one Conv over the batch spent twice its forward layer.
    const d = dyF();
    const pieces = offsetSlices(transpose(x, [1, 0, 2, 3]), [kh, kw], a).map((at) =>
      reshape(matmul(d, transpose(reshape(at, [grp, cg, n * l]), [0, 2, 1])), [grp, mg, cg, 1]),
    );
    return reshape(concat(pieces, 3), [m, cg, kh, kw]);
  }
  if (l < mg) {
    // Small maps, many filters: fold the batch into one contraction of length n·l, which is a far
    // better-shaped GEMM than n products of depth l, and needs no (n, cg·kk, mg) partial sums. The
    // patches are cut channel-major, so they need no transpose of their own.
    const cols = reshape(im2col(transpose(x, [1, 0, 2, 3]), [kh, kw], a, 'fold'), [grp, cg * kk, n * l]);
    return reshape(matmul(dyF(), transpose(cols, [0, 2, 1])), [m, cg, kh, kw]);
  }
  const colsG = reshape(im2col(x, [kh, kw], a, 'rows'), [n, grp, cg * kk, l]);
  const dyT = transpose(reshape(dy, [n, grp, mg, l]), [0, 1, 3, 2]); // [n, grp, l, mg]
  const prod = reduceSum(matmul(colsG, dyT), [0]); // [grp, cg·kk, mg]
  return reshape(transpose(prod, [0, 2, 1]), [m, cg, kh, kw]);
}

/**
 * The patches a Conv's kernel sees, for v of shape (A, B, H, W): 'rows' (v is x): (A, B·kk, ho·wo),
 * row b·kk + j holding kernel offset j of v[:, b]; 'fold' (v is x channel-major, (C, N, H, W)):
 * (A, kk, B·ho·wo), offset j of all of v[a] in one row. A 1×1 stride-1 unpadded conv's patches are
 * the input itself; otherwise the offsetSlices, concatenated.
 */
function im2col(v: Value, [kh, kw]: readonly [number, number], a: ConvAttrs, layout: 'rows' | 'fold'): Value {
  const [p, q] = v.shape as [number, number];
  const pieces = offsetSlices(v, [kh, kw], a);
  const l = (pieces[0]!.shape[2] ?? 1) * (pieces[0]!.shape[3] ?? 1);
  const piece = layout === 'rows' ? [p, q, 1, l] : [p, 1, q * l];
  const cols = pieces.length === 1 ? reshape(pieces[0]!, piece) : concat(pieces.map((s) => reshape(s, piece)), layout === 'rows' ? 2 : 1);
  return layout === 'rows' ? reshape(cols, [p, q * kh * kw, l]) : cols;
}

/**
 * For v of shape (A, B, H, W), what kernel offset (i, j) of a Conv sees at each output position:
 * kh·kw strided Slices of v padded once, (A, B, ho, wo) each, in row-major offset order (an
 * unpadded 1×1 stride-1 conv's only one is v itself).
 */
function offsetSlices(v: Value, [kh, kw]: readonly [number, number], a: ConvAttrs): Value[] {
  const [, , h, w] = v.shape as [number, number, number, number];
  const [pt, pl, pb, pr] = a.pads;
  const [sh, sw] = a.strides;
  const [dh, dw] = a.dilations;
  const ho = convOutSize(h, kh, sh, dh, pt, pb);
  const wo = convOutSize(w, kw, sw, dw, pl, pr);
  if (kh * kw === 1 && sh === 1 && sw === 1 && a.pads.every((x) => x === 0)) return [v];
  const padded = a.pads.some((x) => x > 0) ? pad(v, [0, 0, pt, pl, 0, 0, pb, pr]) : v;
  const out: Value[] = [];
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      out.push(slice(padded, [i * dh, j * dw], [i * dh + sh * (ho - 1) + 1, j * dw + sw * (wo - 1) + 1], [2, 3], [sh, sw]));
    }
  }
  return out;
}

// ---- emitters ----
export function conv(x: Value, w: Value, b: Value | undefined, a: ConvAttrs): Value {
  return x.graph.add1(Conv, [x, w, b], a);
}
export function convTranspose(x: Value, w: Value, a: ConvTransposeAttrs): Value {
  return x.graph.add1(ConvTranspose, [x, w], a);
}
