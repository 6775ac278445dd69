/** Shape ops (Reshape, Flatten, Transpose, Concat, Slice, Gather, Expand) and reductions. */
import { formatShape, sizeOf } from '../graph/dtype.js';
import { attr, type OpDef, type Value } from '../graph/graph.js';
import { axisOf, type NoAttrs, req } from './util.js';

/** Reads an int64 constant input as numbers (shape/axes inputs must be constants at build time). */
function constInts(v: Value | undefined, what: string): number[] {
  const data = v ? v.graph.consts.get(v) : undefined;
  if (!(data instanceof BigInt64Array)) throw new Error(`${what} must be an int64 constant`);
  return Array.from(data, Number);
}

export const Reshape: OpDef<NoAttrs> = {
  type: 'Reshape',
  infer(inputs) {
    const x = req(inputs, 0, 'data');
    // 0 copies the input's dimension (ONNX's default allowzero = 0): batch-agnostic reshapes.
    const target = constInts(inputs[1], 'shape').map((d, i) => (d === 0 ? (x.shape[i] ?? 0) : d));
    const known = target.filter((d) => d !== -1);
    const free = target.length - known.length;
    const shape = [...target];
    if (free > 1) throw new Error('at most one -1 in a shape');
    if (free === 1) shape[target.indexOf(-1)] = x.size / sizeOf(known);
    if (sizeOf(shape) !== x.size) throw new Error(`cannot reshape ${formatShape(x.shape)} to ${formatShape(target)}`);
    return [{ dtype: x.dtype, shape }];
  },
  onnxAttrs: () => ({}),
  vjp(node, [dy]) {
    const x = req(node.inputs, 0, 'data');
    return [dy ? reshape(dy, x.shape) : undefined, undefined];
  },
};

export interface AxisAttrs {
  axis: number;
}

export const Flatten: OpDef<AxisAttrs> = {
  type: 'Flatten',
  infer(inputs, a) {
    const x = req(inputs, 0, 'input');
    const k = a.axis < 0 ? a.axis + x.rank : a.axis;
    return [{ dtype: x.dtype, shape: [sizeOf(x.shape.slice(0, k)), sizeOf(x.shape.slice(k))] }];
  },
  onnxAttrs: (a) => ({ axis: attr.int(a.axis) }),
  vjp(node, [dy]) {
    const x = req(node.inputs, 0, 'input');
    return [dy ? reshape(dy, x.shape) : undefined];
  },
};

interface PermAttrs {
  perm: readonly number[];
}
export const Transpose: OpDef<PermAttrs> = {
  type: 'Transpose',
  infer(inputs, a) {
    const x = req(inputs, 0, 'data');
    if (a.perm.length !== x.rank) throw new Error(`perm ${a.perm} does not fit rank ${x.rank}`);
    return [{ dtype: x.dtype, shape: a.perm.map((p) => x.shape[p] ?? 0) }];
  },
  onnxAttrs: (a) => ({ perm: attr.ints(a.perm) }),
  vjp(node, [dy]) {
    const inv: number[] = [];
    node.attrs.perm.forEach((p, i) => (inv[p] = i));
    return [dy ? transpose(dy, inv) : undefined];
  },
};

export const Concat: OpDef<AxisAttrs> = {
  type: 'Concat',
  infer(inputs, a) {
    const first = req(inputs, 0, 'inputs');
    const ax = axisOf(a.axis, first.rank);
    const shape = [...first.shape];
    shape[ax] = 0;
    for (const [i, v] of inputs.entries()) {
      const x = req(inputs, i, 'inputs');
      const ok = x.rank === first.rank && x.shape.every((d, j) => j === ax || d === first.shape[j]);
      if (!ok || x.dtype !== first.dtype) {
        throw new Error(`cannot concatenate ${formatShape(first.shape)} with ${formatShape(x.shape)} on axis ${a.axis}`);
      }
      shape[ax] = (shape[ax] ?? 0) + (v?.shape[ax] ?? 0);
    }
    return [{ dtype: first.dtype, shape }];
  },
  onnxAttrs: (a) => ({ axis: attr.int(a.axis) }),
  vjp(node, [dy]) {
    if (!dy) return node.inputs.map(() => undefined);
    const ax = axisOf(node.attrs.axis, dy.rank);
    let start = 0;
    return node.inputs.map((x) => {
      const len = x?.shape[ax] ?? 0;
      const part = slice(dy, [start], [start + len], [ax]);
      start += len;
      return part;
    });
  },
};

