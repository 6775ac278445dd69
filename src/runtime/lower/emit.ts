/**
 * Writes the standard ONNX nodes a lowering expands to, each value with its static shape (so that
 * later stages can read it), named under one base. The int64 operands (shapes, axes) are Constant
 * nodes, which ONNX Runtime folds at session creation as it does initializers.
 */
import { AttributeType, type AttributeProto, type NodeProto, type ValueInfoProto } from '../../onnx/proto.js';
import { constInts, type GraphScope } from '../graph-rewrite.js';

export interface ConvGeometry {
  strides: readonly number[];
  pads: readonly number[];
  dilations: readonly number[];
  group: number;
}

export interface Val {
  name: string;
  shape: readonly number[];
  /** Where it differs from the emitter's (int64 indices). */
  elemType?: number;
}

const ints = (name: string, v: readonly number[]): AttributeProto => ({ name, type: AttributeType.INTS, ints: [...v] });
const int = (name: string, i: number): AttributeProto => ({ name, type: AttributeType.INT, i });

export function convOutSize(size: number, k: number, s: number, d: number, p0: number, p1: number): number {
  return Math.floor((size + p0 + p1 - d * (k - 1) - 1) / s) + 1;
}

/**
 * The element type of `dy`, an output gradient, where the graph declares its shape (training
 * graphs declare every value's: SerializeOptions.shapes), else undefined: a lowering then declares
 * nothing either, and the shape-reading forms (the blocked Convs) are not taken.
 */
export function declaredType(scope: GraphScope, dy: string): number | undefined {
  return scope.shape(dy) ? scope.elemType(dy) : undefined;
}

export class Emitter {
  readonly nodes: NodeProto[] = [];
  private readonly shapes: Val[] = [];
  private count = 0;

  /** `elemType`: the values' ONNX element type, where known (their shapes are then declared). */
  constructor(
    private readonly base: string,
    private readonly elemType: number | undefined,
  ) {}

  private fresh(op: string): string {
    return `${this.base}/${op}${this.count++}`;
  }

  /** A new value name. */
  name(op: string): string {
    return this.fresh(op);
  }

  /** Whether the values' shapes are declared (the element type is known). */
  get declares(): boolean {
    return this.elemType !== undefined;
  }

  /** Nodes written elsewhere, the last making `output` of `shape`. */
  raw(nodes: readonly NodeProto[], output: string, shape: readonly number[]): Val {
    this.nodes.push(...nodes);
    const v = { name: output, shape };
    this.shapes.push(v);
    return v;
  }

  /** An int64 vector operand. */
  ints(values: readonly number[]): string {
    const name = this.fresh('c');
    this.nodes.push(constInts(name, values));
    return name;
  }

  node(opType: string, input: readonly string[], shape: readonly number[], attribute: AttributeProto[] = [], elemType?: number): Val {
    const name = this.fresh(opType);
    this.nodes.push({ opType, name, input: [...input], output: [name], ...(attribute.length ? { attribute } : {}) });
    const v: Val = elemType === undefined ? { name, shape } : { name, shape, elemType };
    this.shapes.push(v);
    return v;
  }

  transpose(x: Val, perm: readonly number[]): Val {
    return this.node(
      'Transpose',
      [x.name],
      perm.map((p) => x.shape[p]!),
      [ints('perm', perm)],
      x.elemType,
    );
  }

  reshape(x: Val, dims: readonly number[]): Val {
    return this.node('Reshape', [x.name, this.ints(dims)], dims, [], x.elemType);
  }

  slice(x: Val, starts: readonly number[], ends: readonly number[], axes: readonly number[], steps?: readonly number[]): Val {
    const shape = [...x.shape];
    axes.forEach((ax, i) => {
      // ONNX's clamping: negative positions count from the end; a negative step walks back.
      const dim = x.shape[ax]!;
      const step = steps?.[i] ?? 1;
      const at = (p: number, lo: number, hi: number) => Math.min(Math.max(p < 0 ? p + dim : p, lo), hi);
      const start = step > 0 ? at(starts[i]!, 0, dim) : at(starts[i]!, 0, dim - 1);
      const end = step > 0 ? at(ends[i]!, 0, dim) : at(ends[i]!, -1, dim - 1);
      shape[ax] = Math.max(0, Math.ceil((end - start) / step));
    });
    const input = [x.name, this.ints(starts), this.ints(ends), this.ints(axes), ...(steps ? [this.ints(steps)] : [])];
    return this.node('Slice', input, shape);
  }

