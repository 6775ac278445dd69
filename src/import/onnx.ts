/**
 * Weights of a published ONNX model (ONNX model zoo, torch.onnx.export, opsets 3–18): initializers
 * as raw_data, typed fields or external data files, found through Identity and Constant nodes.
 * Weight layers are Conv, Gemm (either transB) and MatMul (+ the Add of its bias).
 */
import { readFileSync } from 'node:fs';
import { inlineExternalData } from '../onnx/external.js';
import { attribute, decodeModel, stringAttribute, TensorDataType, type NodeProto, type TensorProto } from '../onnx/proto.js';
import { readModelOptions } from '../train/checkpoint.js';
import { UsageError } from '../util/errors.js';
import { parseJson } from '../util/json.js';
import { METADATA } from '../zoo/export.js';
import {
  checkedBn,
  floatsFromBytes,
  numel,
  postOrder,
  transpose2d,
  type Source,
  type SourceBn,
  type SourceLayer,
  type SourceLrn,
} from './source.js';

const int = (n: NodeProto, name: string, d: number): number => attribute(n, name)?.i ?? d;
const float = (n: NodeProto, name: string, d: number): number => attribute(n, name)?.f ?? d;
const ints = (n: NodeProto, name: string): number[] | undefined => attribute(n, name)?.ints;

/** A tensor's values as float32, from whichever field holds them. */
function tensorValues(t: TensorProto, file: string): Float32Array {
  const what = `tensor ${JSON.stringify(t.name)} in ${file}`;
  const n = numel(t.dims ?? []);
  const double = t.dataType === TensorDataType.DOUBLE;
  if (t.dataType !== TensorDataType.FLOAT && !double)
    throw new UsageError(`Expected float32 or float64 weights for ${what} but received ONNX data type ${t.dataType}`);
  let v: Float32Array;
  if (t.rawData !== undefined && t.rawData.byteLength > 0) {
    v = floatsFromBytes(t.rawData, double);
  } else {
    v = Float32Array.from(double ? (t.doubleData ?? []) : (t.floatData ?? []));
  }
  if (v.length !== n)
    throw new UsageError(`Expected ${n} values for ${what} (dims ${JSON.stringify(t.dims ?? [])}) but received ${v.length}`);
  return v;
}

