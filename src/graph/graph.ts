/**
 * The graph builder: values are objects wired by identity; names exist only for serialisation.
 * Every node's output dtypes and static shapes are inferred when it is made, so a wrong shape is an
 * error at build time that names the layer.
 */
import { DTYPES, formatShape, sizeOf, type DType, type TypedArray } from './dtype.js';

/** A build-time error that names the layer (scope) where shapes or types did not fit. */
export class GraphError extends Error {
  constructor(
    readonly layer: string,
    message: string,
  ) {
    super(layer ? `${layer}: ${message}` : message);
    this.name = 'GraphError';
  }
}

/** An ONNX attribute value, tagged with its ONNX kind. */
export type Attr =
  | { kind: 'int'; v: number }
  | { kind: 'float'; v: number }
  | { kind: 'ints'; v: readonly number[] }
  | { kind: 'floats'; v: readonly number[] }
  | { kind: 'string'; v: string }
  /** A subgraph (a Loop's body), serialised with the names of the graph that holds it. */
  | { kind: 'graph'; v: Graph };
export type OnnxAttrs = Record<string, Attr>;

export const attr = {
  int: (v: number): Attr => ({ kind: 'int', v }),
  float: (v: number): Attr => ({ kind: 'float', v }),
  ints: (v: readonly number[]): Attr => ({ kind: 'ints', v }),
  floats: (v: readonly number[]): Attr => ({ kind: 'floats', v }),
  string: (v: string): Attr => ({ kind: 'string', v }),
  graph: (v: Graph): Attr => ({ kind: 'graph', v }),
};

export interface TypeShape {
  dtype: DType;
  shape: readonly number[];
}

/** Spatial footprint of a sliding-window op, for receptive-field bookkeeping. */
export interface Window {
  kernel: readonly number[];
  strides: readonly number[];
  dilations: readonly number[];
}

/**
 * Gradient context handed to vjp rules: emit nodes into the same graph, and ask for constants.
 * Returned gradients may be undefined for inputs that are not differentiable.
 */
export interface VjpContext {
  /** Whether a gradient w.r.t. this value is wanted (rules skip the work otherwise). */
  needsGrad(v: Value): boolean;
}

/** One op family's definition: ONNX form, shape rule, and (optionally) its vector-Jacobian rule. */
export interface OpDef<A> {
  readonly type: string;
  readonly domain?: string;
  /** Outputs after the first may be left out of the model when nothing uses them. */
  readonly optionalOutputs?: boolean;
  /** Output types/shapes from input types/shapes; throw an Error with a plain message on mismatch. */
  infer(inputs: readonly (Value | undefined)[], attrs: A): TypeShape[];
  onnxAttrs(attrs: A): OnnxAttrs;
  /** Multiply–accumulates for one run of the node (batch as built). */
  macs?(node: OpNode<A>): number;
  window?(node: OpNode<A>): Window | undefined;
  /** Receptive field becomes the whole input (fully connected, global pooling). */
  readonly global?: boolean;
  /**
   * Gradients w.r.t. each input from gradients w.r.t. each output (undefined: no gradient flows).
   * Inputs that cannot be differentiated get undefined back.
   */
  vjp?(node: OpNode<A>, dy: readonly (Value | undefined)[], ctx: VjpContext): (Value | undefined)[];
}

type ValueKind = 'input' | 'param' | 'const' | 'node';

export class Value {
  /** Set for graph inputs, parameters, constants and outputs; generated otherwise. */
  name: string | undefined;
  /**
   * Symbolic names of dimensions (a Loop's trip count "K"), written in place of the size as built;
   * undefined entries keep their size.
   */
  symbols: readonly (string | undefined)[] | undefined = undefined;
  constructor(
    readonly graph: Graph,
    readonly dtype: DType,
    readonly shape: readonly number[],
    readonly kind: ValueKind,
    readonly producer: AnyNode | undefined,
    name?: string,
  ) {
    this.name = name;
  }

  get size(): number {
    return sizeOf(this.shape);
  }

  get rank(): number {
    return this.shape.length;
  }

  toString(): string {
    return `${this.name ?? (this.producer ? `${this.producer.scope ? this.producer.scope + '/' : ''}${this.producer.op}` : this.kind)}[${this.dtype} ${formatShape(this.shape)}]`;
  }
}

/** A node as the graph stores it; its attribute type is known only to its own definition. */
export interface AnyNode {
  readonly op: string;
  readonly domain: string | undefined;
  readonly inputs: readonly (Value | undefined)[];
  readonly outputs: readonly Value[];
  /** The layer this node belongs to (e.g. "conv1", "inception_3a/3x3"). */
  readonly scope: string;
  onnxAttrs(): OnnxAttrs;
  macs(): number;
  window(): Window | undefined;
  readonly global: boolean;
  readonly optionalOutputs: boolean;
  readonly differentiable: boolean;
  vjp(dy: readonly (Value | undefined)[], ctx: VjpContext): (Value | undefined)[];
  /** Values of enclosing graphs that the node's subgraphs read (a Loop body's outer-scope references). */
  readonly captures?: readonly Value[];
}