  /** `x` mirrored whole over `axes` (Slice with steps −1). */
  mirror(x: Val, axes: readonly number[]): Val {
    return this.slice(
      x,
      axes.map(() => -1),
      axes.map((ax) => -x.shape[ax]! - 1),
      axes,
      axes.map(() => -1),
    );
  }

  pad(x: Val, pads: readonly number[]): Val {
    const r = x.shape.length;
    return this.node(
      'Pad',
      [x.name, this.ints(pads)],
      x.shape.map((d, i) => d + pads[i]! + pads[i + r]!),
    );
  }

  concat(xs: readonly Val[], axis: number): Val {
    const shape = [...xs[0]!.shape];
    shape[axis] = xs.reduce((s, x) => s + x.shape[axis]!, 0);
    return this.node(
      'Concat',
      xs.map((x) => x.name),
      shape,
      [int('axis', axis)],
    );
  }

  /** Batched MatMul of equal-rank operands (batch dims broadcast). */
  matmul(a: Val, b: Val): Val {
    const r = a.shape.length;
    const batch = a.shape.slice(0, r - 2).map((d, i) => Math.max(d, b.shape[i]!));
    return this.node('MatMul', [a.name, b.name], [...batch, a.shape[r - 2]!, b.shape[r - 1]!]);
  }

  reduceSum(x: Val, axes: readonly number[]): Val {
    return this.node(
      'ReduceSum',
      [x.name, this.ints(axes)],
      x.shape.filter((_, i) => !axes.includes(i)),
      [int('keepdims', 0)],
    );
  }

  /** A Conv's output height and width. */
  convOut(xShape: readonly number[], wShape: readonly number[], a: ConvGeometry): [number, number] {
    const [, , h, wd] = xShape as [number, number, number, number];
    const [, , kh, kw] = wShape as [number, number, number, number];
    return [
      convOutSize(h, kh, a.strides[0]!, a.dilations[0]!, a.pads[0]!, a.pads[2]!),
      convOutSize(wd, kw, a.strides[1]!, a.dilations[1]!, a.pads[1]!, a.pads[3]!),
    ];
  }

  convAttributes(a: ConvGeometry): AttributeProto[] {
    return [ints('strides', a.strides), ints('pads', a.pads), ints('dilations', a.dilations), int('group', a.group)];
  }

  conv(x: Val, w: Val, a: ConvGeometry): Val {
    return this.node('Conv', [x.name, w.name], [x.shape[0]!, w.shape[0]!, ...this.convOut(x.shape, w.shape, a)], this.convAttributes(a));
  }

  convTranspose(x: Val, w: Val, a: ConvGeometry & { outputPadding: readonly number[] }, shape: readonly number[]): Val {
    return this.node('ConvTranspose', [x.name, w.name], shape, [...this.convAttributes(a), ints('output_padding', a.outputPadding)]);
  }

  /** The nodes, the one making `result` renamed to write `output`, and the declared shapes of the others. */
  finish(result: Val, output: string): { nodes: NodeProto[]; valueInfo: ValueInfoProto[] } {
    const last = this.nodes.find((n) => n.output[0] === result.name);
    if (!last) throw new Error(`${this.base}: the lowering's result ${result.name} is not one of its nodes`);
    last.output = [output];
    const elemType = this.elemType;
    const declare = (v: Val, t: number): ValueInfoProto => ({
      name: v.name,
      type: { tensorType: { elemType: v.elemType ?? t, shape: { dim: v.shape.map((d) => ({ dimValue: d })) } } },
    });
    const valueInfo = elemType === undefined ? [] : this.shapes.filter((v) => v !== result).map((v) => declare(v, elemType));
    return { nodes: this.nodes, valueInfo };
  }
}
