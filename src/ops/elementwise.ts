/** Elementwise ops (with broadcasting), comparisons, casts and their gradient rules. */
import { DTYPES, type DType } from '../graph/dtype.js';
import { attr, type OpDef, type Value } from '../graph/graph.js';
import { broadcastShapes, type NoAttrs, req, sameDtype } from './util.js';
import { reduceDef, reducedGrad, reduceSum, reshape, type ReduceAttrs } from './shape.js';

const none: NoAttrs = {};

/** Sums a broadcast gradient back down to `shape`. */
function unbroadcast(dy: Value, shape: readonly number[]): Value {
  if (dy.shape.length === shape.length && dy.shape.every((d, i) => d === shape[i])) return dy;
  const lead = dy.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < dy.rank; i++) {
    if (i < lead || (shape[i - lead] === 1 && dy.shape[i] !== 1)) axes.push(i);
  }
  const summed = axes.length ? reduceSum(dy, axes, true) : dy;
  return reshape(summed, shape);
}

function binary(type: string, vjp: OpDef<NoAttrs>['vjp'], outDtype?: DType): OpDef<NoAttrs> {
  return {
    type,
    infer(inputs) {
      const a = req(inputs, 0, 'A');
      const b = req(inputs, 1, 'B');
      sameDtype(a, b, type);
      return [{ dtype: outDtype ?? a.dtype, shape: broadcastShapes(a.shape, b.shape) }];
    },
    onnxAttrs: () => ({}),
    ...(vjp ? { vjp } : {}),
  };
}

function unary(type: string, vjp?: OpDef<NoAttrs>['vjp']): OpDef<NoAttrs> {
  return {
    type,
    infer(inputs) {
      const x = req(inputs, 0, 'X');
      return [{ dtype: x.dtype, shape: x.shape }];
    },
    onnxAttrs: () => ({}),
    ...(vjp ? { vjp } : {}),
  };
}

export const Add: OpDef<NoAttrs> = binary('Add', (node, [dy]) => {
  const [a, b] = node.inputs;
  if (!dy || !a || !b) return [undefined, undefined];
  return [unbroadcast(dy, a.shape), unbroadcast(dy, b.shape)];
});

export const Sub: OpDef<NoAttrs> = binary('Sub', (node, [dy]) => {
  const [a, b] = node.inputs;
  if (!dy || !a || !b) return [undefined, undefined];
  return [unbroadcast(dy, a.shape), unbroadcast(neg(dy), b.shape)];
});

export const Mul: OpDef<NoAttrs> = binary('Mul', (node, [dy]) => {
  const [a, b] = node.inputs;
  if (!dy || !a || !b) return [undefined, undefined];
  return [unbroadcast(mul(dy, b), a.shape), unbroadcast(mul(dy, a), b.shape)];
});

// d(a/b) = dy/b, −dy·a/b²
export const Div: OpDef<NoAttrs> = binary('Div', (node, [dy]) => {
  const [a, b] = node.inputs;
  const y = node.outputs[0];
  if (!dy || !a || !b || !y) return [undefined, undefined];
  const da = div(dy, b);
  return [unbroadcast(da, a.shape), unbroadcast(neg(mul(da, y)), b.shape)];
});

export const Sum: OpDef<NoAttrs> = {
  type: 'Sum',
  infer(inputs) {
    const first = req(inputs, 0, 'data_0');
    let shape: readonly number[] = first.shape;
    inputs.forEach((_, i) => {
      const v = req(inputs, i, `data_${i}`);
      sameDtype(first, v, 'Sum');
      shape = broadcastShapes(shape, v.shape);
    });
    return [{ dtype: first.dtype, shape }];
  },
  onnxAttrs: () => ({}),
  vjp(node, [dy]) {
    return node.inputs.map((x) => (dy && x ? unbroadcast(dy, x.shape) : undefined));
  },
};

export const Neg: OpDef<NoAttrs> = unary('Neg', (_node, [dy]) => [dy ? neg(dy) : undefined]);

export const Identity: OpDef<NoAttrs> = unary('Identity', (_node, [dy]) => [dy]);

// Gradient at 0 is taken as 0 (the mask is y > 0).
export const Relu: OpDef<NoAttrs> = unary('Relu', (node, [dy]) => {
  const y = node.outputs[0];
  if (!dy || !y) return [undefined];
  // dy times the mask as 0/1 floats: three vectorised passes took 63 ms of a NIN step where one
  // Where with a scalar zero took 147 (2 cores). Unlike Where, an infinite dy becomes NaN where masked.
  return [mul(dy, reluOpen(y))];
});

/** 1 where a ReLU's output y is positive (its gradient passes), else 0, in y's dtype. */
export function reluOpen(y: Value): Value {
  return cast(greater(y, zerosLike(y)), y.dtype);
}

export const Exp: OpDef<NoAttrs> = unary('Exp', (node, [dy]) => {
  const y = node.outputs[0];
  return [dy && y ? mul(dy, y) : undefined];
});

export const Log: OpDef<NoAttrs> = unary('Log', (node, [dy]) => {
  const x = node.inputs[0];
  return [dy && x ? div(dy, x) : undefined];
});

