/**
 * The graphs a training session runs, all built from the zoo model plus autodiff:
 * - "step": forward + backward + optimizer update, fused (the fast path);
 * - "grad": forward + backward, returning gradients (runTrainStep, gradient accumulation);
 * - "outer": as "grad", except that each trainable fully connected weight's gradient (dYᵀ·X, an
 *   outer-product sum over the batch) is not formed: the layer's input X and output gradient dY come
 *   out instead, and the native update sums the product row by row as it applies it (src/optim/native.ts).
 *   The weight gradients of those layers, most of AlexNet's and VGG's parameters, then never exist
 *   whole, neither in ONNX Runtime nor copied out;
 * - "update": the optimizer alone (runOptimizerStep);
 * - "eval": forward, loss and hit counts, no dropout.
 * Parameters and optimizer state are graph inputs (fed each run); updated values are outputs named
 * "<name>.next". Buffers (batch norm's running statistics, Param.buffer) are fed as parameters are;
 * the training graphs ("step", "grad", "outer") also output the next value of each buffer a
 * training-mode layer moves ("<name>.next", TrainGraph.buffers), which the session adopts after the
 * run whichever way the update goes, and the Loop carries. "eval" reads them only.
 */
import { buildModel, type BuiltModel, type ModelOptions, type ModelSpec } from '../zoo/index.js';
import { gradients } from '../autodiff/grad.js';
import { Graph, OpNode, type AnyNode, type Param, type Value } from '../graph/graph.js';
import { identity } from '../ops/elementwise.js';
import { Gemm, type GemmAttrs } from '../ops/linalg.js';
import { add, scale } from '../ops/elementwise.js';
import { applyUpdate, hyperNames, stateSuffixes, type OptimizerConfig } from '../optim/optimizer.js';
import { crossEntropy, hitCounts } from './objective.js';

export type GraphKind = 'step' | 'grad' | 'outer' | 'update' | 'eval';

export interface TrainGraphOptions {
  model: string | ModelSpec;
  modelOptions: Partial<ModelOptions>;
  batch: number;
  optimizer: OptimizerConfig;
  labelSmoothing: number;
  /** Names of parameters to keep fixed (transfer learning). */
  frozen: ReadonlySet<string>;
  /** Weight of each auxiliary classifier's loss; undefined keeps the model's (GoogLeNet: 0.3). */
  auxWeight?: number | undefined;
  /** "outer" graphs: the fewest weights a fully connected layer needs to come out as X and dY (default OUTER_MIN_ELEMENTS). */
  outerMinElements?: number | undefined;
}

interface MaskInput {
  name: string;
  shape: readonly number[];
  rate: number;
}

/** A weight whose gradient is dYᵀ·X (Y = X·Wᵀ + b): the names of the X and dY outputs. */
interface OuterGrad {
  param: Param;
  x: string;
  dy: string;
}

export interface TrainGraph {
  kind: GraphKind;
  graph: Graph;
  built: BuiltModel | undefined;
  params: readonly Param[];
  trainable: readonly Param[];
  /** Buffers whose next values ("<name>.next") the graph outputs (training-mode batch norm). */
  buffers: readonly Param[];
  masks: MaskInput[];
  /** Optimizer state input names, in feed order (per trainable parameter, per suffix). */
  states: string[];
  hyper: string[];
  /** "outer" graphs: the weights whose gradients come out as factors (no "<name>.grad" output). */
  outer: OuterGrad[];
}

export const nextName = (name: string): string => `${name}.next`;
export const gradName = (name: string): string => `${name}.grad`;
export const stateName = (param: string, suffix: string): string => `${param}.${suffix}`;
const outerNames = (param: string): { x: string; dy: string } => ({ x: `${param}.x`, dy: `${param}.dy` });

function isGemm(n: AnyNode): n is OpNode<GemmAttrs> {
  return n instanceof OpNode && n.def === Gemm;
}

/**
 * Fully connected weights of fewer elements keep their gradient from the graph: ORT's GEMM forms it
 * faster than the native row-by-row sum (a Fashion-MNIST VGG-A step: 15.7 ms in the native sum
 * for its 1 M-weight fc7), and at under 8 MiB it costs little memory. AlexNet's and VGG's fc6–fc8
 * (4 M weights and more) keep the native sum.
 */
export const OUTER_MIN_ELEMENTS = 1 << 21;

/** Fully connected layers (Y = X·Wᵀ + b, X a matrix) whose weight W is trainable, used nowhere else and at least `min` elements. */
function fullyConnected(g: Graph, trainable: readonly Param[], min: number): { param: Param; x: Value; y: Value }[] {
  const byValue = new Map(trainable.map((p) => [p.value, p]));
  const uses = new Map<Value, number>();
  for (const n of g.nodes) for (const v of n.inputs) if (v) uses.set(v, (uses.get(v) ?? 0) + 1);
  const out: { param: Param; x: Value; y: Value }[] = [];
  for (const n of g.nodes) {
    if (!isGemm(n) || n.attrs.transA || !n.attrs.transB) continue;
    const [x, w] = n.inputs;
    const p = w && byValue.get(w);
    if (x && p && p.value.size >= min && uses.get(p.value) === 1 && x.rank === 2 && n.outputs[0])
      out.push({ param: p, x, y: n.outputs[0] });
  }
  return out;
}

function objective(built: BuiltModel, labels: Value, smoothing: number, auxWeight: number | undefined): Value {
  let loss = crossEntropy(built.logits, labels, smoothing);
  for (const a of built.aux) loss = add(loss, scale(crossEntropy(a.logits, labels, smoothing), auxWeight ?? a.weight));
  return loss;
}

