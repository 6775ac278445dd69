/**
 * Published weights (ONNX model zoo, BVLC Caffe model zoo, torchvision/timm state dicts) as an
 * ordinary ilsvrc checkpoint: the source's weight layers are matched, in the canonical order of
 * `source.ts`, to the zoo model built with the options, every shape and convolution attribute is
 * checked, and options the file settles (LRN constants, pooling mode, input size, classes) are
 * taken from it unless given. The result starts like a training run: step 0, no optimizer state.
 */
import { basename } from 'node:path';
import { buildModel, findModel, MODELS, type BuiltModel, type ModelOptions, type ModelSpec } from '../zoo/index.js';
import { CAFFE_LRN, PAPER_LRN } from '../zoo/spec.js';
import { formatShape } from '../graph/dtype.js';
import type { AnyNode, Value } from '../graph/graph.js';
import type { LrnAttrs } from '../ops/lrn.js';
import { CHECKPOINT_FORMAT, saveCheckpoint, type Checkpoint, type CheckpointMeta } from '../train/checkpoint.js';
import { UsageError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import { readCaffe } from './caffe.js';
import { readOnnx } from './onnx.js';
import { numel, postOrder, type Source, type SourceFormat, type SourceLayer } from './source.js';
import { readStateDict } from './torch.js';
import { imagenet1kClasses } from '../data/synsets.js';

export type { Source, SourceFormat, SourceLayer } from './source.js';

/** The reader for a file, by its extension. */
function readSource(file: string): Source {
  const ext = file.toLowerCase().split('.').pop();
  if (ext === 'onnx') return readOnnx(file);
  if (ext === 'caffemodel') return readCaffe(file);
  if (ext === 'safetensors') return readStateDict(file);
  throw new UsageError(`Expected a .onnx, .caffemodel or .safetensors file but received ${JSON.stringify(file)}`);
}

/** One weight layer of our graph: parameter names, the weight's shape and the convolution attributes. */
interface OurLayer {
  weight: string;
  /** Absent for a convolution without bias (one its batch norm shifts instead). */
  bias: string | undefined;
  shape: readonly number[];
  conv: { group: number; strides: readonly number[]; pads: readonly number[] } | undefined;
  /** The batch norm on the convolution's output: its parameters' and buffers' names, and its ε. */
  bn?: { weight: string; bias: string; mean: string; variance: string; eps: number };
}

function attrInts(n: AnyNode, key: string): readonly number[] {
  const a = n.onnxAttrs()[key];
  return a?.kind === 'ints' ? a.v : [];
}

/** Our weight layers in the same canonical order as the sources': a post-order walk back from the logits. */
export function modelLayers(built: BuiltModel): OurLayer[] {
  const inputsOf = (n: AnyNode): AnyNode[] => n.inputs.map((v) => v?.producer).filter((p): p is AnyNode => p !== undefined);
  const root = built.logits.producer;
  if (!root) return [];
  const isParam = (v: Value | undefined): v is Value => v?.kind === 'param';
  const out: OurLayer[] = [];
  const layerOf = new Map<AnyNode, OurLayer>();
  for (const n of postOrder([root], inputsOf)) {
    const [w, b] = [n.inputs[1], n.inputs[2]];
    if (n.op === 'BatchNormalization') {
      const conv = layerOf.get(n.inputs[0]?.producer ?? n);
      const [g, beta, mean, variance] = n.inputs.slice(1);
      const eps = n.onnxAttrs()['epsilon'];
      if (conv && isParam(g) && isParam(beta) && isParam(mean) && isParam(variance))
        conv.bn = {
          weight: g.name ?? '',
          bias: beta.name ?? '',
          mean: mean.name ?? '',
          variance: variance.name ?? '',
          eps: Number(eps?.v ?? 1e-5),
        };
      continue;
    }
    if ((n.op !== 'Conv' && n.op !== 'Gemm') || !isParam(w) || (b !== undefined && !isParam(b))) continue;
    const group = n.onnxAttrs()['group'];
    const layer: OurLayer = {
      weight: w.name ?? '',
      bias: b?.name,
      shape: w.shape,
      conv:
        n.op === 'Conv'
          ? { group: group?.kind === 'int' ? group.v : 1, strides: attrInts(n, 'strides'), pads: attrInts(n, 'pads') }
          : undefined,
    };
    out.push(layer);
    layerOf.set(n, layer);
  }
  return out;
}

const close = (a: number, b: number) => Math.abs(a - b) <= 1e-6 * Math.max(Math.abs(a), Math.abs(b));
const sameLrn = (a: LrnAttrs, b: LrnAttrs) =>
  a.size === b.size && close(a.alpha, b.alpha) && close(a.beta, b.beta) && close(a.bias, b.bias);
const showLrn = (a: LrnAttrs) => `size ${a.size}, alpha ${a.alpha}, beta ${a.beta}, bias ${a.bias}`;

/** The model options the file settles, where the user did not: LRN constants, pooling, input, classes. */
function resolveOptions(
  model: string,
  src: Source,
  given: Partial<ModelOptions>,
  file: string,
): { options: Partial<ModelOptions>; notes: string[] } {
  const spec = findModel(model);
  const o: Partial<ModelOptions> = { ...given };
  const notes: string[] = [];
  const first = src.lrn[0];
  if (first) {
    const kind = sameLrn(first.attrs, CAFFE_LRN) ? 'caffe' : sameLrn(first.attrs, PAPER_LRN) ? 'paper' : undefined;
    if (o.lrn === undefined) {
      if (kind === undefined)
        throw new UsageError(
          `Expected the LRN constants of the paper (${showLrn(PAPER_LRN)}) or of Caffe (${showLrn(CAFFE_LRN)}) for ${first.name} in ${file} but received ${showLrn(first.attrs)}`,
        );
      o.lrn = kind === 'caffe' && src.normAfterPool && spec.name.startsWith('alexnet') ? 'caffenet' : kind;
    }
    if (spec.name.startsWith('alexnet') && (o.lrn === 'caffenet') !== src.normAfterPool) {
      const [w, r] = src.normAfterPool
        ? ['each norm before its pool', 'pools first (--lrn caffenet)']
        : ['each norm after its pool (--lrn caffenet)', 'normalises first'];
      throw new UsageError(`Expected ${w} in ${file} but the file ${r}`);
    }
    const want = o.lrn === 'paper' ? PAPER_LRN : CAFFE_LRN;
    for (const l of src.lrn) {
      if (!sameLrn(l.attrs, want))
        throw new UsageError(`Expected LRN ${showLrn(want)} (--lrn ${o.lrn}) for ${l.name} in ${file} but received ${showLrn(l.attrs)}`);
    }
  }
  if (o.pool === undefined && src.pool !== undefined) {
    // Only where the file's mode is not the model's own, so that summaries name real differences.
    const own = buildModel(spec, { ...o, classes: 2, inputSize: 512, width: 1 / 64 }).graph.nodes.some(
      (n) => n.op === 'MaxPool' && n.onnxAttrs()['ceil_mode']?.v === 1,
    );
    if ((src.pool === 'ceil') !== own) o.pool = src.pool;
  }
  if (src.input !== undefined) {
    if (o.input === undefined) o.input = src.input;
    else if (o.input !== src.input)
      throw new UsageError(
        `Expected --input ${src.input} for ${file} (${src.format === 'caffemodel' ? 'a Caffe network takes BGR pixels in 0–255 less the mean' : 'its options say so'}) but received --input ${o.input}`,
      );
  } else if (o.input === undefined && src.format === 'onnx') {
    notes.push(
      `${file} does not state the pixels it takes: used torchvision's (RGB, normalised); a file converted from Caffe (the model zoo's bvlc_*, caffenet, zfnet512) needs --input caffe`,
    );
  }
  if (src.transformInput && o.transformInput === undefined && spec.name === 'googlenet-tv') {
    o.transformInput = true;
    notes.push(`${file} rescales its input channels before conv1: built with --transform-input (torchvision's transform_input)`);
  } else if (spec.name === 'googlenet-tv' && src.transformInput === undefined && o.transformInput === undefined) {
    notes.push(
      `${file} does not show torchvision's transform_input: built without it, as torchvision's constructor is; its published IMAGENET1K_V1 weights need --transform-input`,
    );
  }
  const [, c, h, w] = src.inputShape ?? [];
  if (o.inputSize === undefined && h !== undefined && h > 0 && h === w) o.inputSize = h;
  if (o.channels === undefined && c !== undefined && c > 0) o.channels = c;
  const last = src.layers[src.layers.length - 1];
  if (o.classes === undefined && last) o.classes = last.shape[0]!;
  if (src.unused.length)
    notes.push(
      `left out ${src.unused.length} weight layers of ${file} that do not feed its output (${src.unused.slice(0, 3).join(', ')}${src.unused.length > 3 ? ', …' : ''})`,
    );
  return { options: o, notes };
}

/** Whether the file's weight has our layer's shape; a fully connected layer stored as a convolution over the whole map (timm's VGG head) has the same layout. */
function shapeFits(a: OurLayer, b: SourceLayer): boolean {
  if (b.shape.length === a.shape.length) return b.shape.every((d, k) => d === a.shape[k]);
  return a.conv === undefined && b.shape[0] === a.shape[0] && numel(b.shape) === numel(a.shape);
}

/**
 * The zoo model whose weight layers the file's fit (shapes, groups, batch norms) at its default width and
 * input size, for an import without --as. A batch norm kept apart must meet one; one folded away fits the
 * plain form exactly and the batch-normalised form too, so an exact fit wins; so does a model without LRN
 * when the file has none. More than one left, or none, is the user's to settle.
 */
function identifyModel(src: Source, given: Partial<ModelOptions>, file: string): { spec: ModelSpec; note: string } {
  const fits: { spec: ModelSpec; exact: boolean; lrn: boolean }[] = [];
  for (const spec of MODELS) {
    let built: BuiltModel;
    try {
      built = buildModel(spec, resolveOptions(spec.name, src, { ...given, aux: false }, file).options);
    } catch (e) {
      if (e instanceof UsageError) continue;
      throw e;
    }
    const ours = modelLayers(built);
    const theirs = src.layers;
    const fit = (a: OurLayer, i: number) => {
      const b = theirs[i]!;
      return shapeFits(a, b) && (b.group === undefined || b.group === (a.conv?.group ?? 1)) && (!b.bn || a.bn !== undefined);
    };
    if (ours.length !== theirs.length || !ours.every(fit)) continue;
    const lrn = built.graph.nodes.some((n) => /(^|\/)norm\d+$/.test(n.scope));
    fits.push({ spec, exact: ours.every((a, i) => !a.bn === !theirs[i]!.bn), lrn });
  }
  let best = fits.some((f) => f.exact) ? fits.filter((f) => f.exact) : fits;
  if (best.length > 1 && !src.lrn.length && best.some((f) => !f.lrn)) best = best.filter((f) => !f.lrn);
  const names = fits.map((f) => f.spec.name);
  if (best.length !== 1)
    throw new UsageError(
      best.length
        ? `Expected --as <model> for ${file}: its weight layers fit ${names.join(', ')} alike`
        : `Expected --as <model> for ${file}: its ${src.layers.length} weight layers fit no model of \`ilsvrc models\` at its default width and input size`,
    );
  const spec = best[0]!.spec;
  const others = names.filter((n) => n !== spec.name);
  const also = others.length ? `; they also fit ${others.join(', ')} (give --as to choose)` : '';
  return { spec, note: `no --as: ${file}'s weight layers are those of ${spec.name}${spec.source ? ` (${spec.source})` : ''}${also}` };
}

interface Matched {
  weights: Map<string, Float32Array>;
  origins: Map<string, string>;
  notes: string[];
}

/**
 * A layer's bias and batch norm from the file's, in each of their forms: kept apart (copied, the
 * channels and ε checked), folded into the convolution by the exporter (the norm that leaves the
 * folded convolution as it is), or a conv bias where ours has none (moved into the norm's mean).
 */
function setBiasAndBn(a: OurLayer, b: SourceLayer, where: string, m: Matched): void {
  const out = a.shape[0]!;
  const set = (name: string, v: Float32Array, origin: string) => {
    m.weights.set(name, v);
    m.origins.set(name, origin);
  };
  const biasOrigin = b.biasName ?? `the bias of ${b.name}`;
  if (a.bias !== undefined) set(a.bias, b.bias ?? new Float32Array(out), biasOrigin);
  if (a.bias !== undefined && b.bias === undefined && !b.bn) m.notes.push(`${b.name} has no bias: ${a.bias} is zero`);
  if (!a.bn) {
    if (b.bn)
      throw new UsageError(`Expected no batch norm after ${where} but received ${b.bn.name}: give --as the model's batch-normalised form`);
    return;
  }
  const { eps } = a.bn;
  if (!b.bn) {
    // Folded: y = conv(x) + bias. With mean 0 and variance 1 − ε the norm divides by 1 and adds β.
    set(a.bn.weight, new Float32Array(out).fill(1), `the folded batch norm of ${b.name}`);
    set(a.bn.bias, a.bias === undefined && b.bias ? b.bias : new Float32Array(out), biasOrigin);
    set(a.bn.mean, new Float32Array(out), `the folded batch norm of ${b.name}`);
    set(a.bn.variance, new Float32Array(out).fill(1 - eps), `the folded batch norm of ${b.name}`);
    return;
  }
  if (b.bn.eps !== undefined && Math.abs(b.bn.eps - eps) > 1e-6 * eps)
    throw new UsageError(`Expected epsilon ${eps} for batch norm ${b.bn.name} (${where}) but received ${b.bn.eps}`);
  // A conv bias our layer lacks shifts the batch norm's input: subtracting it from the mean is the same function.
  const mean = a.bias === undefined && b.bias ? b.bn.mean.map((v, i) => v - b.bias![i]!) : b.bn.mean;
  set(a.bn.weight, b.bn.weight, `${b.bn.name}.weight`);
  set(a.bn.bias, b.bn.bias, `${b.bn.name}.bias`);
  set(a.bn.mean, mean, `${b.bn.name}.running_mean`);
  set(a.bn.variance, b.bn.variance, `${b.bn.name}.running_var`);
}

/** Weights by our parameter names, every shape checked; the first layer that does not fit is the error. */
function matchLayers(ours: readonly OurLayer[], src: Source, model: string, file: string): Matched {
  const weights = new Map<string, Float32Array>();
  const origins = new Map<string, string>();
  const notes: string[] = [];
  const theirs = src.layers;
  for (let i = 0; i < Math.max(ours.length, theirs.length); i++) {
    const [a, b] = [ours[i], theirs[i]];
    if (!a)
      throw new UsageError(
        `Expected ${ours.length} weight layers for ${model} but ${file} has ${theirs.length}: ${b!.name} (${formatShape(b!.shape)}) is left over`,
      );
    if (!b)
      throw new UsageError(
        `Expected a weight layer for ${a.weight} (${formatShape(a.shape)}) of ${model} but ${file} has only ${theirs.length}`,
      );
    const where = `${b.name} in ${file} (${a.weight} of ${model} with these options)`;
    if (!shapeFits(a, b)) throw new UsageError(`Expected ${formatShape(a.shape)} for ${where} but received ${formatShape(b.shape)}`);
    if (a.conv && b.group !== undefined && b.group !== a.conv.group)
      throw new UsageError(`Expected group ${a.conv.group} for ${where} but received ${b.group}`);
    if (a.conv && b.strides !== undefined && b.strides.join() !== a.conv.strides.join())
      throw new UsageError(`Expected strides ${a.conv.strides.join(',')} for ${where} but received ${b.strides.join(',')}`);
    if (a.conv && b.pads !== undefined && b.pads.join() !== a.conv.pads.join())
      throw new UsageError(`Expected pads ${a.conv.pads.join(',')} for ${where} but received ${b.pads.join(',')}`);
    const out = a.shape[0]!;
    if (b.bias !== undefined && b.bias.length !== out)
      throw new UsageError(`Expected ${out} bias values for ${where} but received ${b.bias.length}`);
    weights.set(a.weight, b.weight);
    origins.set(a.weight, b.name);
    setBiasAndBn(a, b, where, { weights, origins, notes });
  }
  const folded = ours.filter((a, i) => a.bn && !theirs[i]!.bn).length;
  if (folded)
    notes.push(
      `${file} has ${folded} batch norms folded into its convolutions: each is ${model}'s with γ 1, β the bias, mean 0, variance 1 − ε, so eval-mode outputs are the file's; fine-tuning re-estimates the statistics`,
    );
  return { weights, origins, notes };
}

export interface ImportResult {
  checkpoint: Checkpoint;
  source: { file: string; format: SourceFormat; layers: number };
  /** Each parameter's tensor in the source file, by our parameter name. */
  origins: ReadonlyMap<string, string>;
  /** Things the user should know (layers left out, zero biases). */
  notes: string[];
  /** The model's parameters (batch norms' running statistics not counted). */
  paramCount: number;
}

/** Reads published weights and returns them as a checkpoint of `model` (write it with `saveImported`). */
export async function importWeights(
  file: string,
  model: string | undefined,
  given: Partial<ModelOptions> = {},
  o: { classes?: string[] } = {},
): Promise<ImportResult> {
  const src = readSource(file);
  const identified = model === undefined ? identifyModel(src, given, file) : undefined;
  const spec = identified?.spec ?? findModel(model!);
  const resolved = resolveOptions(spec.name, src, { ...given, aux: false }, file);
  if (identified) resolved.notes.unshift(identified.note);
  const built = buildModel(spec, resolved.options);
  const norms = built.graph.nodes.some((n) => /(^|\/)norm\d+$/.test(n.scope));
  if (src.lrn.length && !norms) throw new UsageError(`Expected no LRN in ${file} (${spec.name} has none) but received ${src.lrn[0]!.name}`);
  if (norms && !src.lrn.length && src.format !== 'safetensors' && given.lrn === undefined) {
    resolved.notes.push(`${file} does not state LRN constants (no LRN node): used ${spec.name}'s own; give --lrn if the source differs`);
  }
  const matched = matchLayers(modelLayers(built), src, spec.name, file);
  if (o.classes && o.classes.length !== built.options.classes) {
    throw new UsageError(`Expected ${built.options.classes} class names (the classes of ${file}) but received ${o.classes.length}`);
  }
  // Published 1 000-class weights share ImageNet-1k's class order: its names, unless --labels gives others.
  const classes = o.classes ?? (built.options.classes === 1000 ? imagenet1kClasses() : undefined);
  if (!o.classes && classes)
    resolved.notes.push(`${file} names no classes: the checkpoint takes ImageNet-1k's (--labels FILE gives others)`);
  const meta: CheckpointMeta = {
    format: CHECKPOINT_FORMAT,
    model: spec.name,
    modelOptions: built.options,
    epoch: 0,
    batchInEpoch: 0,
    step: 0,
    rng: new Rng(0).fork('dropout').state,
    ...(classes ? { classes } : {}),
    imported: { file: basename(file), format: src.format },
    savedAt: new Date().toISOString(),
  };
  return {
    checkpoint: { meta, state: { params: matched.weights, states: new Map(), step: 0, rng: meta.rng } },
    source: { file, format: src.format, layers: src.layers.length },
    origins: matched.origins,
    notes: [...resolved.notes, ...matched.notes],
    paramCount: built.graph.paramCount(),
  };
}

/** Writes an imported checkpoint (atomically, as training does); weights that are not all finite are refused, nothing written. */
export function saveImported(path: string, r: ImportResult): void {
  const { format: _f, savedAt: _s, step: _t, rng: _r, ...meta } = r.checkpoint.meta;
  saveCheckpoint(path, r.checkpoint.state, meta, (bad) => {
    const origin = r.origins.get(bad);
    const what = origin === undefined ? bad : `${JSON.stringify(origin)} (${bad} of ${meta.model})`;
    return new UsageError(`Expected finite weights in ${r.source.file} but ${what} holds NaN or Infinity; nothing written to ${path}`);
  });
}