export const Slice: OpDef<NoAttrs> = {
  type: 'Slice',
  infer(inputs) {
    const x = req(inputs, 0, 'data');
    const starts = constInts(inputs[1], 'starts');
    const ends = constInts(inputs[2], 'ends');
    const axes = inputs[3] ? constInts(inputs[3], 'axes') : starts.map((_, i) => i);
    const steps = inputs[4] ? constInts(inputs[4], 'steps') : starts.map(() => 1);
    const shape = [...x.shape];
    axes.forEach((axRaw, i) => {
      const ax = axisOf(axRaw, x.rank);
      const dim = x.shape[ax] ?? 0;
      const step = steps[i] ?? 1;
      const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v < 0 ? v + dim : v, lo), hi);
      if (step > 0) {
        const s = clamp(starts[i] ?? 0, 0, dim);
        const e = clamp(ends[i] ?? dim, 0, dim);
        shape[ax] = Math.max(0, Math.ceil((e - s) / step));
      } else {
        const s = clamp(starts[i] ?? -1, -1, dim - 1);
        const e = clamp(ends[i] ?? -dim - 1, -1, dim - 1);
        shape[ax] = Math.max(0, Math.ceil((s - e) / -step));
      }
    });
    return [{ dtype: x.dtype, shape }];
  },
  onnxAttrs: () => ({}),
  vjp(node, [dy]) {
    const x = req(node.inputs, 0, 'data');
    if (!dy) return node.inputs.map(() => undefined);
    const starts = constInts(node.inputs[1], 'starts');
    const axes = node.inputs[3] ? constInts(node.inputs[3], 'axes') : starts.map((_, i) => i);
    const steps = node.inputs[4] ? constInts(node.inputs[4], 'steps') : starts.map(() => 1);
    if (steps.some((s) => s !== 1)) throw new Error('Slice gradient supports step 1 only');
    // Pad the gradient back to the input's extent.
    const pads = new Array<number>(2 * x.rank).fill(0);
    axes.forEach((axRaw, i) => {
      const ax = axisOf(axRaw, x.rank);
      const dim = x.shape[ax] ?? 0;
      const s0 = starts[i] ?? 0;
      const s = Math.min(Math.max(s0 < 0 ? s0 + dim : s0, 0), dim);
      pads[ax] = s;
      pads[ax + x.rank] = dim - s - (dy.shape[ax] ?? 0);
    });
    return node.inputs.map((_, i) => (i === 0 ? pad(dy, pads) : undefined));
  },
};

export const Pad: OpDef<NoAttrs> = {
  type: 'Pad',
  infer(inputs) {
    const x = req(inputs, 0, 'data');
    const pads = constInts(inputs[1], 'pads');
    return [{ dtype: x.dtype, shape: x.shape.map((d, i) => d + (pads[i] ?? 0) + (pads[i + x.rank] ?? 0)) }];
  },
  onnxAttrs: () => ({}),
  vjp(node, [dy]) {
    const x = req(node.inputs, 0, 'data');
    if (!dy) return [undefined, undefined];
    const pads = constInts(node.inputs[1], 'pads');
    const axes = x.shape.map((_, i) => i);
    return [
      slice(
        dy,
        axes.map((i) => pads[i] ?? 0),
        axes.map((i) => (pads[i] ?? 0) + (x.shape[i] ?? 0)),
        axes,
      ),
      undefined,
    ];
  },
};

export const Gather: OpDef<AxisAttrs> = {
  type: 'Gather',
  infer(inputs, a) {
    const x = req(inputs, 0, 'data');
    const idx = req(inputs, 1, 'indices');
    const ax = axisOf(a.axis, x.rank);
    return [{ dtype: x.dtype, shape: [...x.shape.slice(0, ax), ...idx.shape, ...x.shape.slice(ax + 1)] }];
  },
  onnxAttrs: (a) => ({ axis: attr.int(a.axis) }),
};

