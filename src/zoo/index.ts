/** The zoo's registry, and `buildModel`, which turns a name and options into a graph. */
import { Graph, type Value } from '../graph/graph.js';
import { expected, UsageError } from '../util/errors.js';
import { AlexNet, AlexNetSingle } from './alexnet.js';
import { GoogLeNet, GoogLeNetNaive } from './googlenet.js';
import { NIN } from './nin.js';
import { VGG_A, VGG_A_BN, VGG_A_LRN, VGG_B, VGG_B_BN, VGG_C, VGG_D, VGG_D_BN, VGG_E, VGG_E_BN } from './vgg.js';
import { ZFNet } from './zfnet.js';
import { AlexNetTv, GoogLeNetTv } from './torchvision.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../util/imagenet.js';
import { concat, slice } from '../ops/shape.js';
import { add, mul } from '../ops/elementwise.js';
import { CAFFE_MEAN_BGR, type ModelOptions, type ModelSpec } from './spec.js';
import { isAbsentDefault, MODEL_OPTION_NAMES, optionDefault, optionExpected, optionFlag, optionValueOk } from './options.js';

export type { ModelOptions, ModelSpec } from './spec.js';
export { MODEL_OPTIONS, MODEL_OPTION_NAMES, type ModelOptionName } from './options.js';

export const MODELS: readonly ModelSpec[] = [
  AlexNet,
  AlexNetSingle,
  ZFNet,
  NIN,
  GoogLeNet,
  GoogLeNetNaive,
  VGG_A,
  VGG_A_LRN,
  VGG_B,
  VGG_C,
  VGG_D,
  VGG_E,
  VGG_A_BN,
  VGG_B_BN,
  VGG_D_BN,
  VGG_E_BN,
  AlexNetTv,
  GoogLeNetTv,
];

export function findModel(name: string): ModelSpec {
  const key = name.toLowerCase();
  const spec = MODELS.find((m) => m.name === key || m.aliases?.includes(key));
  if (spec) return spec;
  const near = nearestModel(key);
  const e = expected(`one of ${MODELS.map((m) => m.name).join(', ')}`, 'model', name);
  if (near !== undefined) e.message += ` (did you mean ${near}?)`;
  throw e;
}

/** The model name or alias closest to a mistyped one (edit distance at most a third of its length), if any. */
function nearestModel(name: string): string | undefined {
  let best: { name: string; d: number } | undefined;
  for (const m of MODELS) {
    for (const n of [m.name, ...(m.aliases ?? [])]) {
      const d = editDistance(name, n);
      if (d <= Math.max(1, Math.floor(n.length / 3)) && (!best || d < best.d)) best = { name: n, d };
    }
  }
  return best?.name;
}

/** Levenshtein distance: insertions, deletions and substitutions of one character each. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}

/** Options with each model's defaults filled in, validated (errors name the option's flag). */
export function modelOptions(spec: ModelSpec, given: Partial<ModelOptions> = {}): ModelOptions {
  const o: Record<string, unknown> = {};
  for (const name of MODEL_OPTION_NAMES) {
    const v = given[name] ?? optionDefault(name, spec);
    if (v === undefined || isAbsentDefault(name, v)) continue;
    if (!optionValueOk(name, v)) throw expected(optionExpected(name), optionFlag(name), v);
    o[name] = v;
  }
  const options = o as ModelOptions;
  if (options.input === 'caffe' && options.channels !== 3) {
    throw new UsageError(
      `Expected 3 channels for --input caffe (Caffe networks take BGR images) but received --channels ${options.channels}`,
    );
  }
  return options;
}

/**
 * The pipeline's tensor (RGB, (x/255 − mean)/std per channel) as a Caffe network's input: BGR in
 * 0–255 less Caffe's mean pixel. Channels reversed by slices and a concat, then one affine map per
 * channel, 255·std·x + (255·mean − Caffe's mean), as constants: no parameters, and every op has a
 * gradient rule, so a training graph builds through it.
 */
function caffeInput(x: Value): Value {
  const g = x.graph;
  return g.scope('caffe_input', () => {
    const bgr = concat(
      [2, 1, 0].map((c) => slice(x, [c], [c + 1], [1])),
      1,
    );
    const rgbOf = (c: number) => 2 - c; // BGR channel c holds RGB channel 2 − c
    const scale = [0, 1, 2].map((c) => 255 * IMAGENET_STD[rgbOf(c)]!);
    const shift = [0, 1, 2].map((c) => 255 * IMAGENET_MEAN[rgbOf(c)]! - CAFFE_MEAN_BGR[c]!);
    return add(mul(bgr, g.floats(scale, [1, 3, 1, 1], x.dtype)), g.floats(shift, [1, 3, 1, 1], x.dtype));
  });
}

export interface BuiltModel {
  spec: ModelSpec;
  options: ModelOptions;
  graph: Graph;
  input: Value;
  logits: Value;
  aux: { logits: Value; weight: number }[];
}

export interface BuildOptions {
  /** Training graphs take dropout masks as inputs and may carry auxiliary heads. */
  training?: boolean;
  /** Batch size the graph is built for (shapes are static; export marks the batch dynamic). */
  batch?: number;
  /** Parameters held fixed (Graph.frozen): batch norm layers frozen whole run in eval mode. */
  frozen?: ReadonlySet<string>;
}

export function buildModel(name: string | ModelSpec, given: Partial<ModelOptions> = {}, b: BuildOptions = {}): BuiltModel {
  const spec = typeof name === 'string' ? findModel(name) : name;
  const options = modelOptions(spec, given);
  const graph = new Graph(spec.name);
  graph.training = b.training ?? false;
  if (b.frozen) graph.frozen = b.frozen;
  const input = graph.input('input', 'float32', [b.batch ?? 1, options.channels, options.inputSize, options.inputSize]);
  let out;
  try {
    out = spec.build(options.input === 'caffe' ? caffeInput(input) : input, options);
  } catch (e) {
    if (e instanceof Error && e.name === 'GraphError') {
      throw new UsageError(`${spec.name} at --input-size ${options.inputSize}: ${e.message}`);
    }
    throw e;
  }
  return { spec, options, graph, input, logits: out.logits, aux: out.aux };
}
