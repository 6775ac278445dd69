/** Softmax and LogSoftmax along one axis (opset ≥ 13 semantics), and TopK for accuracy counts. */
import { attr, type OpDef, type TypeShape, type Value } from '../graph/graph.js';
import { axisOf, req } from './util.js';
import { reduceSum } from './shape.js';
import { exp, mul, sub } from './elementwise.js';
import type { AxisAttrs } from './shape.js';

function sameAsInput(inputs: readonly (Value | undefined)[]): TypeShape[] {
  const x = req(inputs, 0, 'input');
  return [{ dtype: x.dtype, shape: x.shape }];
}

// d softmax: y · (dy − Σ dy·y)
export const Softmax: OpDef<AxisAttrs> = {
  type: 'Softmax',
  infer: sameAsInput,
  onnxAttrs: (a) => ({ axis: attr.int(a.axis) }),
  vjp(node, [dy]) {
    const y = req(node.outputs, 0, 'output');
    if (!dy) return [undefined];
    const ax = axisOf(node.attrs.axis, y.rank);
    return [mul(y, sub(dy, reduceSum(mul(dy, y), [ax], true)))];
  },
};

// d log-softmax: dy − exp(y) · Σ dy
export const LogSoftmax: OpDef<AxisAttrs> = {
  type: 'LogSoftmax',
  infer: sameAsInput,
  onnxAttrs: (a) => ({ axis: attr.int(a.axis) }),
  vjp(node, [dy]) {
    const y = req(node.outputs, 0, 'output');
    if (!dy) return [undefined];
    const ax = axisOf(node.attrs.axis, y.rank);
    return [sub(dy, mul(exp(y), reduceSum(dy, [ax], true)))];
  },
};

interface TopKAttrs {
  k: number;
}
export const TopK: OpDef<TopKAttrs> = {
  type: 'TopK',
  infer(inputs, a) {
    const x = req(inputs, 0, 'X');
    const last = x.shape[x.rank - 1] ?? 0;
    if (a.k > last) throw new Error(`k = ${a.k} exceeds the ${last} classes`);
    const shape = [...x.shape.slice(0, -1), a.k];
    return [
      { dtype: x.dtype, shape },
      { dtype: 'int64', shape },
    ];
  },
  onnxAttrs: () => ({ axis: attr.int(-1) }),
};

export const softmax = (x: Value, axis = 1): Value => x.graph.add1(Softmax, [x], { axis });
export const logSoftmax = (x: Value, axis = 1): Value => x.graph.add1(LogSoftmax, [x], { axis });
/** Indices of the k largest entries along the last axis. */
export function topkIndices(x: Value, k: number): Value {
  return req(x.graph.add(TopK, [x, x.graph.ints([k])], { k }), 1, 'Indices');
}
