/**
 * Which ops each execution provider has kernels for, as measured on onnxruntime-node 1.30 (see the
 * table in the design notes). A graph meant for a provider should use only its ops; the CPU provider
 * runs everything ilsvrc emits.
 */
import type { GraphProto, ModelProto, NodeProto } from '../onnx/proto.js';

export type Provider = 'cpu' | 'cuda' | 'webgpu';

/** Ops (or op uses) without a kernel on a provider. "MaxPool:Indices" is MaxPool with its second output. */
const MISSING_KERNELS: Record<Provider, ReadonlySet<string>> = {
  cpu: new Set(),
  cuda: new Set(['SoftmaxCrossEntropyLoss', 'MaxUnpool', 'Col2Im']),
  webgpu: new Set([
    'SoftmaxCrossEntropyLoss',
    'MaxUnpool',
    'Col2Im',
    'Loop',
    'Dropout',
    'RandomUniformLike',
    'OneHot',
    'LRN',
    'MaxPool:Indices',
  ]),
};

function opKey(n: NodeProto): string {
  return n.opType === 'MaxPool' && n.output.length > 1 && n.output[1] ? 'MaxPool:Indices' : n.opType;
}

function visit(g: GraphProto, out: Map<string, number>): void {
  for (const n of g.node) {
    const k = opKey(n);
    out.set(k, (out.get(k) ?? 0) + 1);
    for (const a of n.attribute ?? []) if (a.g) visit(a.g, out);
  }
}

/** Op uses in a model (subgraphs included), with counts. */
export function opUses(model: ModelProto): Map<string, number> {
  const out = new Map<string, number>();
  visit(model.graph, out);
  return out;
}

/** The op uses of a model that would not run on `provider` (they would fall back to the CPU). */
export function unsupportedOps(model: ModelProto, provider: Provider): string[] {
  return [...opUses(model).keys()].filter((op) => MISSING_KERNELS[provider].has(op)).sort();
}
