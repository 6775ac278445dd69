/**
 * Hostile inputs, written once into a folder so that every command's tests can feed them: files a
 * user may hand the CLI by mistake (missing, a directory, empty, garbage, truncated, another kind
 * of file) and model files that are damaged or disagree with themselves. Each is small and made in
 * milliseconds from a valid tiny model.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { buildModel, type ModelOptions } from '../../src/zoo/index.js';
import { writeClassIndex } from '../../src/data/index.js';
import { initParams } from '../../src/graph/init.js';
import { decodeModel, encodeModel, type ModelProto } from '../../src/onnx/proto.js';
import { CHECKPOINT_FORMAT, saveCheckpoint } from '../../src/train/checkpoint.js';
import { exportInferenceModel, inferenceParams, METADATA } from '../../src/zoo/export.js';
import { loadSafetensors, saveSafetensors, type TensorInput } from '../../src/runtime/safetensors.js';

/** The tiny model every valid file holds: VGG-A at 1/16 width, 32 px, 8 classes (as the synthetic data). */
export const TINY: Partial<ModelOptions> = { width: 1 / 16, inputSize: 32, classes: 8 };

/** Valid files, and the hostile ones below, each named for what is wrong with it. */
export interface Corpus {
  dir: string;
  /** Valid: a checkpoint as `train` writes it (classes a–h), its ONNX export, a 40×40 PNG. */
  ckpt: string;
  onnx: string;
  image: string;
  /** Files that are wrong for any role: [what is wrong, path]. */
  files: Record<'missing' | 'directory' | 'empty' | 'garbage' | 'text', string>;
  /** Broken images. */
  images: Record<'truncated' | 'empty' | 'garbage' | 'directory', string>;
  /** Broken checkpoints (.safetensors). */
  ckpts: Record<
    | 'truncated'
    | 'plainSafetensors'
    | 'metaNotJson'
    | 'metaNull'
    | 'noModelOptions'
    | 'badFieldType'
    | 'unknownModel'
    | 'otherWidth'
    | 'otherModel'
    | 'missingTensor'
    | 'f64Tensor'
    | 'onnxNamedSafetensors',
    string
  >;
  /** Broken ONNX files. */
  onnxs: Record<
    | 'truncated'
    | 'noNodes'
    | 'shortRawData'
    | 'unknownOp'
    | 'metaNotJson'
    | 'hugeDims'
    | 'hugeInputSize'
    | 'optionsDisagree'
    | 'inputDims'
    | 'noLogits'
    | 'safetensorsNamedOnnx',
    string
  >;
  /** Folders holding the valid ONNX model beside a bad classes.json. */
  classesJson: Record<'notJson' | 'wrongShape' | 'wrongCount', string>;
}

function checkpointMeta(options: ModelOptions): Record<string, unknown> {
  return {
    format: CHECKPOINT_FORMAT,
    model: 'vgg-a',
    modelOptions: options,
    epoch: 1,
    batchInEpoch: 0,
    step: 3,
    rng: 7,
    classes: ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'],
    savedAt: new Date(0).toISOString(),
  };
}

