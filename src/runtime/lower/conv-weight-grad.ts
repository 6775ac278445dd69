/**
 * ConvWeightGrad (src/ops/conv.ts) as standard ops, in the form that runs fastest where the session
 * runs; `block` (the CPU's NCHWc channel block, 0 elsewhere) decides between them:
 * - ungrouped kernels of 7×7 and more: one Conv over the batch (x and dy transposed to channel-major,
 *   dy as the kernel dilated by the stride; the output is kh×kw plus the stride's remainder, sliced
 *   off): 0.6–0.95× im2col's time for 7×7 and 11×11 layers on 2 cores. Where the CPU's blocked-layout
 *   kernels take that Conv (the batch and filters multiples of the block, a feature map of at most
 *   BLOCKED_MAX_KERNEL a side) it is the faster form for small kernels too: a Fashion-MNIST VGG-A
 *   step 138–141 → 121–127 ms on 2 AVX-512 cores (8×8 maps and less), where without those kernels
 *   it was 5 % slower than im2col;
 * - 5×5: one MatMul per kernel offset (dy against that offset's strided Slice of the padded,
 *   channel-major input), no patches tensor. NIN's conv2 (96 → 256 at 27×27, batch 16): ~1.3 s →
 *   ~1.2 s per step, where one Conv over the batch spent twice its forward layer;
 * - otherwise im2col (k·k strided Slices of the padded input, concatenated; the input itself for
 *   1×1/stride-1 convs) and one batched MatMul per group, summed over the batch. The Slices replaced
 *   a depthwise Conv with one-hot kernels, which cost more than the forward layer: a Fashion-MNIST
 *   VGG-A step went from 579 to ~300 ms on 2 cores.
 */
import { BLOCKED_MAX_KERNEL } from '../../graph/graph.js';
import { attribute, type NodeProto } from '../../onnx/proto.js';
import { convOutSize, declaredType, Emitter, type Val } from './emit.js';
import { emitConv } from './nchwc-conv.js';
import { COMPOSITE_DOMAIN, isOp, type Rule } from './rule.js';

export interface Geometry {
  strides: readonly [number, number];
  pads: readonly [number, number, number, number];
  dilations: readonly [number, number];
  group: number;
}

/** A ConvWeightGrad's or ConvInputGrad's Conv attributes. */
function geometry(n: NodeProto): Geometry {
  const ints = (name: string, fallback: number[]) => attribute(n, name)?.ints ?? fallback;
  const [s0 = 1, s1 = 1] = ints('strides', [1, 1]);
  const [p0 = 0, p1 = 0, p2 = 0, p3 = 0] = ints('pads', [0, 0, 0, 0]);
  const [d0 = 1, d1 = 1] = ints('dilations', [1, 1]);
  return { strides: [s0, s1], pads: [p0, p1, p2, p3], dilations: [d0, d1], group: attribute(n, 'group')?.i ?? 1 };
}

/** Whether dW of these shapes takes the one Conv over the batch, with the CPU's channel block `block` (0: none). */
function overTheBatch(
  xShape: readonly number[],
  dyShape: readonly number[],
  wShape: readonly number[],
  a: Geometry,
  block: number,
): boolean {
  const [n] = xShape as [number];
  const [m, , kh, kw] = wShape as [number, number, number, number];
  const [, , ho, wo] = dyShape as [number, number, number, number];
  const blocked = block > 1 && n % block === 0 && m % block === 0 && ho <= BLOCKED_MAX_KERNEL && wo <= BLOCKED_MAX_KERNEL;
  return a.group === 1 && (kh * kw >= 49 || blocked) && a.dilations[0] === 1 && a.dilations[1] === 1;
}

/** The nodes computing dW from x and dy. */
function weightGradNodes(e: Emitter, x: Val, dy: Val, wShape: readonly number[], a: Geometry, block: number): Val {
  const [n] = x.shape as [number];
  const [m, cg, kh, kw] = wShape as [number, number, number, number];
  const [, , ho, wo] = dy.shape as [number, number, number, number];
  const l = ho * wo;
  const kk = kh * kw;
  if (overTheBatch(x.shape, dy.shape, wShape, a, block)) {
    // The CPU's blocked kernels reorder dy itself as the kernel; elsewhere it is transposed.
    const at = { strides: [1, 1], pads: a.pads, dilations: a.strides, group: 1 };
    let wT = emitConv(e, e.transpose(x, [1, 0, 2, 3]), { v: dy, perm: [1, 0, 2, 3] }, at, block);
    if (wT.shape[2] !== kh || wT.shape[3] !== kw) wT = e.slice(wT, [0, 0], [kh, kw], [2, 3]);
    return e.transpose(wT, [1, 0, 2, 3]);
  }
  const grp = a.group;
  const mg = m / grp;
  const dyF = () => e.reshape(e.transpose(e.reshape(dy, [n, grp, mg, l]), [1, 2, 0, 3]), [grp, mg, n * l]);
  if (kk >= 25) {
    const d = dyF();
    const pieces = offsetSlices(e, e.transpose(x, [1, 0, 2, 3]), [kh, kw], a).map((at) =>
      e.reshape(e.matmul(d, e.transpose(e.reshape(at, [grp, cg, n * l]), [0, 2, 1])), [grp, mg, cg, 1]),
    );
    return e.reshape(e.concat(pieces, 3), [m, cg, kh, kw]);
  }
  if (l < mg) {
    // Small maps, many filters: fold the batch into one contraction of length n·l, which is a far
    // better-shaped GEMM than n products of depth l, and needs no (n, cg·kk, mg) partial sums. The
    // patches are cut channel-major, so they need no transpose of their own.
    const cols = e.reshape(im2col(e, e.transpose(x, [1, 0, 2, 3]), [kh, kw], a, 'fold'), [grp, cg * kk, n * l]);
    const d = dyF();
    return e.reshape(e.matmul(d, e.transpose(cols, [0, 2, 1])), [m, cg, kh, kw]);
  }
  const colsG = e.reshape(im2col(e, x, [kh, kw], a, 'rows'), [n, grp, cg * kk, l]);
  const dyT = e.transpose(e.reshape(dy, [n, grp, mg, l]), [0, 1, 3, 2]); // [n, grp, l, mg]
  const prod = e.reduceSum(e.matmul(colsG, dyT), [0]); // [grp, cg·kk, mg]
  return e.reshape(e.transpose(prod, [0, 2, 1]), [m, cg, kh, kw]);
}

