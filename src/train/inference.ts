/**
 * A trained model for evaluate/predict, from a checkpoint or an exported ONNX file: both become the
 * same inference ONNX (a checkpoint's weights go through the exporter), run by onnxruntime, so a
 * checkpoint and its export answer identically.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { buildModel, modelOptions, findModel, type ModelOptions } from '../../graphs/index.js';
import { readClassIndex, type EvalRecipe, type TrainRecipe } from '../data/index.js';
import { decodeModel, type ModelProto, TensorDataType } from '../onnx/proto.js';
import { loadCheckpoint } from '../runtime/checkpoint.js';
import { exportInferenceModel, METADATA } from '../runtime/export.js';
import { createSession, tensor, type OrtSession } from '../runtime/ort.js';
import { UsageError } from '../util/errors.js';
import { denseModel } from './evaluate.js';
import { evalViewFor } from './fit.js';

export interface InferenceModel {
  model: string;
  options: ModelOptions;
  /** Class names when the checkpoint or a classes.json beside the file has them. */
  classes: string[] | undefined;
  /** The view that matches how it was trained (a checkpoint knows its augmentation; ONNX: center). */
  view: EvalRecipe;
  session: OrtSession;
  /** Logits [rows, classes] of x [rows, C, H, W]; H and W are inputSize unless the model is dense. */
  logits(x: Float32Array, rows: number, height?: number, width?: number): Promise<Float32Array>;
  release(): Promise<void>;
}

/** With `dense`, the model's fully convolutional form (VGG's dense evaluation), for inputs of any size. */
export async function openInference(file: string, o: { threads?: number; dense?: boolean } = {}): Promise<InferenceModel> {
  if (!existsSync(file)) throw new UsageError(`Expected a checkpoint (.safetensors) or an .onnx file but ${file} does not exist`);
  let bytes: Uint8Array;
  let model: string;
  let options: ModelOptions;
  let classes: string[] | undefined;
  let view: EvalRecipe = 'center';
  if (file.toLowerCase().endsWith('.onnx')) {
    bytes = readFileSync(file);
    let props: Record<string, string>;
    let proto: ModelProto;
    try {
      proto = decodeModel(bytes);
      props = Object.fromEntries((proto.metadataProps ?? []).map((p) => [p.key, p.value]));
    } catch (e) {
      throw new UsageError(`Expected an ONNX model in ${file} but it does not parse: ${(e as Error).message}`);
    }
    const name = props[METADATA.model];
    const opts = props[METADATA.options];
    if (name === undefined || opts === undefined) throw new UsageError(`Expected ${file} to be exported by ilsvrc (metadata ${METADATA.model}) but it has no such entry`);
    model = findModel(name).name;
    options = modelOptions(findModel(name), JSON.parse(opts) as Partial<ModelOptions>);
    if (o.dense) bytes = denseModel(model, options, initializerWeights(proto));
  } else {
    const ck = loadCheckpoint(file);
    model = ck.meta.model;
    options = modelOptions(findModel(model), { ...ck.meta.modelOptions, aux: false });
    classes = ck.meta.classes;
    const augment = (ck.meta.extra?.['fit'] as { augment?: TrainRecipe } | undefined)?.augment;
    if (augment !== undefined) view = evalViewFor(augment);
    bytes = o.dense ? denseModel(model, options, ck.state.params) : exportInferenceModel(buildModel(model, options, { training: false }), ck.state.params);
  }
  const beside = join(dirname(file), 'classes.json');
  if (classes === undefined && existsSync(beside)) classes = await readClassIndex(beside);
  const session = await createSession(bytes, o.threads ? { threads: o.threads } : {});
  const { channels, inputSize } = options;
  return {
    model,
    options,
    classes,
    view,
    session,
    async logits(x, rows, height = inputSize, width = inputSize) {
      const out = await session.run({ input: tensor('float32', x, [rows, channels, height, width]) });
      return out['logits']!.data as Float32Array;
    },
    release: () => session.release(),
  };
}

/** The float32 initializers of an ONNX model by name (raw bytes are copied when not 4-byte aligned). */
function initializerWeights(proto: ModelProto): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const t of proto.graph.initializer ?? []) {
    if (t.dataType !== TensorDataType.FLOAT) continue;
    const r = t.rawData;
    if (r) out.set(t.name, r.byteOffset % 4 === 0 ? new Float32Array(r.buffer, r.byteOffset, r.byteLength / 4) : new Float32Array(new Uint8Array(r).buffer));
    else if (t.floatData) out.set(t.name, Float32Array.from(t.floatData));
  }
  return out;
}