export const Expand: OpDef<NoAttrs> = {
  type: 'Expand',
  infer(inputs) {
    const x = req(inputs, 0, 'input');
    const shape = constInts(inputs[1], 'shape');
    const n = Math.max(shape.length, x.rank);
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const a = x.shape[x.rank - n + i] ?? 1;
      const b = shape[shape.length - n + i] ?? 1;
      if (a !== b && a !== 1 && b !== 1) throw new Error(`cannot expand ${formatShape(x.shape)} to ${formatShape(shape)}`);
      out.push(Math.max(a, b));
    }
    return [{ dtype: x.dtype, shape: out }];
  },
  onnxAttrs: () => ({}),
};

export interface ReduceAttrs {
  keepdims: boolean;
}
export function reduceDef(type: 'ReduceSum' | 'ReduceMean' | 'ReduceMax', vjp?: OpDef<ReduceAttrs>['vjp']): OpDef<ReduceAttrs> {
  return {
    type,
    infer(inputs, a) {
      const x = req(inputs, 0, 'data');
      const axes = constInts(inputs[1], 'axes').map((ax) => axisOf(ax, x.rank));
      const shape: number[] = [];
      x.shape.forEach((d, i) => {
        if (!axes.includes(i)) shape.push(d);
        else if (a.keepdims) shape.push(1);
      });
      return [{ dtype: x.dtype, shape }];
    },
    onnxAttrs: (a) => ({ keepdims: attr.int(a.keepdims ? 1 : 0) }),
    ...(vjp ? { vjp } : {}),
  };
}

export function reducedGrad(node: { inputs: readonly (Value | undefined)[]; attrs: ReduceAttrs }, dy: Value): Value {
  const x = req(node.inputs, 0, 'data');
  const axes = constInts(node.inputs[1], 'axes').map((ax) => axisOf(ax, x.rank));
  const kept = node.attrs.keepdims
    ? dy
    : reshape(
        dy,
        x.shape.map((d, i) => (axes.includes(i) ? 1 : d)),
      );
  return expand(kept, x.shape);
}

export const ReduceSum = reduceDef('ReduceSum', (node, [dy]) => [dy ? reducedGrad(node, dy) : undefined, undefined]);
export const ReduceMax = reduceDef('ReduceMax');

// ---- emitters ----
export const reshape = (x: Value, shape: readonly number[]): Value => x.graph.add1(Reshape, [x, x.graph.ints(shape)], {});
/** Reshape that keeps dim 0 symbolic (written as 0), so exported models take any batch size. */
export const reshapeKeepBatch = (x: Value, rest: readonly number[]): Value => x.graph.add1(Reshape, [x, x.graph.ints([0, ...rest])], {});
export const flatten = (x: Value, axis = 1): Value => x.graph.add1(Flatten, [x], { axis });
export const transpose = (x: Value, perm: readonly number[]): Value => x.graph.add1(Transpose, [x], { perm });
export const concat = (xs: readonly Value[], axis: number): Value => {
  const first = xs[0];
  if (!first) throw new Error('concat needs at least one input');
  return first.graph.add1(Concat, xs, { axis });
};
export function slice(
  x: Value,
  starts: readonly number[],
  ends: readonly number[],
  axes: readonly number[],
  steps?: readonly number[],
): Value {
  const g = x.graph;
  const ins = [x, g.ints(starts), g.ints(ends), g.ints(axes)];
  if (steps) ins.push(g.ints(steps));
  return g.add1(Slice, ins, {});
}
export const pad = (x: Value, pads: readonly number[]): Value => x.graph.add1(Pad, [x, x.graph.ints(pads)], {});
export const expand = (x: Value, shape: readonly number[]): Value => x.graph.add1(Expand, [x, x.graph.ints(shape)], {});
export const reduceSum = (x: Value, axes: readonly number[], keepdims = false): Value =>
  x.graph.add1(ReduceSum, [x, x.graph.ints(axes)], { keepdims });
export const reduceMax = (x: Value, axes: readonly number[], keepdims = false): Value =>
  x.graph.add1(ReduceMax, [x, x.graph.ints(axes)], { keepdims });