export function readOnnx(file: string): Source {
  let model;
  try {
    model = decodeModel(readFileSync(file), file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== undefined || e instanceof UsageError) throw e;
    throw new UsageError(`Expected an ONNX model in ${file} but it does not parse: ${(e as Error).message}`);
  }
  inlineExternalData(model, file);
  // Absent repeated fields decode as undefined.
  const g = {
    ...model.graph,
    node: (model.graph.node ?? []).map((n) => ({ ...n, input: n.input ?? [], output: n.output ?? [] })),
    input: model.graph.input ?? [],
    output: model.graph.output ?? [],
  };
  const inits = new Map<string, TensorProto>();
  for (const t of g.initializer ?? []) inits.set(t.name, t);
  const producer = new Map<string, NodeProto>();
  const consumers = new Map<string, NodeProto[]>();
  for (const n of g.node) {
    for (const o of n.output) producer.set(o, n);
    for (const i of n.input) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  }
  /** The stored tensor behind a value name (through Identity and Constant), if any. */
  const constant = (name: string | undefined): TensorProto | undefined => {
    for (let hops = 0; name !== undefined && name !== '' && hops < 8; hops++) {
      const t = inits.get(name);
      if (t) return { ...t, name };
      const p = producer.get(name);
      if (p?.opType === 'Constant') {
        const v = attribute(p, 'value')?.t;
        return v ? { ...v, name } : undefined;
      }
      if (p?.opType !== 'Identity') return undefined;
      name = p.input[0];
    }
    return undefined;
  };
  const values = (t: TensorProto) => tensorValues(t, file);

  const out = g.output[0]?.name;
  const root = out === undefined ? undefined : producer.get(out);
  if (!root) throw new UsageError(`Expected an ONNX graph with an output computed by its nodes in ${file} but found none`);
  const inputsOf = (n: NodeProto): NodeProto[] =>
    n.input.map((i) => producer.get(i)).filter((p): p is NodeProto => p !== undefined && p.opType !== 'Constant');
  const order = postOrder([root], inputsOf);

  const layers: SourceLayer[] = [];
  const lrn: SourceLrn[] = [];
  let pool: Source['pool'];
  let firstPoolAt = -1;
  let firstLrnAt = -1;
  const weightNodes = new Set<NodeProto>();
  const layerOf = new Map<NodeProto, SourceLayer>();
  for (const [at, n] of order.entries()) {
    const label = n.name || n.output[0] || n.opType;
    if (n.opType === 'Conv') {
      const w = constant(n.input[1]);
      if (!w) throw new UsageError(`Expected the weights of Conv ${label} stored in ${file} but ${n.input[1]} is computed, not stored`);
      const b = constant(n.input[2]);
      const auto = stringAttribute(n, 'auto_pad') ?? 'NOTSET';
      if (auto !== 'NOTSET' && auto !== 'VALID')
        throw new UsageError(`Expected explicit pads on Conv ${label} in ${file} but received auto_pad ${auto}`);
      const dil = ints(n, 'dilations');
      if (dil && dil.some((d) => d !== 1))
        throw new UsageError(`Expected dilation 1 on Conv ${label} in ${file} but received ${JSON.stringify(dil)}`);
      layers.push({
        name: w.name,
        weight: values(w),
        shape: [...(w.dims ?? [])],
        bias: b ? values(b) : undefined,
        ...(b ? { biasName: b.name } : {}),
        group: int(n, 'group', 1),
        strides: ints(n, 'strides') ?? [1, 1],
        pads: ints(n, 'pads') ?? [0, 0, 0, 0],
      });
      layerOf.set(n, layers[layers.length - 1]!);
      weightNodes.add(n);
    } else if (n.opType === 'Gemm') {
      const w = constant(n.input[1]);
      if (!w) throw new UsageError(`Expected the weights of Gemm ${label} stored in ${file} but ${n.input[1]} is computed, not stored`);
      if (int(n, 'transA', 0) !== 0) throw new UsageError(`Expected transA 0 on Gemm ${label} in ${file} but received 1`);
      const [r, c] = [w.dims?.[0] ?? 0, w.dims?.[1] ?? 0];
      let weight = values(w);
      const transB = int(n, 'transB', 0) === 1;
      if (!transB) weight = transpose2d(weight, r, c);
      const alpha = float(n, 'alpha', 1);
      const beta = float(n, 'beta', 1);
      if (alpha !== 1) weight = weight.map((x) => x * alpha);
      const b = constant(n.input[2]);
      let bias = b ? values(b) : undefined;
      if (bias && beta !== 1) bias = bias.map((x) => x * beta);
      layers.push({ name: w.name, weight, shape: transB ? [r, c] : [c, r], bias, ...(b ? { biasName: b.name } : {}) });
      weightNodes.add(n);
    } else if (n.opType === 'MatMul') {
      const wi = constant(n.input[1]) ? 1 : 0;
      const w = constant(n.input[wi]);
      if (!w || wi === 0)
        throw new UsageError(
          `Expected MatMul ${label} in ${file} to multiply by stored weights on the right but ${n.input[1]} is computed`,
        );
      const [r, c] = [w.dims?.[0] ?? 0, w.dims?.[1] ?? 0];
      // The bias is the Add that alone consumes the product.
      const next = consumers.get(n.output[0] ?? '') ?? [];
      const add = next.length === 1 && next[0]!.opType === 'Add' ? next[0]! : undefined;
      const b = add ? constant(add.input.find((i) => i !== n.output[0])) : undefined;
      layers.push({
        name: w.name,
        weight: transpose2d(values(w), r, c),
        shape: [c, r],
        bias: b ? values(b) : undefined,
        ...(b ? { biasName: b.name } : {}),
      });
      weightNodes.add(n);
    } else if (n.opType === 'BatchNormalization') {
      const conv = layerOf.get(producer.get(n.input[0] ?? '') ?? n);
      if (!conv || conv.shape.length !== 4 || conv.bn)
        throw new UsageError(
          `Expected a Conv before BatchNormalization ${label} in ${file} but ${n.input[0]} is not a convolution's output`,
        );
      conv.bn = onnxBn(n, label, conv, constant, values, file);
    } else if (n.opType === 'LRN') {
      if (firstLrnAt < 0) firstLrnAt = at;
      lrn.push({
        name: label,
        attrs: { size: int(n, 'size', 5), alpha: float(n, 'alpha', 1e-4), beta: float(n, 'beta', 0.75), bias: float(n, 'bias', 1) },
      });
    } else if (n.opType === 'MaxPool') {
      if (firstPoolAt < 0) firstPoolAt = at;
      const p = ints(n, 'pads') ?? [0, 0, 0, 0];
      const ceil = int(n, 'ceil_mode', 0) === 1 || (p.length === 4 && (p[2]! > p[0]! || p[3]! > p[1]!));
      pool = ceil || pool === 'ceil' ? 'ceil' : 'floor';
    }
  }
  const unused = g.node
    .filter((n) => (n.opType === 'Conv' || n.opType === 'Gemm') && !weightNodes.has(n))
    .map((n) => n.name || n.output[0] || n.opType);
  const inputShape = graphInputShape(g.input.filter((i) => !inits.has(i.name)).map((i) => i.type?.tensorType?.shape?.dim ?? []));
  const input = statedInput(model.metadataProps ?? [], file);
  // torchvision's GoogLeNet exports transform_input as per-channel slices, scaled and concatenated again before conv1.
  const firstConv = order.findIndex((n) => n.opType === 'Conv');
  const transformInput = order.slice(0, Math.max(0, firstConv)).some((n) => n.opType === 'Concat');
  return {
    format: 'onnx',
    transformInput,
    ...(input ? { input } : {}),
    layers,
    lrn,
    normAfterPool: firstLrnAt >= 0 && firstPoolAt >= 0 && firstPoolAt < firstLrnAt,
    pool,
    inputShape,
    unused,
  };
}

