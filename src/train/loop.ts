/**
 * K optimizer steps in one session run: the fused step graph becomes the body of an ONNX Loop, so
 * parameters and optimizer state stay inside the runtime for K steps (loop-carried) and cross the JS
 * boundary once per run. Buffers that a step moves (batch norm's running statistics) are carried too. Per-step inputs (images, labels, masks, learning rate) are stacked on a
 * leading axis and picked with Gather(iteration); per-step loss and hit counts come out as scan
 * outputs. The trip count is the length of the stacked learning-rate input, so one session serves any
 * K (an epoch's short last chunk included).
 */
import { Graph, type Value } from '../graph/graph.js';
import { inline } from '../graph/inline.js';
import { loop, tripCount } from '../ops/loop.js';
import { toModel } from '../graph/serialize.js';
import type { ModelProto } from '../onnx/proto.js';
import { Gather } from '../ops/shape.js';
import { nextName, type TrainGraph } from './graphs.js';

const SCAN = ['loss', 'top1', 'top5'] as const;
/** The symbolic length of the stacked inputs and of the scan outputs. */
const K = 'K';

/** The K-step graph: same feed names as the single step, with per-step inputs stacked [K, …]. */
function loopGraph(tg: TrainGraph): Graph {
  if (tg.kind !== 'step') throw new Error('a Loop is built from the fused step graph');
  const step = tg.graph;
  const named = (name: string): Value => {
    const v = [...step.inputs, ...step.outputs].find((x) => x.name === name);
    if (!v) throw new Error(`the step graph has no value named ${name}`);
    return v;
  };
  const moved = [...tg.trainable, ...tg.buffers];
  const carried = [...moved.map((p) => p.value), ...tg.states.map(named)];
  const frozen = tg.params.filter((p) => !moved.includes(p)).map((p) => p.value);
  const perStep = step.inputs.filter((v) => !carried.includes(v));
  if (!perStep.some((v) => v.name === 'lr')) throw new Error('the step graph has no learning-rate input');

  const g = new Graph(`${step.name}_k_steps`);
  // Stacked as built with one step; the leading dimension is written as K.
  const stacked = perStep.map((v) => g.input(v.name!, v.dtype, [1, ...v.shape], [K]));
  const carriedIn = carried.map((v) => g.input(v.name!, v.dtype, v.shape));
  const frozenIn = frozen.map((v) => g.input(v.name!, v.dtype, v.shape));
  const lr = stacked[perStep.findIndex((v) => v.name === 'lr')]!;

  const out = loop(g, { trips: tripCount(lr), carried: carriedIn, trip: { size: 1, symbol: K } }, (body, { iteration, carried: now }) => {
    const bind = new Map<Value, Value>();
    perStep.forEach((v, i) => bind.set(v, body.add1(Gather, [stacked[i]!, iteration], { axis: 0 })));
    carried.forEach((v, i) => bind.set(v, now[i]!));
    frozen.forEach((v, i) => bind.set(v, frozenIn[i]!));
    const next = carried.map((v) => named(nextName(v.name!)));
    const scans = SCAN.map(named);
    const made = inline(step, body, bind, [...next, ...scans]);
    return { carried: next.map((v) => made.get(v)!), scans: scans.map((v) => made.get(v)!) };
  });
  out.carried.forEach((v, i) => g.output(v, nextName(carried[i]!.name!)));
  out.scans.forEach((v, i) => g.output(v, SCAN[i]!));
  return g;
}

/** The K-step model (see loopGraph). */
export function loopModel(tg: TrainGraph, opset = 18): ModelProto {
  return toModel(loopGraph(tg), { opset, shapes: true });
}
