/** Helpers shared by the providers' graph rewrites (src/runtime/nchwc.ts, src/runtime/unpool.ts). */
import type { GraphProto, NodeProto } from '../onnx/proto.js';

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
