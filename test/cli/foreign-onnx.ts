/**
 * ONNX classifiers as other exporters write them, and the direct onnxruntime run that feeds them as
 * their authors meant: the reference predict and evaluate must agree with.
 *
 * `kerasLikeModel` is the shape tf2onnx gives a Keras model: input "input_1" [unk__N, H, W, 3],
 * a Transpose to NCHW, a convolution, global pooling, a MatMul + Add dense layer and a Softmax
 * named "predictions". `PYTHON_KERAS_LIKE` writes the same with Python's onnx helper.
 */
import { spawnSync } from 'node:child_process';
import ort from 'onnxruntime-node';
import sharp from 'sharp';
import { encodeModel, TensorDataType, type NodeProto, type TensorProto } from '../../src/onnx/proto.js';

export interface KerasLike {
  height: number;
  width: number;
  classes: number;
  /** Channels last with a leading Transpose (as tf2onnx), else channels first. */
  layout: 'nhwc' | 'nchw';
  /** A Softmax at the output (probabilities), else logits. */
  softmax: boolean;
  /** A fixed batch size instead of the symbolic "unk__" one. */
  batch?: number;
}

/** Seeded values in [-1, 1): the weights differ per file but not per run. */
function values(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  });
}

function init(name: string, dims: number[], data: Float32Array | number[], dataType: number = TensorDataType.FLOAT): TensorProto {
  const raw = dataType === TensorDataType.FLOAT ? new Uint8Array(Float32Array.from(data).buffer) : undefined;
  return raw ? { name, dims, dataType, rawData: raw } : { name, dims, dataType, int64Data: [...data] };
}

export function kerasLikeModel(o: KerasLike): Uint8Array {
  const K = 8;
  const dim = (v: number | string) => (typeof v === 'number' ? { dimValue: v } : { dimParam: v });
  const batch = o.batch ?? 'unk__612';
  const inDims = o.layout === 'nhwc' ? [batch, o.height, o.width, 3] : [batch, 3, o.height, o.width];
  const nodes: NodeProto[] = [
    ...(o.layout === 'nhwc'
      ? [
          {
            input: ['input_1'],
            output: ['x_nchw'],
            opType: 'Transpose',
            name: 'transpose',
            attribute: [{ name: 'perm', type: 7, ints: [0, 3, 1, 2] }],
          },
        ]
      : [{ input: ['input_1'], output: ['x_nchw'], opType: 'Identity', name: 'id' }]),
    {
      input: ['x_nchw', 'conv_w', 'conv_b'],
      output: ['conv'],
      opType: 'Conv',
      name: 'conv1',
      attribute: [
        { name: 'kernel_shape', type: 7, ints: [3, 3] },
        { name: 'pads', type: 7, ints: [1, 1, 1, 1] },
      ],
    },
    { input: ['conv'], output: ['relu'], opType: 'Relu', name: 'relu' },
    { input: ['relu'], output: ['gap'], opType: 'GlobalAveragePool', name: 'gap' },
    { input: ['gap'], output: ['flat'], opType: 'Flatten', name: 'flatten' },
    { input: ['flat', 'dense_w'], output: ['mm'], opType: 'MatMul', name: 'dense/MatMul' },
    { input: ['mm', 'dense_b'], output: [o.softmax ? 'dense' : 'predictions'], opType: 'Add', name: 'dense/BiasAdd' },
    ...(o.softmax ? [{ input: ['dense'], output: ['predictions'], opType: 'Softmax', name: 'predictions/Softmax' }] : []),
  ];
  return encodeModel({
    irVersion: 8,
    opsetImport: [{ version: 13 }],
    producerName: 'tf2onnx',
    graph: {
      name: 'tf2onnx',
      node: nodes,
      initializer: [
        init('conv_w', [K, 3, 3, 3], values(K * 27, 7)),
        init('conv_b', [K], values(K, 11)),

        init('dense_w', [K, o.classes], values(K * o.classes, 13)),
        init('dense_b', [o.classes], values(o.classes, 17)),
      ],
      input: [{ name: 'input_1', type: { tensorType: { elemType: 1, shape: { dim: inDims.map(dim) } } } }],
      output: [{ name: 'predictions', type: { tensorType: { elemType: 1, shape: { dim: [dim(batch), dim(o.classes)] } } } }],
    },
  });
}