export const Sqrt: OpDef<NoAttrs> = unary('Sqrt', (node, [dy]) => {
  const y = node.outputs[0];
  if (!dy || !y) return [undefined];
  return [div(dy, mul(y, scalarLike(y, 2)))];
});

// d(aᵇ)/da = b·aᵇ/a, taken from the output; the exponent is a constant here (no gradient).
export const Pow: OpDef<NoAttrs> = binary('Pow', (node, [dy]) => {
  const [a, b] = node.inputs;
  const y = node.outputs[0];
  if (!dy || !a || !b || !y) return [undefined, undefined];
  return [unbroadcast(mul(dy, mul(b, div(y, a))), a.shape), undefined];
});

export const Greater: OpDef<NoAttrs> = binary('Greater', undefined, 'bool');
export const Equal: OpDef<NoAttrs> = binary('Equal', undefined, 'bool');

export const Where: OpDef<NoAttrs> = {
  type: 'Where',
  infer(inputs) {
    const c = req(inputs, 0, 'condition');
    const a = req(inputs, 1, 'X');
    const b = req(inputs, 2, 'Y');
    if (c.dtype !== 'bool') throw new Error(`condition must be bool, got ${c.dtype}`);
    sameDtype(a, b, 'Where');
    return [{ dtype: a.dtype, shape: broadcastShapes(c.shape, broadcastShapes(a.shape, b.shape)) }];
  },
  onnxAttrs: () => ({}),
  vjp(node, [dy]) {
    const [c, a, b] = node.inputs;
    if (!dy || !c || !a || !b) return [undefined, undefined, undefined];
    const z = zerosLike(dy);
    return [undefined, unbroadcast(where(c, dy, z), a.shape), unbroadcast(where(c, z, dy), b.shape)];
  },
};

interface CastAttrs {
  to: DType;
}
export const Cast: OpDef<CastAttrs> = {
  type: 'Cast',
  infer(inputs, a) {
    return [{ dtype: a.to, shape: req(inputs, 0, 'input').shape }];
  },
  onnxAttrs: (a) => ({ to: attr.int(dtypeCode(a.to)) }),
};

function dtypeCode(d: DType): number {
  return DTYPES[d].onnx;
}

// ---- emitters ----
export const add = (a: Value, b: Value): Value => a.graph.add1(Add, [a, b], none);
export const sub = (a: Value, b: Value): Value => a.graph.add1(Sub, [a, b], none);
export const mul = (a: Value, b: Value): Value => a.graph.add1(Mul, [a, b], none);
export const div = (a: Value, b: Value): Value => a.graph.add1(Div, [a, b], none);
/** Elementwise sum of any number of tensors (one pass instead of a chain of Adds). */
export function sumOf(xs: readonly Value[]): Value {
  const first = xs[0];
  if (!first) throw new Error('sumOf needs at least one input');
  return xs.length === 1 ? first : first.graph.add1(Sum, xs, none);
}
export const neg = (x: Value): Value => x.graph.add1(Neg, [x], none);
export const identity = (x: Value): Value => x.graph.add1(Identity, [x], none);
export const relu = (x: Value): Value => x.graph.add1(Relu, [x], none);
export const exp = (x: Value): Value => x.graph.add1(Exp, [x], none);
export const log = (x: Value): Value => x.graph.add1(Log, [x], none);
export const sqrt = (x: Value): Value => x.graph.add1(Sqrt, [x], none);
export const pow = (a: Value, b: Value): Value => a.graph.add1(Pow, [a, b], none);
export const greater = (a: Value, b: Value): Value => a.graph.add1(Greater, [a, b], none);
export const equal = (a: Value, b: Value): Value => a.graph.add1(Equal, [a, b], none);
export const where = (c: Value, a: Value, b: Value): Value => c.graph.add1(Where, [c, a, b], none);
export const cast = (x: Value, to: DType): Value => x.graph.add1(Cast, [x], { to });

/** A broadcastable scalar constant with the dtype of `like`. */
export function scalarLike(like: Value, v: number): Value {
  return like.graph.floats([v], [], like.dtype);
}
export function zerosLike(like: Value): Value {
  return scalarLike(like, 0);
}
export function scale(x: Value, s: number): Value {
  return mul(x, scalarLike(x, s));
}

// The mean's gradient scales (Mul) while Mul's gradient reduces (ReduceSum): ReduceMean lives beside
// Mul so that shape.ts needs nothing from this file and ops/ has no import cycle.
export const ReduceMean: OpDef<ReduceAttrs> = reduceDef('ReduceMean', (node, [dy]) => {
  if (!dy) return [undefined, undefined];
  const x = req(node.inputs, 0, 'data');
  const y = req(node.outputs, 0, 'reduced');
  return [scale(reducedGrad(node, dy), y.size / x.size), undefined];
});
export const reduceMean = (x: Value, axes: readonly number[], keepdims = false): Value =>
  x.graph.add1(ReduceMean, [x, x.graph.ints(axes)], { keepdims });
