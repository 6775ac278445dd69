/**
 * ConvInputGrad (src/ops/conv.ts) as standard ops:
 * - at stride 1 (no dilation), a plain Conv of dy with the weights mirrored and transposed per group,
 *   pads k−1−p (a 1×1 conv's is the matrix product Wᵀ·dy): 0.5–0.8× ConvTranspose's time alone on
 *   2 cores for NIN's cccp layers, VGG's 3×3 layers and GoogLeNet's reductions (MatMul over
 *   (N, C, H·W) reshapes measured no faster than either); a whole NIN step ~5 % less CPU. On the
 *   CPU with a block (`block`), that Conv runs blocked, the layer's weights reordered once and
 *   mirrored in their blocks (nchwc-conv.ts);
 * - otherwise ConvTranspose(dy, W) with the same strides/pads/dilations/group and
 *   output_padding = (H + pads − dil·(k−1) − 1) mod stride (never `output_shape`: ORT then ignores pads).
 */
import type { Emitter, Val } from './emit.js';
import { convGradRule, type Geometry } from './conv-weight-grad.js';
import { emitConv } from './nchwc-conv.js';

/** The nodes computing dx from dy and the weights w. */
function inputGradNodes(e: Emitter, dy: Val, w: Val, xShape: readonly number[], a: Geometry, block: number): Val {
  const [m, cg, kh, kw] = w.shape as [number, number, number, number];
  const [pt, pl, pb, pr] = a.pads;
  const unitStride = a.strides[0] === 1 && a.strides[1] === 1 && a.dilations[0] === 1 && a.dilations[1] === 1;
  if (unitStride && pt < kh && pb < kh && pl < kw && pr < kw) {
    const grp = a.group;
    const mg = m / grp;
    const at = { strides: [1, 1], dilations: [1, 1], group: grp, pads: [kh - 1 - pt, kw - 1 - pl, kh - 1 - pb, kw - 1 - pr] };
    const flip = [kh, kw].flatMap((k, i) => (k > 1 ? [i + 2] : []));
    // Per group W (mg, cg, kh, kw) becomes (cg, mg, kh, kw), mirrored.
    if (grp === 1) return emitConv(e, dy, { v: w, perm: [1, 0, 2, 3], mirror: flip }, at, block);
    const wf = flip.length ? e.mirror(w, flip) : w;
    const wt = e.reshape(e.transpose(e.reshape(wf, [grp, mg, cg, kh, kw]), [0, 2, 1, 3, 4]), [grp * cg, mg, kh, kw]);
    return emitConv(e, dy, { v: wt }, at, block);
  }
  const rem = (i: 0 | 1, k: number) => ((xShape[2 + i] ?? 0) + a.pads[i] + a.pads[i + 2]! - a.dilations[i] * (k - 1) - 1) % a.strides[i];
  return e.convTranspose(dy, w, { ...a, outputPadding: [rem(0, kh), rem(1, kw)] }, xShape);
}

export const convInputGrad = convGradRule(
  'ConvInputGrad as a Conv of dy with mirrored weights, or ConvTranspose',
  'ConvInputGrad',
  'dx',
  (e, dy, w, xs, _ws, a, block) => inputGradNodes(e, dy, w, xs, a, block),
);
