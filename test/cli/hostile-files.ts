/**
 * Model files that are hostile in what they hold rather than in how they are damaged: weights that
 * are NaN or infinite (ONNX, Caffe, a safetensors state dict), ONNX external data that points out
 * of the model's folder or at something that is not a file, and files that say two things about
 * one name. Each is made in milliseconds from the tiny VGG-A, beside valid files of the same kinds,
 * so that a test can tell a refusal from a reader that refuses everything.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initParams } from '../../src/graph/init.js';
import { modelLayers } from '../../src/import/index.js';
import { DataLocation, decodeModel, encodeModel, type ModelProto } from '../../src/onnx/proto.js';
import { saveSafetensors, type TensorInput } from '../../src/runtime/safetensors.js';
import { CHECKPOINT_FORMAT } from '../../src/train/checkpoint.js';
import { buildModel } from '../../src/zoo/index.js';
import { exportInferenceModel, inferenceParams } from '../../src/zoo/export.js';
import { chainCaffemodel } from '../import/caffe-files.js';

/** `ilsvrc import` of one of these files as the tiny VGG-A. */
export const importArgs = (file: string, out: string): string[] => [
  'import',
  file,
  '--as',
  'vgg-a',
  '--width',
  '0.0625',
  '--input-size',
  '32',
  '-o',
  out,
];

export interface HostileFiles {
  dir: string;
  /** Imports without complaint: the same weights as ONNX (inline and external data), Caffe and a state dict. */
  valid: Record<'onnx' | 'external' | 'caffe' | 'stateDict', string>;
  /** A NaN or infinite weight; `names` the tensor each names as the file calls it. */
  nonFinite: Record<'onnx' | 'caffe' | 'stateDict', string>;
  nonFiniteNames: Record<'onnx' | 'caffe' | 'stateDict', string>;
  /** ONNX files whose external data is not a plain file inside their folder; `secret` is the file outside. */
  outside: Record<'symlink' | 'fifo' | 'hugeLength' | 'nul' | 'dot' | 'climb', string>;
  secret: string;
  /** Files that define one name twice, or a graph that feeds itself. */
  contradictions: Record<'dupInitializer' | 'cycle' | 'dupCaffeLayer' | 'dupSafetensorsKey' | 'dupCheckpointField', string>;
}

/** Rewrites the JSON header of a safetensors file (the data offsets are relative to its end, so they stay valid). */
function editHeader(bytes: Uint8Array, edit: (text: string) => string): Uint8Array {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  const text = edit(new TextDecoder().decode(bytes.subarray(8, 8 + n)).trimEnd());
  const raw = new TextEncoder().encode(text);
  const padded = Math.ceil(raw.length / 8) * 8;
  const out = new Uint8Array(8 + padded + bytes.length - 8 - n).fill(0x20, 8, 8 + padded);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(raw, 8);
  out.set(bytes.subarray(8 + n), 8 + padded);
  return out;
}