/**
 * The patches a Conv's kernel sees, for v of shape (A, B, H, W): 'rows' (v is x): (A, B·kk, ho·wo),
 * row b·kk + j holding kernel offset j of v[:, b]; 'fold' (v is x channel-major, (C, N, H, W)):
 * (A, kk, B·ho·wo), offset j of all of v[a] in one row.
 */
function im2col(e: Emitter, v: Val, [kh, kw]: readonly [number, number], a: Geometry, layout: 'rows' | 'fold'): Val {
  const [p, q] = v.shape as [number, number];
  const pieces = offsetSlices(e, v, [kh, kw], a);
  const l = (pieces[0]!.shape[2] ?? 1) * (pieces[0]!.shape[3] ?? 1);
  const piece = layout === 'rows' ? [p, q, 1, l] : [p, 1, q * l];
  const cols =
    pieces.length === 1
      ? e.reshape(pieces[0]!, piece)
      : e.concat(
          pieces.map((s) => e.reshape(s, piece)),
          layout === 'rows' ? 2 : 1,
        );
  return layout === 'rows' ? e.reshape(cols, [p, q * kh * kw, l]) : cols;
}

/**
 * For v of shape (A, B, H, W), what kernel offset (i, j) of a Conv sees at each output position:
 * kh·kw strided Slices of v padded once, (A, B, ho, wo) each, in row-major offset order (an
 * unpadded 1×1 stride-1 conv's only one is v itself).
 */
function offsetSlices(e: Emitter, v: Val, [kh, kw]: readonly [number, number], a: Geometry): Val[] {
  const [, , h, w] = v.shape as [number, number, number, number];
  const [pt, pl, pb, pr] = a.pads;
  const [sh, sw] = a.strides;
  const [dh, dw] = a.dilations;
  const ho = convOutSize(h, kh, sh, dh, pt, pb);
  const wo = convOutSize(w, kw, sw, dw, pl, pr);
  if (kh * kw === 1 && sh === 1 && sw === 1 && a.pads.every((x) => x === 0)) return [v];
  const padded = a.pads.some((x) => x > 0) ? e.pad(v, [0, 0, pt, pl, 0, 0, pb, pr]) : v;
  const out: Val[] = [];
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      out.push(e.slice(padded, [i * dh, j * dw], [i * dh + sh * (ho - 1) + 1, j * dw + sw * (wo - 1) + 1], [2, 3], [sh, sw]));
    }
  }
  return out;
}

/**
 * The rule that writes the Conv gradient composite `op` by `build`, from its two inputs (with their
 * shapes) and the Conv's: the values named under `<output>/<suffix>`.
 */
export function convGradRule(
  name: string,
  op: 'ConvWeightGrad' | 'ConvInputGrad',
  suffix: string,
  build: (e: Emitter, p: Val, q: Val, xShape: readonly number[], wShape: readonly number[], a: Geometry, block: number) => Val,
): Rule {
  return {
    name,
    match: (n) => isOp(n, op, COMPOSITE_DOMAIN),
    applies: () => true,
    replace(n, { scope, params }) {
      const [p, q] = n.input as [string, string];
      const [xs, ws, ds] = ['x_shape', 'w_shape', 'dy_shape'].map((k) => attribute(n, k)?.ints);
      if (!xs || !ws || !ds) throw new Error(`${n.name ?? op}: no x_shape, w_shape or dy_shape attribute`);
      // dy is the second input of ConvWeightGrad (x, dy), the first of ConvInputGrad (dy, w).
      const [ps, qs] = op === 'ConvWeightGrad' ? [xs, ds] : [ds, ws];
      const e = new Emitter(`${n.output[0]}/${suffix}`, declaredType(scope, op === 'ConvWeightGrad' ? q : p));
      return e.finish(build(e, { name: p, shape: ps }, { name: q, shape: qs }, xs, ws, geometry(n), params.block), n.output[0]!);
    },
  };
}

export const convWeightGrad = convGradRule(
  'ConvWeightGrad as Conv over the batch, per-offset MatMul or im2col',
  'ConvWeightGrad',
  'dw',
  (e, x, dy, _xs, ws, a, block) => weightGradNodes(e, x, dy, ws, a, block),
);
