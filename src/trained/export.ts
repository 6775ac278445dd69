/**
 * An ONNX model of a zoo network, self-describing (src/trained/card.ts): with seeded weights, or a
 * checkpoint's — read by the one checked reader, its model options the defaults, its class names,
 * view and data carried over. What `ilsvrc export` writes and the API's `exportModel` returns.
 */
import { existsSync } from 'node:fs';
import { buildModel, findModel, type BuiltModel, type ModelOptions } from '../zoo/index.js';
import { initParams } from '../graph/init.js';
import { checkpointWeights, exportInferenceModel, flatTensors, inferenceParams, type Opset } from '../zoo/export.js';
import { loadSafetensors } from '../runtime/safetensors.js';
import { UsageError } from '../util/errors.js';
import { cardMetadata } from './card.js';
import { readTrained, zooModel } from './inference.js';

export interface ExportModelOptions {
  /** Model options; with a checkpoint, those given here override the checkpoint's. */
  modelOptions?: Partial<ModelOptions>;
  /** A training checkpoint (.safetensors), or a safetensors file of weights by ilsvrc's parameter names. */
  checkpoint?: string;
  /** Seed of the random weights when there is no checkpoint (default 0). */
  seed?: number;
  opset?: Opset;
}

export interface ExportedModel {
  bytes: Uint8Array;
  built: BuiltModel;
  /** Parameters written. */
  params: number;
}

export async function exportModel(model: string, o: ExportModelOptions = {}): Promise<ExportedModel> {
  let given = o.modelOptions ?? {};
  const ckpt = o.checkpoint;
  if (ckpt !== undefined && !existsSync(ckpt)) throw new UsageError(`Expected a checkpoint for --checkpoint but ${ckpt} does not exist`);
  // Weights by ilsvrc's parameter names without an "ilsvrc" entry (not a training run's) fit the asked model.
  const plain =
    ckpt !== undefined && /\.safetensors$/i.test(ckpt) && loadSafetensors(ckpt, { headerOnly: true }).metadata['ilsvrc'] === undefined;
  const trained = ckpt === undefined || plain ? undefined : zooModel(await readTrained(ckpt), 'export');
  if (trained) {
    const asked = findModel(model).name;
    if (trained.model !== asked)
      throw new UsageError(`Expected a ${asked} model in --checkpoint ${trained.file} but it holds ${trained.model}`);
    given = { ...trained.options, ...given, aux: false };
  }
  const built = buildModel(model, given);
  const params = inferenceParams(built);
  const weights = trained
    ? checkpointWeights(params, { tensors: flatTensors(trained.weights) }, trained.file).weights
    : plain && ckpt !== undefined
      ? checkpointWeights(params, loadSafetensors(ckpt), ckpt).weights
      : initParams(params, o.seed ?? 0);
  // The model card: what evaluate, predict and visualize need to treat the file as its checkpoint.
  const metadata = cardMetadata({
    ...(trained?.classes ? { classes: trained.classes } : {}),
    ...(trained ? { view: trained.view } : {}),
    ...(trained?.data ? { data: trained.data } : {}),
    size: built.options.inputSize,
    channels: built.options.channels,
  });
  const bytes = exportInferenceModel(built, weights, { opset: o.opset ?? 18, metadata });
  return { bytes, built, params: params.reduce((n, p) => n + p.value.size, 0) };
}