export class OpNode<A> implements AnyNode {
  readonly outputs: Value[] = [];
  constructor(
    readonly def: OpDef<A>,
    readonly inputs: readonly (Value | undefined)[],
    readonly attrs: A,
    readonly scope: string,
  ) {}

  get op(): string {
    return this.def.type;
  }
  get domain(): string | undefined {
    return this.def.domain;
  }
  get global(): boolean {
    return this.def.global ?? false;
  }
  get optionalOutputs(): boolean {
    return this.def.optionalOutputs ?? false;
  }
  get differentiable(): boolean {
    return this.def.vjp !== undefined;
  }
  onnxAttrs(): OnnxAttrs {
    return this.def.onnxAttrs(this.attrs);
  }
  macs(): number {
    return this.def.macs ? this.def.macs(this) : 0;
  }
  window(): Window | undefined {
    return this.def.window?.(this);
  }
  vjp(dy: readonly (Value | undefined)[], ctx: VjpContext): (Value | undefined)[] {
    if (!this.def.vjp) throw new GraphError(this.scope, `${this.op} has no gradient rule`);
    const dx = this.def.vjp(this, dy, ctx);
    if (dx.length !== this.inputs.length) {
      throw new Error(`${this.op} vjp returned ${dx.length} gradients for ${this.inputs.length} inputs`);
    }
    return dx;
  }
}

/** How a parameter is initialised (materialised lazily, so counting never allocates weights). */
export type Init =
  | { kind: 'normal'; std: number; mean?: number }
  | { kind: 'uniform'; limit: number }
  | { kind: 'constant'; value: number }
  /** Caffe's "xavier": uniform ±sqrt(3 / fan_in). */
  | { kind: 'xavier' }
  /** He et al.: normal with std sqrt(2 / fan_in). */
  | { kind: 'kaiming' };

export interface Param {
  /** Its name, unique in the graph ("conv1_1.weight"): how checkpoints and ONNX files know it. */
  readonly name: string;
  readonly value: Value;
  readonly init: Init;
  /** Frozen parameters get no gradient and no update. */
  trainable: boolean;
  /** Whether weight decay applies (weights yes, biases optional). */
  readonly isBias: boolean;
  /**
   * A buffer: model state that is not learned (batch norm's running statistics). Fed, saved,
   * restored, imported and exported by name as parameters are, never trainable, not counted among
   * the parameters; a training graph computes its next value (Graph.bufferUpdates).
   */
  readonly buffer: boolean;
}

/** The largest kernel side the CPU's blocked-layout Conv lowering takes (src/runtime/lower/nchwc-conv.ts). */
export const BLOCKED_MAX_KERNEL = 11;

/**
 * The domain of the composite nodes that gradient rules emit (ConvWeightGrad, MaxPoolGrad): each
 * names what it computes and carries the shapes a lowering needs; src/runtime/lower/ turns it into
 * the form the session's provider runs fastest. No provider runs one as it is.
 */
export const COMPOSITE_DOMAIN = 'ai.ilsvrc';

export class Graph {
  readonly nodes: AnyNode[] = [];
  readonly inputs: Value[] = [];
  readonly outputs: Value[] = [];
  readonly params: Param[] = [];
  readonly consts = new Map<Value, TypedArray>();
  /** Build-mode switch read by ops such as dropout (training graphs take masks as inputs). */
  training = false;
  /** Dropout's keep-mask inputs and their drop rates: the trainer draws the masks. */
  readonly dropoutMasks = new Map<Value, number>();
  /** Each buffer's value after this run, from training-mode layers: training graphs output it as "<name>.next". */
  readonly bufferUpdates = new Map<Value, Value>();
  /**
   * Parameter names held fixed (--freeze), set before the model is built: a batch norm layer whose
   * weight and bias are both here runs in eval mode even in a training graph.
   */
  frozen: ReadonlySet<string> = new Set();
  private readonly scopes: string[] = [];
  private readonly names = new Set<string>();

  /** `outer`: the graph that holds this one as a subgraph; its values (and its own outer's) may be read here. */
  constructor(
    readonly name = 'graph',
    readonly outer?: Graph,
  ) {}

  /** Whether values of `g` may be read here: `g` is this graph or one that encloses it. */
  sees(g: Graph): boolean {
    for (let s: Graph | undefined = this; s; s = s.outer) if (s === g) return true;
    return false;
  }

  get scopeName(): string {
    return this.scopes.join('/');
  }

  /** Runs `fn` with nodes and parameters named under `name` (nested scopes join with "/"). */
  scope<T>(name: string, fn: () => T): T {
    this.scopes.push(name);
    try {
      return fn();
    } finally {
      this.scopes.pop();
    }
  }

