/**
 * An inference ONNX file from a built model and its weights: dynamic batch, one output named
 * `logits`, and metadata saying which model and options made it (so a reader can rebuild the graph).
 * Weights come from a seed (`initParams`) or a training checkpoint (`checkpointWeights`).
 */
import type { BuiltModel } from './index.js';
import { formatShape, sizeOf } from '../graph/dtype.js';
import type { Graph, Param, Value } from '../graph/graph.js';
import { liveNodes, toModel } from '../graph/serialize.js';
import { encodeModel } from '../onnx/proto.js';
import { UsageError } from '../util/errors.js';

export type Opset = 17 | 18;

export interface ExportOptions {
  opset?: Opset;
  /** More metadata_props entries (the model card: src/trained/card.ts). */
  metadata?: Readonly<Record<string, string>>;
}

/** Metadata keys of exported models (docs/file-formats.md); the exporter writes model and options. */
export const METADATA = {
  model: 'ilsvrc.model',
  options: 'ilsvrc.options',
  classes: 'ilsvrc.classes',
  view: 'ilsvrc.view',
  input: 'ilsvrc.input',
  data: 'ilsvrc.data',
} as const;

/** The graph's `logits` output, declared on first use (aux heads are left out: they only train). */
function logitsOutput(built: BuiltModel): Value {
  if (built.graph.training) throw new Error(`${built.spec.name}: export needs an inference graph (built with training: false)`);
  if (!built.graph.outputs.includes(built.logits)) built.graph.output(built.logits, 'logits');
  return built.logits;
}

/** The parameters the logits depend on (an aux head's are not), in declaration order. */
export function inferenceParams(built: BuiltModel): Param[] {
  return liveParams(built.graph, [logitsOutput(built)]);
}

export function liveParams(graph: Graph, outputs: readonly Value[]): Param[] {
  const used = new Set<Value>();
  for (const n of liveNodes(graph, outputs)) for (const x of n.inputs) if (x?.kind === 'param') used.add(x);
  return graph.params.filter((p) => used.has(p.value));
}

export function exportInferenceModel(built: BuiltModel, weights: ReadonlyMap<string, Float32Array>, o: ExportOptions = {}): Uint8Array {
  const logits = logitsOutput(built);
  for (const p of liveParams(built.graph, [logits])) {
    const name = p.name;
    const w = weights.get(name);
    // A missing weight would silently become a graph input; a short one, a corrupt initializer.
    if (!w) throw new Error(`no weights for parameter ${name}`);
    if (w.length !== p.value.size)
      throw new Error(`weights for ${name} have ${w.length} values, its shape ${formatShape(p.value.shape)} needs ${p.value.size}`);
  }
  const model = toModel(built.graph, {
    opset: o.opset ?? 18,
    dynamicBatch: true,
    weights,
    docString: `${built.spec.title} — ${built.spec.paper} (${built.spec.year})`,
    metadata: { ...o.metadata, [METADATA.model]: built.spec.name, [METADATA.options]: JSON.stringify(built.options) },
  });
  return encodeModel(model);
}

interface CheckpointWeights {
  weights: Map<string, Float32Array>;
  /** Tensors of the checkpoint that are not parameters of the graph (e.g. optimizer state). */
  ignored: string[];
}

/** What a file's tensors were checked against, for the message when they do not fit. */
const AGAINST_FLAGS = 'this model (were the model options the same as in training?)';

/**
 * Takes the tensors named like the parameters. Every parameter must be there as float32, with its
 * shape or flat with its size (the trainer stores flat buffers); otherwise one error lists what is
 * missing and what differs (usually the model options differ from the ones used in training).
 * `against` says which model the tensors should fit, e.g. the one the file's own metadata describes.
 */
/**
 * Tensors by name as a weights file holds them (the structure of a safetensors file's: the dtype's
 * name, a shape, the values); only float32 ones ("F32", data a Float32Array) can be weights.
 */
export interface NamedTensors {
  tensors: Readonly<Record<string, { dtype: string; shape: readonly number[]; data: ArrayLike<number | bigint> }>>;
}

export function checkpointWeights(params: readonly Param[], ckpt: NamedTensors, file: string, against = AGAINST_FLAGS): CheckpointWeights {
  const weights = new Map<string, Float32Array>();
  const missing: string[] = [];
  const differ: string[] = [];
  for (const p of params) {
    const name = p.name;
    const t = ckpt.tensors[name];
    if (!t) {
      missing.push(name);
    } else if (t.dtype !== 'F32') {
      differ.push(`${name} is ${t.dtype}, expected F32`);
    } else if (!fits(t.shape, p.value.shape)) {
      differ.push(
        t.shape.length === 1 && p.value.shape.length !== 1
          ? `${name} has ${t.shape[0]} values, the graph's ${formatShape(p.value.shape)} needs ${p.value.size}`
          : `${name} is ${formatShape(t.shape)}, the graph has ${formatShape(p.value.shape)}`,
      );
    } else {
      weights.set(name, t.data as Float32Array); // an F32 tensor's data is a Float32Array
    }
  }
  const names = new Set(params.map((p) => p.name));
  const ignored = Object.keys(ckpt.tensors).filter((n) => !names.has(n));
  if (missing.length || differ.length) {
    const list = (xs: readonly string[]) => (xs.length > 4 ? `${xs.slice(0, 4).join(', ')} and ${xs.length - 4} more` : xs.join(', '));
    const parts = [
      ...(missing.length ? [`missing ${list(missing)}`] : []),
      ...(differ.length ? [`${list(differ)}`] : []),
      ...(ignored.length && missing.length ? [`not in the graph: ${list(ignored)}`] : []),
    ];
    throw new UsageError(`${file} does not fit ${against}: ${parts.join('; ')}`);
  }
  return { weights, ignored };
}

function fits(stored: readonly number[], wanted: readonly number[]): boolean {
  if (stored.length === 1) return stored[0] === sizeOf(wanted);
  return stored.length === wanted.length && stored.every((d, i) => d === wanted[i]);
}

/** A checkpoint's flat parameters as the tensors `checkpointWeights` reads. */
export function flatTensors(params: ReadonlyMap<string, Float32Array>): NamedTensors['tensors'] {
  const out: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
  for (const [name, data] of params) out[name] = { dtype: 'F32', shape: [data.length], data };
  return out;
}