/** Writes the corpus into a fresh temporary folder (the caller removes `dir`). */
export async function writeCorpus(prefix = 'ilsvrc-hostile-'): Promise<Corpus> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const p = (name: string) => join(dir, name);
  const built = buildModel('vgg-a', TINY, { training: false });
  const params = initParams(inferenceParams(built), 1);
  const ckpt = p('tiny.safetensors');
  const meta = checkpointMeta(built.options);
  saveCheckpoint(
    ckpt,
    { params, states: new Map(), step: 3, rng: 7 },
    {
      model: 'vgg-a',
      modelOptions: built.options,
      epoch: 1,
      batchInEpoch: 0,
      classes: ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'],
    },
  );
  mkdirSync(p('onnx'));
  const onnx = join(dir, 'onnx', 'tiny.onnx');
  const onnxBytes = exportInferenceModel(built, params);
  writeFileSync(onnx, onnxBytes);
  const image = p('image.png');
  const px = Buffer.alloc(40 * 40 * 3, 128);
  for (let i = 0; i < px.length; i += 7) px[i] = 250;
  await sharp(px, { raw: { width: 40, height: 40, channels: 3 } })
    .png()
    .toFile(image);
  const imageBytes = readFileSync(image);

  const files = {
    missing: p('missing.onnx'),
    directory: p('a-folder.onnx'),
    empty: p('empty.onnx'),
    garbage: p('garbage.onnx'),
    text: p('text.onnx'),
  };
  mkdirSync(files.directory);
  writeFileSync(files.empty, '');
  writeFileSync(files.garbage, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 2654435761) >>> 24)));
  writeFileSync(files.text, 'this is not a model\n');

  const images = { truncated: p('truncated.png'), empty: p('empty.png'), garbage: p('garbage.jpg'), directory: p('folder.png') };
  writeFileSync(images.truncated, imageBytes.subarray(0, imageBytes.length >> 1));
  writeFileSync(images.empty, '');
  writeFileSync(images.garbage, Buffer.from('\xff\xd8\xff\xe0 not really a jpeg at all', 'latin1'));
  mkdirSync(images.directory);

  // Checkpoints: the valid tensors with altered metadata, or the valid metadata with altered tensors.
  const tensors: Record<string, TensorInput> = {};
  for (const [name, data] of params) tensors[name] = { dtype: 'F32', shape: [data.length], data };
  const withMeta = (name: string, m: unknown, t: Record<string, TensorInput> = tensors) => {
    saveSafetensors(p(name), t, m === undefined ? {} : { ilsvrc: typeof m === 'string' ? m : JSON.stringify(m) });
    return p(name);
  };
  const { modelOptions: _dropped, ...noOptions } = meta;
  const firstName = [...params.keys()][0] ?? '';
  const { [firstName]: _missing, ...fewer } = tensors;
  const ckptBytes = readFileSync(ckpt);
  writeFileSync(p('truncated.safetensors'), ckptBytes.subarray(0, ckptBytes.length - 1000));
  writeFileSync(p('onnx-inside.safetensors'), onnxBytes);
  const ckpts = {
    truncated: p('truncated.safetensors'),
    plainSafetensors: withMeta('plain.safetensors', undefined),
    metaNotJson: withMeta('meta-not-json.safetensors', '{"format": "ilsvrc-checkpoint/1",'),
    metaNull: withMeta('meta-null.safetensors', 'null'),
    noModelOptions: withMeta('no-model-options.safetensors', noOptions),
    badFieldType: withMeta('bad-field-type.safetensors', { ...meta, epoch: 'one' }),
    unknownModel: withMeta('unknown-model.safetensors', { ...meta, model: 'lenet' }),
    otherWidth: withMeta('other-width.safetensors', { ...meta, modelOptions: { ...built.options, width: 0.5 } }),
    otherModel: withMeta('other-model.safetensors', { ...meta, model: 'alexnet' }),
    missingTensor: withMeta('missing-tensor.safetensors', meta, fewer),
    f64Tensor: withMeta('f64-tensor.safetensors', meta, {
      ...tensors,
      [firstName]: { dtype: 'F64', shape: [params.get(firstName)?.length ?? 0], data: Float64Array.from(params.get(firstName) ?? []) },
    }),
    onnxNamedSafetensors: p('onnx-inside.safetensors'),
  };

  // ONNX files: the valid export, decoded, altered and encoded again.
  const onnxWith = (name: string, alter: (m: ModelProto) => void) => {
    const m = decodeModel(onnxBytes);
    alter(m);
    writeFileSync(p(name), encodeModel(m));
    return p(name);
  };
  const setProp = (m: ModelProto, key: string, value: string) => {
    m.metadataProps = [...(m.metadataProps ?? []).filter((e) => e.key !== key), { key, value }];
  };
  writeFileSync(p('truncated.onnx'), onnxBytes.subarray(0, onnxBytes.length >> 1));
  writeFileSync(p('safetensors-inside.onnx'), ckptBytes);
  const onnxs = {
    truncated: p('truncated.onnx'),
    noNodes: onnxWith('no-nodes.onnx', (m) => (m.graph.node = [])),
    shortRawData: onnxWith('short-raw-data.onnx', (m) => {
      const t = m.graph.initializer?.[0];
      if (t?.rawData) t.rawData = t.rawData.subarray(0, t.rawData.byteLength - 8);
    }),
    unknownOp: onnxWith('unknown-op.onnx', (m) => {
      const n = m.graph.node[0];
      if (n) n.opType = 'ConvolutionOfTheFuture';
    }),
    metaNotJson: onnxWith('meta-not-json.onnx', (m) => setProp(m, METADATA.options, '{width: 1/16')),
    hugeDims: onnxWith('huge-dims.onnx', (m) => {
      const t = m.graph.initializer?.[0];
      if (t) t.dims = [2 ** 40, 2 ** 20];
    }),
    hugeInputSize: onnxWith('huge-input-size.onnx', (m) =>
      setProp(m, METADATA.options, JSON.stringify({ ...built.options, inputSize: 1_000_000 })),
    ),
    optionsDisagree: onnxWith('options-disagree.onnx', (m) =>
      setProp(m, METADATA.options, JSON.stringify({ ...built.options, classes: 10 })),
    ),
    inputDims: onnxWith('input-dims.onnx', (m) => {
      const dim = m.graph.input.find((v) => v.name === 'input')?.type?.tensorType?.shape?.dim;
      if (dim) for (const i of [2, 3]) dim[i] = { dimValue: 64 };
    }),
    noLogits: onnxWith('no-logits.onnx', (m) => {
      const o = m.graph.output[0];
      if (o) o.name = 'scores';
      const n = m.graph.node.find((x) => x.output.includes('logits'));
      if (n) n.output = n.output.map((x) => (x === 'logits' ? 'scores' : x));
    }),
    safetensorsNamedOnnx: p('safetensors-inside.onnx'),
  };

  const classesJson = { notJson: p('cj-not-json'), wrongShape: p('cj-wrong-shape'), wrongCount: p('cj-wrong-count') };
  for (const d of Object.values(classesJson)) {
    mkdirSync(d);
    writeFileSync(join(d, 'tiny.onnx'), onnxBytes);
  }
  writeFileSync(join(classesJson.notJson, 'classes.json'), '{"classes": [');
  writeFileSync(join(classesJson.wrongShape, 'classes.json'), 'null');
  await writeClassIndex(join(classesJson.wrongCount, 'classes.json'), ['a', 'b', 'c']);
  // The checkpoint must still read back as written (the corpus is only useful against valid files).
  loadSafetensors(ckpt);
  return { dir, ckpt, onnx, image, files, images, ckpts, onnxs, classesJson };
}