  private claim(name: string): string {
    if (this.names.has(name)) throw new GraphError(this.scopeName, `the name "${name}" is already used in this graph`);
    this.names.add(name);
    return name;
  }

  /** `symbols`: names written for dimensions whose size is known only at run time (see Value.symbols). */
  input(name: string, dtype: DType, shape: readonly number[], symbols?: readonly (string | undefined)[]): Value {
    const v = new Value(this, dtype, [...shape], 'input', undefined, this.claim(name));
    if (symbols) v.symbols = [...symbols];
    this.inputs.push(v);
    return v;
  }

  /** A parameter named `<scope>.<local>` (e.g. "conv1.weight"). */
  param(local: string, shape: readonly number[], init: Init, isBias = false): Value {
    return this.addParam(local, shape, init, isBias, false);
  }

  /** A buffer named `<scope>.<local>` (e.g. "bn1.running_mean"): see Param.buffer. */
  buffer(local: string, shape: readonly number[], init: Init): Value {
    return this.addParam(local, shape, init, true, true);
  }

  private addParam(local: string, shape: readonly number[], init: Init, isBias: boolean, buffer: boolean): Value {
    const scope = this.scopeName;
    const name = this.claim(scope ? `${scope}.${local}` : local);
    const v = new Value(this, 'float32', [...shape], 'param', undefined, name);
    this.params.push({ name, value: v, init, trainable: !buffer, isBias, buffer });
    return v;
  }

  isBuffer(v: Value): boolean {
    return v.kind === 'param' && this.params.some((p) => p.buffer && p.value === v);
  }

  constant(data: TypedArray, shape: readonly number[], dtype: DType): Value {
    if (data.length !== sizeOf(shape)) {
      throw new GraphError(this.scopeName, `constant has ${data.length} elements, shape ${formatShape(shape)} needs ${sizeOf(shape)}`);
    }
    const v = new Value(this, dtype, [...shape], 'const', undefined);
    this.consts.set(v, data);
    return v;
  }

  /** Scalar or 1-D int64 constant (shapes, axes, indices). */
  ints(values: readonly number[], scalar = false): Value {
    return this.constant(BigInt64Array.from(values.map(BigInt)), scalar ? [] : [values.length], 'int64');
  }

  /** Float constant of the given dtype. */
  floats(values: readonly number[], shape: readonly number[] = [values.length], dtype: DType = 'float32'): Value {
    const data = dtype === 'float64' ? Float64Array.from(values) : Float32Array.from(values);
    return this.constant(data, shape, dtype);
  }

  output(v: Value, name: string): Value {
    if (v.graph !== this) throw new GraphError(this.scopeName, `output "${name}" belongs to another graph`);
    if (v.name !== undefined && v.kind !== 'node') {
      // Inputs/params cannot be renamed; pass them through an Identity so the output has its own name.
      throw new GraphError(this.scopeName, `output "${name}" must be computed by a node (got ${v.name})`);
    }
    v.name = this.claim(name);
    this.outputs.push(v);
    return v;
  }

  /** Makes a node: checks inputs belong here, infers output types/shapes, records it. */
  add<A>(def: OpDef<A>, inputs: readonly (Value | undefined)[], attrs: A): Value[] {
    for (const x of inputs) {
      if (x && !this.sees(x.graph)) {
        throw new GraphError(this.scopeName, `${def.type}: input ${x} is defined neither in this graph nor in one that encloses it`);
      }
    }
    let types: TypeShape[];
    try {
      types = def.infer(inputs, attrs);
    } catch (e) {
      if (e instanceof GraphError) throw e;
      throw new GraphError(this.scopeName, `${def.type}: ${(e as Error).message}`);
    }
    const node = new OpNode(def, inputs, attrs, this.scopeName);
    for (const t of types) {
      for (const d of t.shape) {
        if (!Number.isInteger(d) || d < 0) {
          throw new GraphError(this.scopeName, `${def.type}: inferred an invalid output shape ${formatShape(t.shape)}`);
        }
      }
      node.outputs.push(new Value(this, t.dtype, t.shape, 'node', node));
    }
    this.nodes.push(node);
    return node.outputs;
  }

  /** Single-output convenience for `add`. */
  add1<A>(def: OpDef<A>, inputs: readonly (Value | undefined)[], attrs: A): Value {
    const out = this.add(def, inputs, attrs)[0];
    if (!out) throw new GraphError(this.scopeName, `${def.type} produced no output`);
    return out;
  }

  paramCount(trainableOnly = false): number {
    let n = 0;
    for (const p of this.params) if (!p.buffer && (!trainableOnly || p.trainable)) n += p.value.size;
    return n;
  }

  paramBytes(): number {
    return this.paramCount() * DTYPES.float32.bytes;
  }

  macs(): number {
    let n = 0;
    for (const node of this.nodes) n += node.macs();
    return n;
  }

  findParam(name: string): Param | undefined {
    return this.params.find((p) => p.value.name === name);
  }
}
