/**
 * Lowerings: how a provider runs what the graph builder emits. Each is a small rule (`name`,
 * `match`, `applies`, `replace`, in the spirit of onnxscript's rewriter and tinygrad's pattern
 * matcher); a provider's table is a list of stages, each stage a list of rules tried in order on
 * every node (subgraphs included). A stage reads the graph as the previous stage left it, so a rule
 * may rely on the shapes and producers of what an earlier stage emitted.
 */
import { COMPOSITE_DOMAIN } from '../../graph/graph.js';
import type { GraphProto, ModelProto, NodeProto, ValueInfoProto } from '../../onnx/proto.js';
import { GraphScope, withSubgraphs } from '../graph-rewrite.js';

export { COMPOSITE_DOMAIN };

/** What a lowering may depend on besides the graph: the CPU's NCHWc channel block (0: none). */
export interface LowerParams {
  block: number;
}

interface RuleContext {
  scope: GraphScope;
  params: LowerParams;
}

interface Replacement {
  nodes: NodeProto[];
  /** Declared types of new values, for the rules of later stages that read shapes. */
  valueInfo?: ValueInfoProto[];
}

export interface Rule {
  readonly name: string;
  /** The node's kind: cheap, no lookups. */
  match(n: NodeProto): boolean;
  /** Whether this node, in this graph and with these parameters, takes the rule. */
  applies(n: NodeProto, ctx: RuleContext): boolean;
  replace(n: NodeProto, ctx: RuleContext): Replacement;
}

export type Stage = readonly Rule[];
export type Table = readonly Stage[];

/** `op` in `domain` ('' or absent for ONNX's own). */
export function isOp(n: NodeProto, op: string, domain = ''): boolean {
  return n.opType === op && (n.domain ?? '') === domain;
}

/** One stage over `model`, subgraphs included; the model itself when no rule applied. Counts applications per rule in `applied`. */
export function runStage(model: ModelProto, stage: Stage, params: LowerParams, applied = new Map<string, number>()): ModelProto {
  // Domains the new nodes use (com.microsoft.nchwc), each at version 1.
  const opsets = new Map<string, number>();
  let changed = 0;
  const rewrite = (g: GraphProto, outer?: GraphScope): GraphProto => {
    const scope = new GraphScope(g, outer);
    const ctx: RuleContext = { scope, params };
    const valueInfo: ValueInfoProto[] = [];
    const node = g.node.flatMap((n): NodeProto[] => {
      const m = withSubgraphs(n, (sub) => rewrite(sub, scope));
      const rule = stage.find((r) => r.match(m) && r.applies(m, ctx));
      if (!rule) return [m];
      const r = rule.replace(m, ctx);
      changed++;
      applied.set(rule.name, (applied.get(rule.name) ?? 0) + 1);
      if (r.valueInfo) valueInfo.push(...r.valueInfo);
      for (const d of r.nodes) if (d.domain && d.domain !== COMPOSITE_DOMAIN) opsets.set(d.domain, 1);
      return r.nodes;
    });
    return valueInfo.length ? { ...g, node, valueInfo: [...(g.valueInfo ?? []), ...valueInfo] } : { ...g, node };
  };
  const graph = rewrite(model.graph);
  if (!changed) return model;
  const missing = [...opsets].filter(([d]) => !model.opsetImport.some((o) => (o.domain ?? '') === d));
  return { ...model, graph, opsetImport: [...model.opsetImport, ...missing.map(([domain, version]) => ({ domain, version }))] };
}

/** Ops of `model` (subgraphs included) in the composite domain. */
export function composites(model: ModelProto): string[] {
  const out = new Set<string>();
  const visit = (g: GraphProto): void => {
    for (const n of g.node) {
      if (n.domain === COMPOSITE_DOMAIN) out.add(n.opType);
      for (const a of n.attribute ?? []) if (a.g) visit(a.g);
    }
  };
  visit(model.graph);
  return [...out].sort();
}

/**
 * `model` through every stage of `table`. A composite left over is a bug (no provider runs one):
 * an error naming it, never a model handed to ONNX Runtime as it is.
 */
export function lower(model: ModelProto, table: Table, params: LowerParams, applied?: Map<string, number>): ModelProto {
  for (const stage of table) model = runStage(model, stage, params, applied);
  const left = composites(model);
  if (left.length) throw new Error(`${model.graph.name || 'the graph'} still has ${left.join(', ')} (${COMPOSITE_DOMAIN}) after lowering`);
  return model;
}
