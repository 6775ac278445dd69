/**
 * Graph → ONNX ModelProto. Only nodes that feed an output are written (dead code is dropped), names
 * are generated for unnamed values, constants become initializers, and parameters become
 * initializers (with weights) or graph inputs (for training sessions that feed them each run).
 * Subgraphs (Loop bodies, src/graph/loop.ts) are written with the same namer, so no name in a body
 * shadows one of the graphs that enclose it.
 */
import { DTYPES, type TypedArray } from './dtype.js';
import type { AnyNode, Attr, Graph, Value } from './graph.js';
import {
  AttributeType,
  type AttributeProto,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from '../onnx/proto.js';

interface SerializeOptions {
  opset?: number;
  /** Mark dim 0 of graph inputs and outputs as the symbolic batch "N". */
  dynamicBatch?: boolean;
  /** Parameter values by name: written as initializers. Parameters without a value become inputs. */
  weights?: ReadonlyMap<string, Float32Array>;
  /** Parameters listed here are always graph inputs (fed at run time), even when weights has them. */
  paramsAsInputs?: boolean;
  docString?: string;
  metadata?: Record<string, string>;
  /** Declare every node output's type and shape (value_info), for rewrites that need them (src/runtime/lower/nchwc-conv.ts). */
  shapes?: boolean;
}

const DEFAULT_OPSET = 18;

function bytesOf(data: TypedArray): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

export function tensorProto(name: string, dims: readonly number[], data: TypedArray, dtype: keyof typeof DTYPES): TensorProto {
  return { name, dims: [...dims], dataType: DTYPES[dtype].onnx, rawData: bytesOf(data) };
}

function valueInfo(v: Value, name: string, dynamicBatch: boolean): ValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: DTYPES[v.dtype].onnx,
        shape: {
          dim: v.shape.map((d, i) => {
            const symbol = v.symbols?.[i] ?? (dynamicBatch && i === 0 ? 'N' : undefined);
            return symbol === undefined ? { dimValue: d } : { dimParam: symbol };
          }),
        },
      },
    },
  };
}

/** Assigns names: declared names are kept; others are made unique from the node's scope and op. */
class Namer {
  private readonly names = new Map<Value, string>();
  private readonly used = new Set<string>();
  private counter = 0;

  name(v: Value, hint?: string): string {
    const known = this.names.get(v);
    if (known) return known;
    let name = v.name;
    if (!name) {
      const node = v.producer;
      const base = node ? `${node.scope ? node.scope + '/' : ''}${node.op}` : (hint ?? 'const');
      name = `${base}_${this.counter++}`;
    }
    if (this.used.has(name)) name = `${name}__${this.counter++}`;
    this.used.add(name);
    this.names.set(v, name);
    return name;
  }

  lookup(v: Value): string | undefined {
    return this.names.get(v);
  }
}

/** Nodes needed for `outputs`, in build order; a node's subgraphs need what they capture. */
export function liveNodes(g: Graph, outputs: readonly Value[]): AnyNode[] {
  const live = new Set<AnyNode>();
  const stack = [...outputs];
  const seen = new Set<Value>();
  while (stack.length) {
    const v = stack.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    const node = v.producer;
    if (!node || live.has(node)) continue;
    live.add(node);
    for (const x of node.inputs) if (x) stack.push(x);
    if (node.captures) stack.push(...node.captures);
  }
  return g.nodes.filter((n) => live.has(n));
}

function attrProto(name: string, a: Attr, subgraph: (g: Graph) => GraphProto): AttributeProto {
  switch (a.kind) {
    case 'int':
      return { name, type: AttributeType.INT, i: a.v };
    case 'float':
      return { name, type: AttributeType.FLOAT, f: a.v };
    case 'ints':
      return { name, type: AttributeType.INTS, ints: [...a.v] };
    case 'floats':
      return { name, type: AttributeType.FLOATS, floats: [...a.v] };
    case 'string':
      return { name, type: AttributeType.STRING, s: new TextEncoder().encode(a.v) };
    case 'graph':
      return { name, type: AttributeType.GRAPH, g: subgraph(a.v) };
  }
}

function graphProto(g: Graph, namer: Namer, opts: SerializeOptions): GraphProto {
  const dyn = opts.dynamicBatch ?? false;
  const nodes = liveNodes(g, g.outputs);
  const initializer: TensorProto[] = [];
  const input: ValueInfoProto[] = g.inputs.map((v) => valueInfo(v, namer.name(v), dyn));
  // Declared output names are taken before any subgraph's names are made.
  for (const v of g.outputs) namer.name(v);
  const used = new Set<Value>();
  for (const n of nodes) for (const x of [...n.inputs, ...(n.captures ?? [])]) if (x) used.add(x);
  for (const v of g.outputs) used.add(v);

  for (const p of g.params) {
    if (!used.has(p.value)) continue;
    const name = namer.name(p.value);
    const w = opts.paramsAsInputs ? undefined : opts.weights?.get(name);
    if (w) initializer.push(tensorProto(name, p.value.shape, w, 'float32'));
    else input.push(valueInfo(p.value, name, false));
  }
  for (const [v, data] of g.consts) {
    if (used.has(v)) initializer.push(tensorProto(namer.name(v), v.shape, data, v.dtype));
  }

  const consumed = new Set<Value>(used);
  const nodeProtos: NodeProto[] = nodes.map((n) => {
    let outs = n.outputs.map((o) => namer.name(o));
    if (n.optionalOutputs) {
      let last = n.outputs.length - 1;
      while (last > 0 && !consumed.has(n.outputs[last]!)) last--;
      outs = outs.slice(0, last + 1);
    }
    const attrs = Object.entries(n.onnxAttrs()).map(([k, a]) => attrProto(k, a, (sub) => graphProto(sub, namer, opts)));
    return {
      input: n.inputs.map((x) => (x ? namer.name(x) : '')),
      output: outs,
      name: `${n.scope ? n.scope + '/' : ''}${n.op}_${namer.name(n.outputs[0]!)}`,
      opType: n.op,
      ...(n.domain ? { domain: n.domain } : {}),
      ...(attrs.length ? { attribute: attrs } : {}),
    };
  });
  // Trailing empty optional inputs are dropped, as ONNX allows.
  for (const np of nodeProtos) while (np.input.length && np.input[np.input.length - 1] === '') np.input.pop();

  const outputs = new Set(g.outputs);
  const valueInfos: ValueInfoProto[] = [];
  if (opts.shapes) {
    for (const n of nodes)
      for (const o of n.outputs) if (consumed.has(o) && !outputs.has(o)) valueInfos.push(valueInfo(o, namer.name(o), dyn));
  }
  return {
    name: g.name,
    node: nodeProtos,
    initializer,
    input,
    output: g.outputs.map((v) => valueInfo(v, namer.name(v), dyn)),
    ...(valueInfos.length ? { valueInfo: valueInfos } : {}),
  };
}

export function toModel(g: Graph, opts: SerializeOptions = {}): ModelProto {
  const opset = opts.opset ?? DEFAULT_OPSET;
  return {
    irVersion: opset >= 18 ? 8 : 8,
    opsetImport: [{ domain: '', version: opset }],
    producerName: 'ilsvrc',
    producerVersion: '0.1.0',
    graph: graphProto(g, new Namer(), opts),
    ...(opts.docString ? { docString: opts.docString } : {}),
    ...(opts.metadata ? { metadataProps: Object.entries(opts.metadata).map(([key, value]) => ({ key, value })) } : {}),
  };
}
