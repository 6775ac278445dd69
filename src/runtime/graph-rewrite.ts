/** What the lowerings (src/runtime/lower/) read of a graph, and the Constant nodes they write. */
import { AttributeType, declaredDims, type GraphProto, type NodeProto } from '../onnx/proto.js';

/**
 * What a lowering looks up about one graph: each value's declared shape and element type, and
 * whether it is an initializer. A subgraph's scope also sees its outer graph's.
 */
export class GraphScope {
  private readonly shapes: Map<string, number[]>;
  private readonly types: Map<string, number>;
  private readonly initializers: Set<string>;

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
    }
  }

  /** The declared dims of `name`, where declared. */
  shape(name: string): readonly number[] | undefined {
    return this.shapes.get(name);
  }

  /** The declared ONNX element type of `name`, where declared. */
  elemType(name: string): number | undefined {
    return this.types.get(name);
  }

  isInitializer(name: string): boolean {
    return this.initializers.has(name);
  }
}

/** `n` with each of its subgraphs (Loop bodies) passed through `rewrite`. */
export function withSubgraphs(n: NodeProto, rewrite: (g: GraphProto) => GraphProto): NodeProto {
  return n.attribute?.some((a) => a.g) ? { ...n, attribute: n.attribute.map((a) => (a.g ? { ...a, g: rewrite(a.g) } : a)) } : n;
}

/** A Constant node `name` whose output, also `name`, is the int64 vector `values`. */
export function constInts(name: string, values: readonly number[]): NodeProto {
  return {
    opType: 'Constant',
    name,
    input: [],
    output: [name],
    attribute: [{ name: 'value_ints', type: AttributeType.INTS, ints: [...values] }],
  };
}
