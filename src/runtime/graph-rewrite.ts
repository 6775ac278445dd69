/** Helpers shared by the providers' graph rewrites (src/runtime/nchwc.ts, src/runtime/unpool.ts). */
import { AttributeType, declaredDims, TensorDataType, type GraphProto, type NodeProto } from '../onnx/proto.js';

/**
 * What a rewrite looks up about one graph: each value's declared shape, the node that makes it,
 * whether it is an initializer, and the values of int64 initializers. A subgraph's scope also sees
 * its outer graph's shapes and initializers.
 */
export class GraphScope {
  private readonly shapes: Map<string, number[]>;
  private readonly types: Map<string, number>;
  private readonly initializers: Set<string>;
  private readonly producers = new Map<string, NodeProto>();
  private readonly int64s = new Map<string, number[]>();

  constructor(g: GraphProto, outer?: GraphScope) {
    this.shapes = new Map(outer?.shapes);
    this.types = new Map(outer?.types);
    this.initializers = new Set(outer?.initializers);
    for (const v of [...g.input, ...(g.valueInfo ?? []), ...g.output]) {
      this.shapes.set(v.name, declaredDims(v));
      const t = v.type?.tensorType?.elemType;
      if (t !== undefined) this.types.set(v.name, t);
    }
    for (const t of g.initializer ?? []) {
      this.initializers.add(t.name);
      this.shapes.set(t.name, t.dims ?? []);
      this.types.set(t.name, t.dataType);
      if (t.dataType !== TensorDataType.INT64) continue;
      if (t.int64Data) this.int64s.set(t.name, t.int64Data.map(Number));
      else if (t.rawData && t.rawData.byteLength % 8 === 0) {
        // A copy: raw bytes may be a view into a larger (Buffer pool) allocation, at any offset.
        const bytes = new Uint8Array(t.rawData.byteLength);
        bytes.set(t.rawData);
        this.int64s.set(t.name, Array.from(new BigInt64Array(bytes.buffer), Number));
      }
    }
    for (const n of g.node) for (const o of n.output) if (o) this.producers.set(o, n);
  }

  /** The declared dims of `name`, where declared. */
  shape(name: string): readonly number[] | undefined {
    return this.shapes.get(name);
  }

  /** The declared ONNX element type of `name`, where declared. */
  elemType(name: string): number | undefined {
    return this.types.get(name);
  }

  producer(name: string): NodeProto | undefined {
    return this.producers.get(name);
  }

  isInitializer(name: string): boolean {
    return this.initializers.has(name);
  }

  /** The values of an int64 initializer of this graph. */
  ints(name: string): number[] | undefined {
    return this.int64s.get(name);
  }
}

/** `n` with each of its subgraphs (Loop bodies) passed through `rewrite`. */
export function withSubgraphs(n: NodeProto, rewrite: (g: GraphProto) => GraphProto): NodeProto {
  return n.attribute?.some((a) => a.g) ? { ...n, attribute: n.attribute.map((a) => (a.g ? { ...a, g: rewrite(a.g) } : a)) } : n;
}

/** A Constant node `name` whose output, also `name`, is the int64 vector `values`. */
export function constInts(name: string, values: readonly number[]): NodeProto {
  return { opType: 'Constant', name, input: [], output: [name], attribute: [{ name: 'value_ints', type: AttributeType.INTS, ints: [...values] }] };
}

/** Names a graph's nodes read, its subgraphs' included (a subgraph may read an outer value), and its outputs. */
export function readNames(g: GraphProto, into = new Set<string>()): Set<string> {
  for (const n of g.node) {
    for (const i of n.input) if (i) into.add(i);
    for (const a of n.attribute ?? []) if (a.g) readNames(a.g, into);
  }
  for (const v of g.output) into.add(v.name);
  return into;
}

/**
 * `g` without those of `candidates` (nodes a rewrite stopped reading) that nothing reads any more,
 * repeated until none is left, and without the initializers only they read (ONNX Runtime warns
 * of unused initializers).
 */
export function dropUnread(g: GraphProto, candidates: ReadonlySet<NodeProto>): GraphProto {
  if (!candidates.size) return g;
  let node = g.node;
  const dropped = new Set<string>();
  for (let size = -1; size !== node.length; ) {
    size = node.length;
    const read = readNames({ ...g, node });
    node = node.filter((n) => {
      const keep = !candidates.has(n) || n.output.some((o) => read.has(o));
      if (!keep) for (const i of n.input) dropped.add(i);
      return keep;
    });
  }
  const read = readNames({ ...g, node });
  const initializer = g.initializer?.filter((t) => !dropped.has(t.name) || read.has(t.name));
  return { ...g, node, ...(initializer ? { initializer } : {}) };
}
