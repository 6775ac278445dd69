/**
 * Per-layer analysis of a built graph: output shape, parameters, multiply–accumulates, and the
 * receptive field and jump of each layer's output. Pure: it reads the graph and allocates no weights,
 * so VGG-E at full width is analysed in milliseconds.
 */
import type { AnyNode, Graph, Value } from './graph.js';
import { liveNodes } from './serialize.js';

/**
 * Receptive field (in input pixels) and jump (input pixels between neighbouring outputs), along H.
 * The field is the nominal one: padding counts, so deep layers may exceed the image.
 */
interface Field {
  rf: number;
  jump: number;
}

export interface LayerRow {
  /** The scope: a top-level layer ("conv1", "inception_3a") or, with `detail`, a sub-layer. */
  name: string;
  /** Distinct op types in build order. */
  ops: string[];
  /** Shape of the layer's last output, without the batch dimension. */
  output: number[];
  params: number;
  macs: number;
  rf: number;
  jump: number;
  /** Kernel and stride along H, when the layer has exactly one sliding window. */
  kernel?: number;
  stride?: number;
}

export interface Summary {
  /** The first graph input's shape without the batch dimension. */
  input: number[];
  params: number;
  macs: number;
  layers: LayerRow[];
}

export interface SummaryOptions {
  /** Outputs to analyse (default: the graph's outputs); nodes that feed none are left out. */
  outputs?: readonly Value[];
  /** One row per sub-layer (full scope) instead of per top-level layer. */
  detail?: boolean;
}

/**
 * Fields of every value the nodes produce, from the graph inputs (rf 1, jump 1). A window of kernel
 * k, dilation d and stride s gives rf + (k−1)·d·jump and jump·s; fully connected layers and global
 * pooling see the whole image (or keep a larger nominal field); joins (Concat, Add) take the max.
 */
function receptiveFields(graph: Graph, nodes: readonly AnyNode[]): Map<Value, Field> {
  const fields = new Map<Value, Field>();
  for (const v of graph.inputs) fields.set(v, { rf: 1, jump: 1 });
  const image = graph.inputs[0]?.shape[2] ?? 1;
  for (const node of nodes) {
    let rf = 0;
    let jump = 0;
    for (const x of node.inputs) {
      const f = x && fields.get(x);
      if (f) {
        rf = Math.max(rf, f.rf);
        jump = Math.max(jump, f.jump);
      }
    }
    if (jump === 0) continue; // reads only parameters and constants
    const w = node.window();
    if (w) {
      rf += ((w.kernel[0] ?? 1) - 1) * (w.dilations[0] ?? 1) * jump;
      jump *= w.strides[0] ?? 1;
    } else if (node.global) {
      // A 1×1 output has no neighbour to step to, so the jump is carried over unchanged.
      rf = Math.max(rf, image);
    }
    for (const y of node.outputs) fields.set(y, { rf, jump });
  }
  return fields;
}

/** The layer a scope belongs to: its first path segment ("inception_3a/3x3" → "inception_3a"). */
export function topLevel(scope: string): string {
  const i = scope.indexOf('/');
  return i < 0 ? scope : scope.slice(0, i);
}

export function summarize(graph: Graph, o: SummaryOptions = {}): Summary {
  const outputs = o.outputs ?? graph.outputs;
  const nodes = liveNodes(graph, outputs);
  const fields = receptiveFields(graph, nodes);
  const rows = new Map<string, { row: LayerRow; last: Value | undefined; windows: number }>();
  const counted = new Set<Value>();
  for (const node of nodes) {
    const name = (o.detail ? node.scope : topLevel(node.scope)) || node.op;
    let entry = rows.get(name);
    if (!entry) {
      entry = { row: { name, ops: [], output: [], params: 0, macs: 0, rf: 0, jump: 0 }, last: undefined, windows: 0 };
      rows.set(name, entry);
    }
    const { row } = entry;
    if (!row.ops.includes(node.op)) row.ops.push(node.op);
    for (const x of node.inputs) {
      // A parameter read by several nodes (shared weights) counts once, where it is first used; buffers are not parameters.
      if (x?.kind === 'param' && !counted.has(x) && !graph.isBuffer(x)) {
        counted.add(x);
        row.params += x.size;
      }
    }
    row.macs += node.macs();
    const w = node.window();
    if (w) {
      entry.windows++;
      row.kernel = w.kernel[0] ?? 1;
      row.stride = w.strides[0] ?? 1;
    }
    if (node.outputs[0]) entry.last = node.outputs[0];
  }
  const layers: LayerRow[] = [];
  for (const { row, last, windows } of rows.values()) {
    if (last) {
      row.output = last.shape.slice(1);
      const f = fields.get(last);
      row.rf = f?.rf ?? 0;
      row.jump = f?.jump ?? 0;
    }
    // Several windows (an inception block, conv + reduce) have no single kernel to show.
    if (windows !== 1) {
      delete row.kernel;
      delete row.stride;
    }
    layers.push(row);
  }
  return {
    input: graph.inputs[0]?.shape.slice(1) ?? [],
    params: layers.reduce((n, l) => n + l.params, 0),
    macs: layers.reduce((n, l) => n + l.macs, 0),
    layers,
  };
}

/**
 * Multiply-adds of the convolutions and fully connected layers up to `outputs`, for inference
 * (forward) and for one training step: forward, weight gradients, and input gradients wherever a
 * layer's input depends on a parameter (never for the first layer, whose input is the image).
 */
export function trainingMacs(graph: Graph, outputs: readonly Value[]): { forward: number; training: number } {
  const dependsOnParam = new Set<Value>();
  let forward = 0;
  let training = 0;
  for (const n of liveNodes(graph, outputs)) {
    const m = n.macs();
    if (m > 0) {
      const data = n.inputs[0];
      const hasParam = n.inputs.some((x) => x?.kind === 'param');
      forward += m;
      training += m * (1 + (hasParam ? 1 : 0) + (data && dependsOnParam.has(data) ? 1 : 0));
    }
    if (n.inputs.some((x) => x && (x.kind === 'param' || dependsOnParam.has(x)))) for (const o of n.outputs) dependsOnParam.add(o);
  }
  return { forward, training };
}
