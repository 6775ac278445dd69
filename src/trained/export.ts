/**
 * An ONNX model of a zoo network, self-describing (src/trained/card.ts): with seeded weights, or a
 * checkpoint's — read by the one checked reader, its model options the defaults, its class names,
 * view and data carried over. What `ilsvrc export` writes and the API's `exportModel` returns.
 */
import { existsSync } from 'node:fs';
import { buildModel, findModel, type BuiltModel, type ModelOptions } from '../zoo/index.js';
import { initParams } from '../graph/init.js';
import { checkpointWeights, exportInferenceModel, flatTensors, inferenceParams, METADATA, type Opset } from '../zoo/export.js';
import { loadSafetensors } from '../runtime/safetensors.js';
import { UsageError } from '../util/errors.js';
import { cardMetadata } from './card.js';
import { readTrained, zooModel } from './inference.js';
import { givenInputFlags, type InputFlags } from './input.js';
import { decodeModel, encodeModel } from '../onnx/proto.js';

export interface ExportModelOptions {
  /** Model options; with a checkpoint, those given here override the checkpoint's. */
  modelOptions?: Partial<ModelOptions>;
  /** A training checkpoint (.safetensors), or a safetensors file of weights by ilsvrc's parameter names. */
  checkpoint?: string;
  /** Seed of the random weights when there is no checkpoint (default 0). */
  seed?: number;
  opset?: Opset;
  /** Input flags: for an ONNX model from elsewhere only (a zoo model's input is its own). */
  input?: InputFlags;
}

export interface ExportedModel {
  bytes: Uint8Array;
  built: BuiltModel;
  /** Parameters written. */
  params: number;
}

export async function exportModel(model: string, o: ExportModelOptions = {}): Promise<ExportedModel> {
  const flags = givenInputFlags(o.input ?? {});
  if (flags.length > 0) throw new UsageError(`Expected an ONNX model from elsewhere for ${flags.join(', ')} but ${model} is ilsvrc's`);
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

/**
 * An ONNX model from elsewhere, written again as it is with what ilsvrc needed to feed it recorded
 * in its metadata (`ilsvrc.input`: layout, size, scaling, output; the view; class names from a
 * classes.json beside it), so that evaluate and predict need no flags for it and other tools can
 * read how it is fed. Its own metadata entries are kept; earlier ilsvrc.* ones are replaced.
 */
export async function reexportOnnx(file: string, input: InputFlags = {}): Promise<{ bytes: Uint8Array; model: string }> {
  const t = await readTrained(file, { input });
  if (t.built !== undefined || t.onnx === undefined)
    throw new UsageError(
      `Expected an ONNX model from elsewhere to export again but \${file} is ilsvrc's (export its checkpoint with --checkpoint)`,
    );
  const proto = decodeModel(t.onnx, file);
  const card = cardMetadata({
    ...(t.classes ? { classes: t.classes } : {}),
    view: t.view,
    size: t.input.width,
    channels: t.input.channels,
    input: t.input,
  });
  const ours = new Set(Object.values(METADATA) as string[]);
  proto.metadataProps = [
    ...(proto.metadataProps ?? []).filter((p) => !ours.has(p.key)),
    ...Object.entries(card).map(([key, value]) => ({ key, value })),
  ];
  return { bytes: encodeModel(proto), model: t.model };
}
