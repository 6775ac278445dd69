/**
 * The network a visualisation looks into: a graph builder (shapes are static, so one graph per batch
 * size) and its weights, from a training checkpoint, an exported ONNX file, or any hand-built graph.
 * Layers are named as `summary` names them; probes are inference sessions whose outputs are the
 * layer values a picture needs (or reductions of them, so large layers never leave ORT whole).
 */
import { buildModel, type ModelOptions } from '../zoo/index.js';
import type { AnyNode, Graph, Value } from '../graph/graph.js';
import { liveNodes, toModel } from '../graph/serialize.js';
import { identity } from '../ops/elementwise.js';
import { topLevel } from '../graph/summary.js';
import { liveParams } from '../zoo/export.js';
import { createDeviceSession } from '../runtime/device.js';
import type { OrtSession } from '../runtime/ort.js';
import { readTrained, zooModel } from '../trained/inference.js';
import type { DataIdentity, EvalRecipe } from '../data/index.js';
import { expected, UsageError } from '../util/errors.js';

/** One build of the network: the graph, its image input and its logits. */
export interface NetworkGraph {
  graph: Graph;
  input: Value;
  logits: Value;
}

export interface Network {
  /** Model name for messages ("vgg-a", or a test network's name). */
  name: string;
  build(batch: number): NetworkGraph;
  weights: ReadonlyMap<string, Float32Array>;
  channels: number;
  inputSize: number;
  numClasses: number;
  classes: string[] | undefined;
  /** How its images are viewed (as evaluate and predict view them): a centre crop, or the whole image. */
  view: 'center' | 'none';
  /** The data it learned from, when its file says (visualize top's default --data). */
  data?: DataIdentity;
  /** ORT intra-op threads (undefined: all cores). */
  threads?: number;
}

/** A zoo model with the given weights. */
export function zooNetwork(
  model: string,
  options: ModelOptions,
  weights: ReadonlyMap<string, Float32Array>,
  classes?: string[],
  view: EvalRecipe = 'center',
  data?: DataIdentity,
): Network {
  return {
    name: model,
    build: (batch) => {
      const b = buildModel(model, { ...options, aux: false }, { training: false, batch });
      return { graph: b.graph, input: b.input, logits: b.logits };
    },
    weights,
    channels: options.channels,
    inputSize: options.inputSize,
    numClasses: options.classes,
    classes,
    // The views of one image each; a file trained on whole images is looked at whole.
    view: view === 'none' ? 'none' : 'center',
    ...(data ? { data } : {}),
  };
}

/** A checkpoint (.safetensors) or an ONNX file exported by ilsvrc, read and checked by `readTrained`. */
export async function openNetwork(file: string, labels?: string): Promise<Network> {
  const t = zooModel(await readTrained(file, labels !== undefined ? { labels } : {}), 'visualize');
  return zooNetwork(t.model, t.options, t.weights, t.classes, t.view, t.data);
}

interface Layer {
  /** As `summary` names it: a top-level layer ("conv1") or, as `summary --detail`, a sub-layer ("inception_3a/3x3"). */
  name: string;
  /** The layer's last output (after its ReLU, when it has one). */
  value: Value;
  /** The layer's nodes in build order. */
  nodes: AnyNode[];
}

/** Layers feeding the logits, top-level first (in order), then sub-layers under their full scope. */
export function layers(ng: NetworkGraph): Layer[] {
  const top = new Map<string, Layer>();
  const sub = new Map<string, Layer>();
  for (const node of liveNodes(ng.graph, [ng.logits])) {
    const out = node.outputs[0];
    if (!node.scope || !out) continue;
    for (const [map, name] of [
      [top, topLevel(node.scope)],
      [sub, node.scope],
    ] as const) {
      const l = map.get(name);
      if (l) {
        l.value = out;
        l.nodes.push(node);
      } else {
        map.set(name, { name, value: out, nodes: [node] });
      }
    }
  }
  return [...top.values(), ...[...sub.values()].filter((l) => !top.has(l.name))];
}

/** Layer names for messages: the top-level ones (sub-layers are accepted too). */
export function layerNames(ng: NetworkGraph): string[] {
  const all = layers(ng);
  return all.filter((l) => !l.name.includes('/')).map((l) => l.name);
}

/** The layer called `name`, or a usage error listing the valid names. */
export function findLayer(ng: NetworkGraph, name: string, net: string, o: { flag?: string; spatial?: boolean } = {}): Layer {
  const all = layers(ng);
  const ok = (l: Layer) => !o.spatial || l.value.rank === 4;
  const found = all.find((l) => l.name === name);
  if (found && ok(found)) return found;
  const valid = all.filter((l) => !l.name.includes('/') && ok(l)).map((l) => l.name);
  const subs = all.some((l) => l.name.includes('/')) ? ' or a sub-layer as `summary --detail` names it' : '';
  const what = o.spatial ? 'a layer with feature maps' : 'a layer';
  throw expected(`${what} of ${net} (${valid.join(', ')})${subs}`, o.flag ?? '--layer', name);
}

/** The last layer whose output still has feature maps bigger than 1×1 (ZFNet's "layer 5"). */
export function lastSpatialLayer(ng: NetworkGraph): Layer {
  const top = layers(ng).filter((l) => !l.name.includes('/'));
  const spatial = top.filter((l) => l.value.rank === 4 && (l.value.shape[2] ?? 1) * (l.value.shape[3] ?? 1) > 1);
  const last = spatial[spatial.length - 1] ?? top[0];
  if (!last) throw new UsageError('Expected a network with at least one layer but found none');
  return last;
}

/** The logits as a layer (for saliency on a class). */
export function logitsLayer(ng: NetworkGraph): Layer {
  const all = layers(ng);
  return all.find((l) => l.value === ng.logits) ?? { name: 'logits', value: ng.logits, nodes: [] };
}

/**
 * An inference session over `outputs` (named values of `ng.graph`, added as graph outputs). Only the
 * weights those outputs need are written, so a probe of conv1 does not carry the classifier.
 */
export async function compile(net: Network, ng: NetworkGraph, outputs: Record<string, Value>): Promise<OrtSession> {
  const values: Value[] = [];
  for (const [name, v] of Object.entries(outputs)) {
    // A value that is already an output (or a layer that ends in a graph input) gets its own node.
    values.push(ng.graph.output(v.kind === 'node' && !ng.graph.outputs.includes(v) ? v : identity(v), name));
  }
  for (const p of liveParams(ng.graph, values)) {
    const name = p.name;
    const w = net.weights.get(name);
    if (!w || w.length !== p.value.size)
      throw new UsageError(
        `Expected weights for ${name} (${p.value.size} values) in ${net.name} but ${w ? `found ${w.length}` : 'found none'}`,
      );
  }
  // Lowered as the CPU runs it: the backward projections hold gradient composites.
  return createDeviceSession(toModel(ng.graph, { weights: net.weights }), net.threads ? { threads: net.threads } : {});
}
