/** Gemm (the fully connected layers) and MatMul. */
import { formatShape } from '../graph/dtype.js';
import { attr, type OpDef, type Value } from '../graph/graph.js';
import { broadcastShapes, expectRank, req, sameDtype } from './util.js';
import { reduceSum, transpose } from './shape.js';

export interface GemmAttrs {
  transA: boolean;
  transB: boolean;
}

/** Y = A'·B' + C with A' = transA ? Aᵀ : A, likewise B'; alpha = beta = 1. */
export const Gemm: OpDef<GemmAttrs> = {
  type: 'Gemm',
  global: true, // a fully connected layer: every output sees the whole input
  infer(inputs, a) {
    const x = req(inputs, 0, 'A');
    const w = req(inputs, 1, 'B');
    expectRank(x, 2, 'A');
    expectRank(w, 2, 'B');
    sameDtype(x, w, 'Gemm');
    const [m, k] = (a.transA ? [x.shape[1], x.shape[0]] : x.shape) as [number, number];
    const [k2, n] = (a.transB ? [w.shape[1], w.shape[0]] : w.shape) as [number, number];
    if (k !== k2) throw new Error(`inner dimensions differ: ${formatShape(x.shape)} · ${formatShape(w.shape)} (${k} vs ${k2} features)`);
    const c = inputs[2];
    if (c) broadcastShapes([m, n], c.shape);
    return [{ dtype: x.dtype, shape: [m, n] }];
  },
  onnxAttrs: (a) => ({ transA: attr.int(a.transA ? 1 : 0), transB: attr.int(a.transB ? 1 : 0) }),
  macs(node) {
    const y = req(node.outputs, 0, 'Y');
    const x = req(node.inputs, 0, 'A');
    return y.size * (node.attrs.transA ? (x.shape[0] ?? 0) : (x.shape[1] ?? 0));
  },
  vjp(node, [dy], ctx) {
    const [x, w, c] = node.inputs;
    if (!dy || !x || !w) return [undefined, undefined, undefined];
    const { transA, transB } = node.attrs;
    // A' = op(A), B' = op(B); dA' = dY·B'ᵀ, dB' = A'ᵀ·dY, then undo the transposes.
    const dx = !ctx.needsGrad(x) ? undefined : transA ? gemm(w, dy, undefined, transB, true) : gemm(dy, w, undefined, false, !transB);
    // The fully connected case (Y = X·Wᵀ): dW = dYᵀ·X as MatMul over a transposed dY, which ORT fuses;
    // Gemm with transA measured ~25 % slower for this tall, thin product.
    const dw = !ctx.needsGrad(w)
      ? undefined
      : transB && !transA
        ? matmul(transpose(dy, [1, 0]), x)
        : transB
          ? gemm(dy, x, undefined, true, transA)
          : gemm(x, dy, undefined, !transA, false);
    let dc: Value | undefined;
    if (c && ctx.needsGrad(c)) {
      if (c.rank === 1) dc = reduceSum(dy, [0]);
      else if (c.rank === 2 && c.shape[0] === dy.shape[0] && c.shape[1] === dy.shape[1]) dc = dy;
      else throw new Error(`Gemm gradient for bias ${formatShape(c.shape)} is not supported`);
    }
    return [dx, dw, dc];
  },
};

export const MatMul: OpDef<Record<never, never>> = {
  type: 'MatMul',
  infer(inputs) {
    const a = req(inputs, 0, 'A');
    const b = req(inputs, 1, 'B');
    sameDtype(a, b, 'MatMul');
    if (a.rank < 2 || b.rank < 2) throw new Error('MatMul here takes operands of rank ≥ 2');
    const [m, k] = a.shape.slice(-2) as [number, number];
    const [k2, n] = b.shape.slice(-2) as [number, number];
    if (k !== k2) throw new Error(`inner dimensions differ: ${formatShape(a.shape)} · ${formatShape(b.shape)}`);
    const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2));
    return [{ dtype: a.dtype, shape: [...batch, m, n] }];
  },
  onnxAttrs: () => ({}),
  macs(node) {
    const y = req(node.outputs, 0, 'Y');
    const a = req(node.inputs, 0, 'A');
    return y.size * (a.shape[a.rank - 1] ?? 0);
  },
};

export const gemm = (a: Value, b: Value, c: Value | undefined, transA = false, transB = false): Value =>
  a.graph.add1(Gemm, [a, b, c], { transA, transB });
const matmul = (a: Value, b: Value): Value => a.graph.add1(MatMul, [a, b], {});
