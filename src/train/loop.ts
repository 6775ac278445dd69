/**
 * K optimizer steps in one session run: the fused step graph becomes the body of an ONNX Loop, so
 * parameters and optimizer state stay inside the runtime for K steps (loop-carried) and cross the JS
 * boundary once per run. Per-step inputs (images, labels, masks, learning rate) are stacked on a
 * leading axis and picked with Gather(iteration); per-step loss and hit counts come out as scan
 * outputs. The trip count is the length of the stacked learning-rate input, so one session serves any
 * K (an epoch's short last chunk included).
 */
import { DTYPES } from '../graph/dtype.js';
import { Namer, graphProto, tensorProto } from '../graph/serialize.js';
import { AttributeType, declaredDims, type GraphProto, type ModelProto, type NodeProto, type ValueInfoProto } from '../onnx/proto.js';
import { nextName, type TrainGraph } from './graphs.js';

const BODY = 'body/';
const SCAN = ['loss', 'top1', 'top5'] as const;

function info(name: string, elemType: number, dims: readonly (number | string)[]): ValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) },
      },
    },
  };
}


/** Renames every name defined inside the body; references to the outer graph keep their names. */
function prefixBody(body: GraphProto, outerNames: ReadonlySet<string>): void {
  const defined = new Set<string>();
  for (const v of body.input) defined.add(v.name);
  for (const t of body.initializer ?? []) defined.add(t.name);
  for (const n of body.node) for (const o of n.output) if (o) defined.add(o);
  const r = (name: string) => (name && defined.has(name) && !outerNames.has(name) ? BODY + name : name);
  for (const v of body.input) v.name = r(v.name);
  for (const v of body.output) v.name = r(v.name);
  for (const v of body.valueInfo ?? []) v.name = r(v.name);
  for (const t of body.initializer ?? []) t.name = r(t.name);
  for (const n of body.node) {
    n.input = n.input.map(r);
    n.output = n.output.map(r);
    if (n.name) n.name = BODY + n.name;
  }
}

/** The K-step model: same feed names as the single step, with per-step inputs stacked [K, …]. */
export function loopModel(tg: TrainGraph, opset = 18): ModelProto {
  if (tg.kind !== 'step') throw new Error('a Loop is built from the fused step graph');
  const body = graphProto(tg.graph, new Namer(), { paramsAsInputs: true, shapes: true });
  const carried = [...tg.trainable.map((p) => p.name), ...tg.states];
  const carriedSet = new Set(carried);
  const perStep = body.input.filter((v) => !carriedSet.has(v.name) && !tg.params.some((p) => p.value.name === v.name && !p.trainable));
  const frozen = body.input.filter((v) => tg.params.some((p) => p.value.name === v.name && !p.trainable));
  const perStepNames = new Set(perStep.map((v) => v.name));

  // Per-step inputs: inside the body, Gather(stacked outer input, iteration) under the body name.
  const gathers: NodeProto[] = perStep.map((v) => ({
    input: [v.name, 'iter'],
    output: [v.name],
    opType: 'Gather',
    name: `pick_${v.name}`,
    attribute: [{ name: 'axis', type: AttributeType.INT, i: 0 }],
  }));
  const carriedInfo = carried.map((name) => body.input.find((v) => v.name === name)!);
  // Outer declarations are made before the body's names get their prefix.
  const stacked = perStep.map((v) => info(v.name, v.type?.tensorType?.elemType ?? DTYPES.float32.onnx, ['K', ...declaredDims(v)]));
  const carriedOuter = carriedInfo.map((v) => info(v.name, DTYPES.float32.onnx, declaredDims(v)));
  const frozenOuter = frozen.map((v) => info(v.name, DTYPES.float32.onnx, declaredDims(v)));
  body.input = [info('iter', DTYPES.int64.onnx, []), info('cond', DTYPES.bool.onnx, []), ...carriedInfo];
  // The picked per-step values keep their declared shapes inside the body.
  body.valueInfo = [...(body.valueInfo ?? []), ...perStep.map((v) => ({ ...v }))];
  body.node = [...gathers, ...body.node, { input: ['cond'], output: ['cond_out'], opType: 'Identity', name: 'cond_out' }];
  const outByName = new Map(body.output.map((v) => [v.name, v]));
  body.output = [
    info('cond_out', DTYPES.bool.onnx, []),
    ...carried.map((n) => outByName.get(nextName(n))!),
    ...SCAN.map((n) => outByName.get(n)!),
  ];
  // Body-defined names get a prefix so nothing shadows the outer graph, except where a Gather
  // output must read its outer namesake: rename those Gathers' outputs after prefixing.
  const outer = new Set<string>([...frozen.map((v) => v.name)]);
  prefixBody(body, outer);
  for (const gnode of body.node.slice(0, gathers.length)) gnode.input[0] = gnode.input[0]!.slice(BODY.length);

  const outerInputs = [...stacked, ...carriedOuter, ...frozenOuter];
  const lrName = 'lr';
  if (!perStepNames.has(lrName)) throw new Error('the step graph has no learning-rate input');
  const nodes: NodeProto[] = [
    { input: [lrName], output: ['trip_shape'], opType: 'Shape', name: 'trip_shape' },
    { input: ['trip_shape', 'trip_axes'], output: ['trip_count'], opType: 'Squeeze', name: 'trip_count' },
    {
      input: ['trip_count', '', ...carried],
      output: [...carried.map(nextName), ...SCAN],
      opType: 'Loop',
      name: 'steps',
      attribute: [{ name: 'body', type: AttributeType.GRAPH, g: body }],
    },
  ];
  return {
    irVersion: 8,
    opsetImport: [{ domain: '', version: opset }],
    producerName: 'ilsvrc',
    producerVersion: '0.1.0',
    graph: {
      name: `${tg.graph.name}_k_steps`,
      node: nodes,
      initializer: [tensorProto('trip_axes', [1], BigInt64Array.from([0n]), 'int64')],
      input: outerInputs,
      output: [
        ...carriedOuter.map((v) => info(nextName(v.name), DTYPES.float32.onnx, declaredDims(v))),
        ...SCAN.map((n) => info(n, DTYPES.float32.onnx, ['K'])),
      ],
    },
  };
}