/** Writes the files into a fresh folder inside `parent` (the caller removes `dir`). */
export function writeHostileFiles(parent = tmpdir()): HostileFiles {
  const dir = mkdtempSync(join(parent, 'ilsvrc-hostile-files-'));
  const p = (name: string) => join(dir, name);
  const built = buildModel('vgg-a', { width: 1 / 16, inputSize: 32, classes: 8 }, { training: false });
  const params = initParams(inferenceParams(built), 1);
  const onnxBytes = exportInferenceModel(built, params);
  const onnxWith = (path: string, alter: (m: ModelProto) => void): string => {
    const m = decodeModel(onnxBytes);
    alter(m);
    writeFileSync(path, encodeModel(m));
    return path;
  };
  const poisoned = (name: string, at: number, value: number): Map<string, Float32Array> => {
    const w = new Map([...params].map(([k, v]) => [k, Float32Array.from(v)]));
    w.get(name)![at] = value;
    return w;
  };
  const layers = modelLayers(built);
  const shapes = new Map(
    layers.flatMap(
      (l) =>
        [
          [l.weight, [...l.shape]],
          [l.bias, [l.shape[0]!]],
        ] as [string, number[]][],
    ),
  );
  const stateDict = (path: string, w: ReadonlyMap<string, Float32Array>): string => {
    const tensors: Record<string, TensorInput> = {};
    for (const [name, data] of w) tensors[name] = { dtype: 'F32', shape: shapes.get(name)!, data };
    saveSafetensors(path, tensors);
    return path;
  };

  writeFileSync(p('valid.onnx'), onnxBytes);
  writeFileSync(p('valid.caffemodel'), chainCaffemodel(built, params));
  const valid = { onnx: p('valid.onnx'), external: '', caffe: p('valid.caffemodel'), stateDict: stateDict(p('valid.safetensors'), params) };

  const nonFinite = {
    onnx: onnxWith(p('nan.onnx'), (m) => {
      const t = m.graph.initializer!.find((x) => x.name === 'fc8.bias')!;
      const v = new Float32Array(new Uint8Array(t.rawData!).buffer);
      v[3] = NaN;
      t.rawData = new Uint8Array(v.buffer);
    }),
    caffe: p('inf.caffemodel'),
    stateDict: stateDict(p('inf.safetensors'), poisoned('fc7.weight', 17, -Infinity)),
  };
  writeFileSync(nonFinite.caffe, chainCaffemodel(built, poisoned('conv2_1.weight', 5, Infinity)));
  const nonFiniteNames = { onnx: 'fc8.bias', caffe: 'conv2_1', stateDict: 'fc7.weight' };

  // External data: conv1_1.weight's bytes in a file beside the model, named by `location`.
  mkdirSync(p('ext'));
  mkdirSync(p('outside'));
  const first = decodeModel(onnxBytes).graph.initializer!.find((t) => t.name === 'conv1_1.weight')!;
  const weightBytes = new Uint8Array(first.rawData!);
  writeFileSync(p('ext/weights.bin'), weightBytes);
  const secret = p('outside/secret.bin');
  writeFileSync(secret, weightBytes); // the right size: only where it lies is wrong
  symlinkSync(secret, p('ext/link.bin'));
  execFileSync('mkfifo', [p('ext/pipe.bin')]);
  const external = (name: string, entries: Record<string, string>): string =>
    onnxWith(p(`ext/${name}.onnx`), (m) => {
      const t = m.graph.initializer!.find((x) => x.name === 'conv1_1.weight')!;
      delete t.rawData;
      t.dataLocation = DataLocation.EXTERNAL;
      t.externalData = Object.entries(entries).map(([key, value]) => ({ key, value }));
    });
  valid.external = external('external', { location: 'weights.bin', offset: '0', length: String(weightBytes.byteLength) });
  const outside = {
    symlink: external('symlink', { location: 'link.bin' }),
    fifo: external('fifo', { location: 'pipe.bin' }),
    hugeLength: external('huge-length', { location: 'weights.bin', length: '1000000000000000' }),
    nul: external('nul', { location: 'weights.bin\0.txt' }),
    dot: external('dot', { location: '.' }),
    climb: external('climb', { location: '../outside/secret.bin' }),
  };

  // Contradictions.
  writeFileSync(
    p('dup-key.safetensors'),
    editHeader(readFileSync(valid.stateDict), (text) => {
      const at = text.indexOf('"fc8.bias"');
      const entry = /"fc8\.bias":\{[^}]*\}/.exec(text)![0];
      return `${text.slice(0, at)}${entry.replace('"shape":[8]', '"shape":[2,4]')},${text.slice(at)}`;
    }),
  );
  const ckptMeta = {
    format: CHECKPOINT_FORMAT,
    model: 'vgg-a',
    modelOptions: built.options,
    epoch: 1,
    batchInEpoch: 0,
    step: 3,
    rng: 7,
    savedAt: new Date(0).toISOString(),
  };
  const ckptTensors: Record<string, TensorInput> = {};
  for (const [name, data] of params) ckptTensors[name] = { dtype: 'F32', shape: [data.length], data };
  const twice = JSON.stringify(ckptMeta).replace('"epoch":1,', '"epoch":1,"epoch":40,');
  saveSafetensors(p('dup-field.safetensors'), ckptTensors, { ilsvrc: twice });
  const wider = buildModel('vgg-a', { width: 1 / 8, inputSize: 32, classes: 8 }, { training: false });
  const widerNet = chainCaffemodel(wider, initParams(inferenceParams(wider), 2));
  writeFileSync(p('dup-layer.caffemodel'), Buffer.concat([widerNet, chainCaffemodel(built, params)]));
  const contradictions = {
    dupInitializer: onnxWith(p('dup-initializer.onnx'), (m) => {
      const t = m.graph.initializer!.find((x) => x.name === 'conv2_1.weight')!;
      m.graph.initializer!.push({ ...t, rawData: new Uint8Array(t.rawData!.byteLength) });
    }),
    cycle: onnxWith(p('cycle.onnx'), (m) => {
      // conv1_1 reads the output of the ReLU that follows it.
      const conv = m.graph.node.find((n) => n.opType === 'Conv')!;
      const relu = m.graph.node.find((n) => n.input[0] === conv.output[0])!;
      conv.input[0] = relu.output[0]!;
    }),
    dupCaffeLayer: p('dup-layer.caffemodel'),
    dupSafetensorsKey: p('dup-key.safetensors'),
    dupCheckpointField: p('dup-field.safetensors'),
  };
  return { dir, valid, nonFinite, nonFiniteNames, outside, secret, contradictions };
}
