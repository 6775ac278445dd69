/**
 * A graph's nodes made again in another graph (a Loop body) with its inputs and parameters bound to
 * values there: the copy is wired by identity and its shapes are inferred again where it lands.
 */
import type { TypedArray } from './dtype.js';
import { GraphError, OpNode, type Graph, type Value } from './graph.js';
import { liveNodes } from './serialize.js';

/**
 * Makes the nodes of `src` that `wanted` needs inside `into`, in build order and under their own
 * scopes. `bind` gives the value standing for each input or parameter of `src` that they read;
 * constants are copied. Returns each value of `src` made or bound, mapped to its value in `into`.
 */
export function inline(src: Graph, into: Graph, bind: ReadonlyMap<Value, Value>, wanted: readonly Value[]): Map<Value, Value> {
  const map = new Map(bind);
  const consts: ReadonlyMap<Value, TypedArray> = src.consts;
  const at = (v: Value): Value => {
    const known = map.get(v);
    if (known) return known;
    const data = consts.get(v);
    if (!data) throw new GraphError(into.scopeName, `${v} of ${src.name} has no value bound in ${into.name}`);
    const c = into.constant(data, v.shape, v.dtype);
    map.set(v, c);
    return c;
  };
  for (const n of liveNodes(src, wanted)) {
    if (!(n instanceof OpNode)) throw new GraphError(n.scope, `${n.op} cannot be made again in another graph`);
    const outs = into.scope(n.scope, () =>
      into.add(
        n.def,
        n.inputs.map((x) => x && at(x)),
        n.attrs,
      ),
    );
    n.outputs.forEach((o, i) => map.set(o, outs[i]!));
  }
  for (const v of wanted) at(v);
  return map;
}