/** Python's onnx helper writing a Keras-like classifier: argv file, height, width, classes. */
export const PYTHON_KERAS_LIKE = `
import sys, numpy as np, onnx
from onnx import helper, TensorProto, numpy_helper
path, H, W, C = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = np.random.default_rng(3)
K = 6
inits = [numpy_helper.from_array(a.astype(np.float32), n) for n, a in [
  ('conv_w', rng.standard_normal((K, 3, 3, 3))), ('conv_b', rng.standard_normal(K)),
  ('dense_w', 3 * rng.standard_normal((K, C))), ('dense_b', rng.standard_normal(C))]]
nodes = [
  helper.make_node('Transpose', ['input_1'], ['t'], perm=[0, 3, 1, 2]),
  helper.make_node('Conv', ['t', 'conv_w', 'conv_b'], ['c'], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
  helper.make_node('Relu', ['c'], ['r']),
  helper.make_node('GlobalAveragePool', ['r'], ['g']),
  helper.make_node('Flatten', ['g'], ['f']),
  helper.make_node('MatMul', ['f', 'dense_w'], ['m']),
  helper.make_node('Add', ['m', 'dense_b'], ['a']),
  helper.make_node('Softmax', ['a'], ['predictions'], axis=-1),
]
graph = helper.make_graph(nodes, 'keras_like', [helper.make_tensor_value_info('input_1', TensorProto.FLOAT, ['unk__97', H, W, 3])],
  [helper.make_tensor_value_info('predictions', TensorProto.FLOAT, ['unk__98', C])], inits)
model = helper.make_model(graph, producer_name='keras2onnx', opset_imports=[helper.make_opsetid('', 13)])
model.ir_version = 7
onnx.checker.check_model(model)
onnx.save(model, path)
`;

/** Whether Python's onnx module is there (the tests that need it skip visibly without it). */
export function hasPythonOnnx(): boolean {
  return spawnSync('python3', ['-c', 'import onnx, numpy'], { stdio: 'ignore' }).status === 0;
}

export function writePythonKerasLike(file: string, height: number, width: number, classes: number): void {
  const r = spawnSync('python3', ['-c', PYTHON_KERAS_LIKE, file, String(height), String(width), String(classes)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`python3 could not write ${file}: ${r.stderr}`);
}

/**
 * A colour of its own (from the seed) with noise over it, exactly width × height, so that the whole
 * image resized (--crop full) is the image itself and images differ in what the model answers.
 */
export async function writeNoisePng(file: string, width: number, height: number, seed: number): Promise<void> {
  const tint = values(3, seed * 31 + 5);
  const px = Uint8Array.from(values(width * height * 3, seed), (v, i) => Math.floor(((tint[i % 3]! + 1) * 0.75 + (v + 1) * 0.25) * 127.99));
  await sharp(Buffer.from(px), { raw: { width, height, channels: 3 } })
    .png()
    .toFile(file);
}

export interface Feeding {
  layout: 'nhwc' | 'nchw';
  scale: number;
  mean: number[];
  std: number[];
  softmax: boolean;
}

/**
 * Probabilities [images][classes] from onnxruntime fed as the model's author meant: each image's
 * pixels × scale − mean over std, in the model's layout; logits softmaxed here in float64.
 */
export async function directProbabilities(model: string, images: readonly string[], f: Feeding): Promise<number[][]> {
  const session = await ort.InferenceSession.create(model);
  try {
    const out: number[][] = [];
    for (const img of images) {
      const { data, info } = await sharp(img).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      const [H, W] = [info.height, info.width];
      const x = new Float32Array(H * W * 3);
      for (let p = 0; p < H * W; p++) {
        for (let c = 0; c < 3; c++) {
          const v = (data[p * 3 + c]! * f.scale - f.mean[c]!) / f.std[c]!;
          x[f.layout === 'nhwc' ? p * 3 + c : c * H * W + p] = v;
        }
      }
      const dims = f.layout === 'nhwc' ? [1, H, W, 3] : [1, 3, H, W];
      const name = session.inputNames[0]!;
      const res = await session.run({ [name]: new ort.Tensor('float32', x, dims) });
      const y = Array.from(res[session.outputNames[0]!]!.data as Float32Array);
      if (f.softmax) out.push(y);
      else {
        const m = Math.max(...y);
        const e = y.map((v) => Math.exp(v - m));
        const s = e.reduce((a, b) => a + b, 0);
        out.push(e.map((v) => v / s));
      }
    }
    return out;
  } finally {
    await session.release();
  }
}

/** Class indices by decreasing probability, the first k. */
export function topIndices(p: readonly number[], k: number): number[] {
  return p
    .map((v, i) => [v, i] as const)
    .sort((a, b) => b[0] - a[0] || a[1] - b[1])
    .slice(0, k)
    .map(([, i]) => i);
}

/** Pooling then flattening, its input and output declared as given ("?" an open dim): shapes a reader must judge. */
export function declaredShapeModel(
  inDims: readonly (number | '?')[],
  outDims: readonly (number | '?')[],
  metadata: Record<string, string> = {},
): Uint8Array {
  const dim = (v: number | '?', i: number) => (v === '?' ? { dimParam: `d${i}` } : { dimValue: v });
  return encodeModel({
    irVersion: 8,
    opsetImport: [{ version: 13 }],
    metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
    graph: {
      name: 'declared',
      node: [
        { input: ['x'], output: ['pooled'], opType: 'GlobalAveragePool', name: 'gap' },
        { input: ['pooled'], output: ['y'], opType: 'Flatten', name: 'flat' },
      ],
      input: [{ name: 'x', type: { tensorType: { elemType: 1, shape: { dim: inDims.map(dim) } } } }],
      output: [{ name: 'y', type: { tensorType: { elemType: 1, shape: { dim: outDims.map(dim) } } } }],
    },
  });
}
