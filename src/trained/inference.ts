/**
 * A trained model for evaluate/predict/visualize, from a checkpoint or an exported ONNX file. Both
 * are read and checked in one place (`readTrained`): the metadata field by field, then every
 * weight against the model the metadata describes, so a damaged or mismatched file is one line
 * naming the file and the tensor, never a crash later on. A checkpoint's weights go through the
 * exporter and an ONNX file runs as it is, both by onnxruntime, so a checkpoint and its export
 * answer identically.
 */
import { readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { buildModel, findModel, type BuiltModel, type ModelOptions, type ModelSpec } from '../zoo/index.js';
import { readClassIndex, type DataIdentity, type EvalRecipe } from '../data/index.js';
import { decodeModel, encodeModel, TensorDataType, type GraphProto, type ModelProto } from '../onnx/proto.js';
import { about, describeModel, firstNonFinite, loadCheckpoint, readModelOptions } from '../train/checkpoint.js';
import { checkpointWeights, exportInferenceModel, flatTensors, inferenceParams, METADATA, type NamedTensors } from '../zoo/export.js';
import { createSession, createSessionFromFile, modelFileError, tensor, type OrtSession } from '../runtime/ort.js';
import { UsageError } from '../util/errors.js';
import { parseJson } from '../util/json.js';
import { inlineExternalData } from '../onnx/external.js';
import { readCard, recordedInput } from './card.js';
import { modelClassNames } from './class-names.js';
import { denseModel } from './evaluate.js';
import {
  asLogits,
  describeOnnxInput,
  dimsOf,
  feedLayout,
  givenInputFlags,
  overInput,
  zooInput,
  type InputFlags,
  type ModelInput,
} from './input.js';

/** A trained model file, read and checked: its model, options, weights and class names. */
export interface TrainedModel {
  file: string;
  model: string;
  options: ModelOptions;
  /** The inference graph the metadata describes (no auxiliary heads); undefined for a plain ONNX model from elsewhere. */
  built: BuiltModel | undefined;
  /** One float32 array per parameter of `built`, each of the parameter's size. */
  weights: Map<string, Float32Array>;
  /** Class names when the checkpoint or a classes.json beside the file has them (as many as the model's classes). */
  classes: string[] | undefined;
  /** The view that matches how it was trained (a checkpoint knows its augmentation; ONNX: center). */
  view: EvalRecipe;
  /** The file's own bytes when it is an ONNX model (run as they are); undefined for a checkpoint. */
  onnx: Uint8Array | undefined;
  /** The data it learned from, when the file records it (evaluate's and visualize top's default --data). */
  data: DataIdentity | undefined;
  /** The graph's image input and its scores ("input" and "logits" in ilsvrc's files). */
  io: { input: string; output: string };
  /** How it is fed and what it answers. */
  input: ModelInput;
}

/**
 * An ONNX model that ilsvrc did not write (no ilsvrc.model metadata): it runs as it is, fed as its
 * graph, the input flags and what `export` recorded with them describe it (src/trained/input.ts),
 * its classes read from the graph's declared output shape.
 */
function plainOnnx(file: string, bytes: Uint8Array, m: ModelProto, o: ReadOptions): TrainedModel {
  const g = m.graph;
  const inits = new Set((g.initializer ?? []).map((t) => t.name));
  const input = g.input.find((v) => !inits.has(v.name));
  const output = g.output[0];
  if (!input || !output)
    throw new UsageError(`Expected an image input and a scores output in ${file} but its graph has ${input ? 'no output' : 'no input'}`);
  const show = (ds: readonly (number | undefined)[] | undefined) => (ds ? `[${ds.map((d) => d ?? '?').join(', ')}]` : 'no shape');
  const props = Object.fromEntries((m.metadataProps ?? []).map((p) => [p.key, p.value]));
  const card = readCard(props, file);
  const flags = overInput(recordedInput(props, file), o.input ?? {});
  const desc = describeOnnxInput(file, g, { input, output }, flags, o.inputSize);
  const outDims = dimsOf(output);
  const classes = outDims?.[outDims.length - 1];
  if (!outDims || outDims.length !== 2 || classes === undefined)
    throw new UsageError(`Expected ${file}'s output "${output.name}" to be scores [N, classes] but its graph declares ${show(outDims)}`);
  const { channels, width: inputSize } = desc;
  const options: ModelOptions = { classes, inputSize, channels, width: 1, dropout: undefined, aux: false, init: 'paper' };
  return {
    file,
    model: g.name || basename(file),
    options,
    built: undefined,
    weights: new Map(),
    classes: card.classes,
    view: card.view ?? 'center',
    onnx: bytes,
    data: undefined,
    io: { input: input.name, output: output.name },
    input: desc,
  };
}

/**
 * The float32 initializers of an ONNX graph as the tensors `checkpointWeights` reads (data viewed
 * in place, or copied when misaligned). Others (shapes for Reshape, say) are not weights; one named
 * like a parameter is then reported missing.
 */
function initializerTensors(g: GraphProto): NamedTensors['tensors'] {
  const out: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
  for (const t of g.initializer ?? []) {
    if (t.dataType !== TensorDataType.FLOAT) continue;
    const r = t.rawData;
    const data =
      r && r.byteLength > 0
        ? r.byteOffset % 4 === 0
          ? new Float32Array(r.buffer, r.byteOffset, r.byteLength / 4)
          : new Float32Array(Uint8Array.from(r).buffer)
        : Float32Array.from(t.floatData ?? []);
    out[t.name] = { dtype: 'F32', shape: t.dims ?? [], data };
  }
  return out;
}

/** The graph reads "input" [N, channels, size, size] and computes "logits" [N, classes], as ilsvrc exports it. */
function checkInterface(m: ModelProto, o: ModelOptions, file: string, described: string): void {
  const g = m.graph;
  const input = g.input.find((v) => v.name === 'input');
  const output = g.output.find((v) => v.name === 'logits');
  if (!input || !output) {
    throw new UsageError(
      `Expected ${file} to read "input" and compute "logits" (as ilsvrc exports a model) but its graph reads ${JSON.stringify(g.input.map((v) => v.name).filter((n) => !(g.initializer ?? []).some((t) => t.name === n)))} and computes ${JSON.stringify(g.output.map((v) => v.name))}`,
    );
  }
  if (!(g.node ?? []).some((n) => n.output.includes('logits')))
    throw new UsageError(`Expected a graph that computes "logits" in ${file} but no node does (${(g.node ?? []).length} nodes)`);
  const show = (ds: readonly (number | undefined)[] | undefined) => (ds ? `[${ds.map((d) => d ?? 'N').join(', ')}]` : 'no shape');
  const want = [o.channels, o.inputSize, o.inputSize];
  const inDims = dimsOf(input);
  if (!inDims || inDims.length !== 4 || want.some((d, i) => inDims[i + 1] !== d)) {
    throw new UsageError(
      `Expected input [N, ${want.join(', ')}] in ${file} (the model its metadata describes: ${described}) but its graph declares ${show(inDims)}`,
    );
  }
  const outDims = dimsOf(output);
  if (!outDims || outDims.length !== 2 || outDims[1] !== o.classes) {
    throw new UsageError(
      `Expected logits [N, ${o.classes}] in ${file} (the model its metadata describes: ${described}) but its graph declares ${show(outDims)}`,
    );
  }
}

interface ReadOptions {
  /** The side of an ONNX graph's open height or width. */
  inputSize?: number;
  /** How an ONNX graph from elsewhere is fed, where its graph cannot say (ilsvrc's own files record it). */
  input?: InputFlags;
  /** Class names, one per line, for a model that carries none (--labels). */
  labels?: string | undefined;
}

/**
 * Reads a checkpoint (.safetensors) or an ONNX file, and checks it throughout: an ilsvrc export
 * against the zoo model its metadata describes, any other ONNX model by its declared shapes.
 */
export async function readTrained(file: string, o: ReadOptions = {}): Promise<TrainedModel> {
  let isDir: boolean;
  try {
    isDir = statSync(file).isDirectory();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT')
      throw new UsageError(`Expected a checkpoint (.safetensors) or an .onnx file but ${file} does not exist`);
    throw e;
  }
  if (isDir) throw new UsageError(`Expected a checkpoint (.safetensors) or an .onnx file but ${file} is a directory`);
  let spec: ModelSpec;
  let given: Partial<ModelOptions>;
  let tensors: NamedTensors['tensors'];
  let classes: string[] | undefined;
  let view: EvalRecipe = 'center';
  let data: DataIdentity | undefined;
  let onnx: Uint8Array | undefined;
  let proto: ModelProto | undefined;
  if (file.toLowerCase().endsWith('.onnx')) {
    onnx = readFileSync(file);
    proto = decodeModel(onnx, file);
    // Values kept beside the model come in once, checked, so that ONNX Runtime reads no other file.
    if (inlineExternalData(proto, file)) proto = decodeModel((onnx = encodeModel(proto)), file);
    const props = Object.fromEntries((proto.metadataProps ?? []).map((p) => [p.key, p.value]));
    const name = props[METADATA.model];
    const opts = props[METADATA.options];
    if (name === undefined && opts === undefined) return withClassNames(plainOnnx(file, onnx, proto, o), o.labels);
  }
  const flags = givenInputFlags(o.input ?? {});
  if (flags.length > 0)
    throw new UsageError(
      `Expected an ONNX model from elsewhere for ${flags.join(', ')} but ${file} is ilsvrc's (its file records how it is fed)`,
    );
  if (onnx && proto) {
    const props = Object.fromEntries((proto.metadataProps ?? []).map((p) => [p.key, p.value]));
    const name = props[METADATA.model];
    const opts = props[METADATA.options];
    if (name === undefined || opts === undefined)
      throw new UsageError(
        `Expected ${file} to be exported by ilsvrc (metadata ${METADATA.model} and ${METADATA.options}) but it has only ${name === undefined ? METADATA.options : METADATA.model}`,
      );
    spec = about(`in the "${METADATA.model}" metadata of ${file}`, () => findModel(name));
    const where = `in the "${METADATA.options}" metadata of ${file}`;
    given = readModelOptions(parseJson(opts, where), where);
    tensors = initializerTensors(proto.graph);
    const card = readCard(props, file);
    classes = card.classes;
    view = card.view ?? view;
    data = card.data;
  } else {
    const ck = loadCheckpoint(file);
    spec = about(`in the "ilsvrc" metadata of ${file}`, () => findModel(ck.meta.model));
    given = ck.meta.modelOptions;
    tensors = flatTensors(ck.state.params);
    classes = ck.meta.classes;
    if (ck.meta.view !== undefined) view = ck.meta.view;
    data = ck.meta.data;
  }
  const built = about(`(the model the metadata of ${file} describes)`, () =>
    buildModel(spec, { ...given, aux: false }, { training: false }),
  );
  const described = describeModel(spec, built.options);
  const { weights } = checkpointWeights(inferenceParams(built), { tensors }, file, `the model its metadata describes (${described})`);
  if (proto) checkInterface(proto, built.options, file, described);
  const bad = firstNonFinite({ params: weights, states: new Map() });
  if (bad) throw new UsageError(`Expected finite values in ${file} but tensor ${bad} holds NaN or Infinity (weights of a diverged run)`);
  return withClassNames(
    {
      file,
      model: spec.name,
      options: built.options,
      built,
      weights,
      classes,
      view,
      onnx,
      data,
      io: { input: 'input', output: 'logits' },
      input: zooInput(built.options.inputSize, built.options.channels),
    },
    o.labels,
  );
}

/** The class names a model file has, else those of a classes.json beside it, else as modelClassNames decides. */
async function withClassNames(t: TrainedModel, labels: string | undefined): Promise<TrainedModel> {
  let classes = t.classes;
  let namesFrom = `the "ilsvrc" metadata of ${t.file}`;
  const beside = join(dirname(t.file), 'classes.json');
  if (classes === undefined && statSync(beside, { throwIfNoEntry: false })?.isFile()) {
    classes = await readClassIndex(beside);
    namesFrom = beside;
  }
  return { ...t, classes: modelClassNames(t.file, t.options.classes, classes, namesFrom, labels) };
}

export interface InferenceModel {
  model: string;
  options: ModelOptions;
  /** Class names when the checkpoint or a classes.json beside the file has them. */
  classes: string[] | undefined;
  /** The view that matches how it was trained (recorded in checkpoints and ilsvrc's ONNX files; else center). */
  view: EvalRecipe;
  /** The data it learned from, when the file records it. */
  data: DataIdentity | undefined;
  /** How it is fed (layout, size, scaling) and what it answers. */
  input: ModelInput;
  session: OrtSession;
  /** Logits [rows, classes] of x [rows, C, H, W]; H and W are the input's unless the model is dense. */
  logits(x: Float32Array, rows: number, height?: number, width?: number): Promise<Float32Array>;
  release(): Promise<void>;
}

/** A trained model that is one of the zoo's (`what` needs its graph), or a one-line refusal for a plain ONNX file. */
export function zooModel(t: TrainedModel, what: string): TrainedModel & { built: BuiltModel } {
  if (t.built === undefined)
    throw new UsageError(
      `Expected a checkpoint or an ONNX file exported by ilsvrc for ${what} (it rebuilds the network) but ${t.file} is an ONNX model from elsewhere`,
    );
  return t as TrainedModel & { built: BuiltModel };
}

/** With `dense`, the model's fully convolutional form (VGG's dense evaluation), for inputs of any size. */
export async function openInference(
  file: string,
  o: { threads?: number; dense?: boolean; inputSize?: number; input?: InputFlags; labels?: string | undefined } = {},
): Promise<InferenceModel> {
  const t = await readTrained(file, {
    ...(o.inputSize !== undefined ? { inputSize: o.inputSize } : {}),
    ...(o.input !== undefined ? { input: o.input } : {}),
    ...(o.labels !== undefined ? { labels: o.labels } : {}),
  });
  const so = o.threads ? { threads: o.threads } : {};
  // The user's ONNX graph runs as it is, so what ONNX Runtime rejects in it is theirs to fix; the
  // graph exported from a checkpoint (or made dense from either) is ours.
  const session = o.dense
    ? await createSession(denseModel(zooModel(t, '--crop dense').built.spec.name, t.options, t.weights), so)
    : t.onnx
      ? await createSessionFromFile(t.onnx, file, so)
      : await createSession(exportInferenceModel(zooModel(t, 'a checkpoint').built, t.weights), so);
  const desc = t.input;
  const run = async (x: Float32Array, rows: number, height: number, width: number): Promise<Float32Array> => {
    const fed = o.dense ? { data: x, dims: [rows, desc.channels, height, width] } : feedLayout(desc, x, rows);
    let out;
    try {
      out = await session.run({ [t.io.input]: tensor('float32', fed.data, fed.dims) });
    } catch (e) {
      if (t.onnx && !o.dense) throw modelFileError(file, e);
      throw e;
    }
    return asLogits(desc, out[t.io.output]!.data as Float32Array);
  };
  return {
    model: t.model,
    options: t.options,
    classes: t.classes,
    view: t.view,
    data: t.data,
    input: desc,
    session,
    async logits(x, rows, height = desc.height, width = desc.width) {
      const b = desc.batch;
      if (b === undefined || b === rows) return run(x, rows, height, width);
      // A graph of a fixed batch size: runs of it, the last padded with zeros and cut off.
      const per = x.length / rows;
      const C = t.options.classes;
      const logits = new Float32Array(rows * C);
      for (let r = 0; r < rows; r += b) {
        const chunk = new Float32Array(b * per);
        chunk.set(x.subarray(r * per, Math.min(rows, r + b) * per));
        const out = await run(chunk, b, height, width);
        logits.set(out.subarray(0, (Math.min(rows, r + b) - r) * C), r * C);
      }
      return logits;
    },
    release: () => session.release(),
  };
}