/**
 * The input convention an ilsvrc export states in its options metadata (absent there: torchvision's);
 * other files state none (model-zoo files converted from Caffe included), so the user says.
 */
function statedInput(props: readonly { key: string; value: string }[], file: string): Source['input'] {
  const raw = props.find((p) => p.key === METADATA.options)?.value;
  if (raw === undefined) return undefined;
  const where = `in the ${JSON.stringify(METADATA.options)} metadata of ${file}`;
  const input = readModelOptions(parseJson(raw, where), where).input;
  return input ?? 'torchvision';
}

function graphInputShape(inputs: { dimValue?: number; dimParam?: string }[][]): number[] | undefined {
  const dims = inputs[0];
  if (!dims || dims.length !== 4) return undefined;
  return dims.map((d) => d.dimValue ?? 0);
}

/**
 * An eval-mode BatchNormalization after a Conv: its scale, B, mean and var stored in the file. A
 * training-mode node (training_mode 1 at opset 14+, or the running-statistics outputs of older
 * opsets) normalises by the batch it is given, which no stored statistics reproduce.
 */
function onnxBn(
  n: NodeProto,
  label: string,
  conv: SourceLayer,
  constant: (name: string | undefined) => TensorProto | undefined,
  values: (t: TensorProto) => Float32Array,
  file: string,
): SourceBn {
  const mode = int(n, 'training_mode', 0);
  const outputs = n.output.filter((o) => o !== '').length;
  if (mode !== 0 || outputs > 1)
    throw new UsageError(
      `Expected BatchNormalization ${label} in ${file} in eval mode (training_mode 0, one output; export after model.eval()) but received ${mode !== 0 ? `training_mode ${mode}` : `${outputs} outputs`}`,
    );
  const names = ['scale', 'B', 'input_mean', 'input_var'];
  const [weight, bias, mean, variance] = names.map((what, i) => {
    const t = constant(n.input[i + 1]);
    if (!t) throw new UsageError(`Expected the ${what} of BatchNormalization ${label} stored in ${file} but ${n.input[i + 1]} is computed`);
    return values(t);
  }) as [Float32Array, Float32Array, Float32Array, Float32Array];
  const bn: SourceBn = { name: label, weight, bias, mean, variance, eps: float(n, 'epsilon', 1e-5) };
  return checkedBn(bn, conv.shape[0]!, { file, conv: conv.name, names: names.map((w, i) => `${n.input[i + 1]} (the ${w} of ${label})`) });
}