export function buildTrainGraph(o: TrainGraphOptions, kind: GraphKind): TrainGraph {
  const training = kind === 'step' || kind === 'grad' || kind === 'outer';
  const modelOptions = { ...o.modelOptions, aux: training && (o.modelOptions.aux ?? false) };
  const built = buildModel(o.model, modelOptions, { training, batch: o.batch, frozen: o.frozen });
  const g = built.graph;
  for (const p of g.params) p.trainable = !p.buffer && !o.frozen.has(p.name);
  const trainable = g.params.filter((p) => p.trainable);
  const buffers = g.params.filter((p) => g.bufferUpdates.has(p.value));
  for (const b of buffers) g.output(g.bufferUpdates.get(b.value)!, nextName(b.name));
  const masks: MaskInput[] = [...g.dropoutMasks].map(([v, rate]) => ({ name: v.name ?? '', shape: v.shape, rate }));
  const labels = g.input('labels', 'int64', [o.batch]);
  const states: string[] = [];
  const hyper: string[] = [];
  const outer: OuterGrad[] = [];

  if (kind === 'update') throw new Error('use buildUpdateGraph for the optimizer alone');
  const loss = objective(built, labels, o.labelSmoothing, o.auxWeight);
  const hits = hitCounts(built.logits, labels);
  g.output(loss, 'loss');
  g.output(hits.top1, 'top1');
  g.output(hits.top5, 'top5');

  if (kind === 'eval') {
    g.output(identity(built.logits), 'logits');
  } else if (kind === 'outer') {
    const fc = fullyConnected(g, trainable, o.outerMinElements ?? OUTER_MIN_ELEMENTS);
    const factored = new Set(fc.map((f) => f.param));
    // The layers' outputs take the weights' place among the values differentiated for.
    const grads = gradients(loss, [...trainable.filter((p) => !factored.has(p)).map((p) => p.value), ...fc.map((f) => f.y)]);
    for (const p of trainable) if (!factored.has(p)) g.output(gradOf(grads, p), gradName(p.name));
    for (const f of fc) {
      const names = outerNames(f.param.name);
      const dy = grads.get(f.y);
      if (!dy) throw new Error(`no gradient reaches ${f.param.value.name}`);
      g.output(identity(f.x), names.x);
      g.output(dy.producer ? dy : identity(dy), names.dy);
      outer.push({ param: f.param, ...names });
    }
  } else {
    const grads = gradients(
      loss,
      trainable.map((p) => p.value),
    );
    if (kind === 'grad') {
      for (const p of trainable) g.output(gradOf(grads, p), gradName(p.name));
    } else {
      const hv = hyperNames(o.optimizer).map((n) => g.input(n, 'float32', []));
      hyper.push(...hyperNames(o.optimizer));
      emitUpdates(g, o.optimizer, trainable, (p) => gradOf(grads, p), hv, states);
    }
  }
  return { kind, graph: g, built, params: g.params, trainable, buffers, masks, states, hyper, outer };
}

function gradOf(grads: Map<Value, Value>, p: Param): Value {
  const d = grads.get(p.value);
  if (!d) throw new Error(`no gradient reaches ${p.value.name}`);
  // A graph output must be made by a node; a gradient can be the constant seed only for a bare loss.
  return d.producer ? d : identity(d);
}

function emitUpdates(
  g: Graph,
  c: OptimizerConfig,
  trainable: readonly Param[],
  gradFor: (p: Param) => Value,
  hyper: Value[],
  stateNames: string[],
): void {
  for (const p of trainable) {
    const name = p.name;
    const st = stateSuffixes(c).map((s) => {
      stateNames.push(stateName(name, s));
      return g.input(stateName(name, s), 'float32', p.value.shape);
    });
    const up = g.scope(`update/${name}`, () => applyUpdate(c, p.value, gradFor(p), st, hyper, p.isBias));
    g.output(up.param, nextName(name));
    up.states.forEach((v, i) => g.output(v, nextName(stateName(name, stateSuffixes(c)[i]!))));
  }
}

/** The optimizer alone: parameters, gradients ("<name>.grad") and state in, updated values out. */
export function buildUpdateGraph(o: TrainGraphOptions): TrainGraph {
  const ref = buildModel(o.model, { ...o.modelOptions, aux: o.modelOptions.aux ?? false }, { training: true, batch: 1 });
  const g = new Graph('update');
  const params: Param[] = [];
  for (const rp of ref.graph.params.filter((q) => !q.buffer)) {
    const v = g.param(rp.name, rp.value.shape, rp.init, rp.isBias);
    const p = g.params[g.params.length - 1]!;
    p.trainable = !o.frozen.has(rp.name);
    params.push(p);
    void v;
  }
  const trainable = params.filter((p) => p.trainable);
  const gradInputs = new Map<Param, Value>(trainable.map((p) => [p, g.input(gradName(p.name), 'float32', p.value.shape)]));
  const hv = hyperNames(o.optimizer).map((n) => g.input(n, 'float32', []));
  const states: string[] = [];
  emitUpdates(g, o.optimizer, trainable, (p) => gradInputs.get(p)!, hv, states);
  return {
    kind: 'update',
    graph: g,
    built: undefined,
    params,
    trainable,
    buffers: [],
    masks: [],
    states,
    hyper: hyperNames(o.optimizer),
    outer: [],
  };
}
