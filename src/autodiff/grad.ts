/**
 * Reverse-mode differentiation over a built graph: walks the nodes backwards from a scalar loss and
 * asks each node's vjp rule for its inputs' gradients, emitting the backward pass as ordinary nodes
 * into the same graph. Gradients that fan in are summed. Only values that depend on a requested
 * parameter get gradients, so frozen layers and the input cost nothing.
 */
import { formatShape } from '../graph/dtype.js';
import { GraphError, type AnyNode, type Value, type VjpContext } from '../graph/graph.js';
import { add } from '../ops/elementwise.js';

/** A backward rule that stands in for an op's own vjp (same contract as OpDef.vjp). */
export type VjpRule = (node: AnyNode, dy: readonly (Value | undefined)[], ctx: VjpContext) => (Value | undefined)[];

interface GradientOptions {
  /**
   * Rules by op type used instead of the ops' own: visualisation sweeps (deconvnet, guided backprop)
   * differ from the true gradient only in Relu's rule.
   */
  rules?: ReadonlyMap<string, VjpRule>;
}

export function gradients(loss: Value, wrt: readonly Value[], o: GradientOptions = {}): Map<Value, Value> {
  const g = loss.graph;
  if (loss.size !== 1) throw new GraphError('', `the loss must be a scalar, got ${formatShape(loss.shape)}`);
  const nodes = [...g.nodes]; // snapshot: the sweep appends backward nodes

  // Values that depend on any requested parameter.
  const depends = new Set<Value>(wrt);
  for (const n of nodes) {
    if (n.inputs.some((x) => x && depends.has(x))) for (const o of n.outputs) depends.add(o);
  }
  if (!depends.has(loss)) throw new GraphError('', 'the loss does not depend on any trainable parameter');

  const ctx: VjpContext = { needsGrad: (v) => depends.has(v) };
  const grads = new Map<Value, Value>();
  grads.set(loss, g.floats([1], loss.shape, loss.dtype));

  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i]!;
    const dys = n.outputs.map((o) => grads.get(o));
    if (dys.every((d) => d === undefined)) continue;
    if (!n.inputs.some((x) => x && depends.has(x))) continue;
    const rule = o.rules?.get(n.op);
    if (!rule && !n.differentiable)
      throw new GraphError(n.scope, `${n.op} has no gradient rule but a parameter's gradient flows through it`);
    const dxs = g.scope(`grad/${n.scope}`, () => (rule ? rule(n, dys, ctx) : n.vjp(dys, ctx)));
    n.inputs.forEach((x, k) => {
      const dx = dxs[k];
      if (!x || !dx || !depends.has(x)) return;
      if (dx.shape.length !== x.shape.length || dx.shape.some((d, j) => d !== x.shape[j])) {
        throw new GraphError(
          n.scope,
          `${n.op} gradient for input ${k} has shape ${formatShape(dx.shape)}, expected ${formatShape(x.shape)}`,
        );
      }
      const prev = grads.get(x);
      grads.set(x, prev ? g.scope(`grad/${n.scope}`, () => add(prev, dx)) : dx);
    });
  }

  const out = new Map<Value, Value>();
  for (const p of wrt) {
    const d = grads.get(p);
    if (d) out.set(p, d);
  }
  return out;
}
