/**
 * `input: 'caffe'`: a model whose first layer turns the pipeline's tensor (RGB, torchvision's
 * normalisation) into Caffe's (BGR, 0–255 less the mean) computes exactly what the same weights
 * compute on the hand-converted tensor; the option is refused for gray models, validated where
 * files record it, and named by summary.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { buildModel } from '../../src/zoo/index.js';
import { initParams } from '../../src/graph/init.js';
import { exportInferenceModel, inferenceParams } from '../../src/zoo/export.js';
import { readModelOptions } from '../../src/train/checkpoint.js';
import { Rng } from '../../src/util/rng.js';
import { UsageError } from '../../src/util/errors.js';
import { assertUsageError, ilsvrc } from '../cli/run.js';
import { toCaffe } from '../import/caffe-files.js';

const TINY = { width: 1 / 16, inputSize: 64, classes: 10 } as const;

async function run(bytes: Uint8Array, x: Float32Array, n: number): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
  try {
    const { logits } = await s.run({ input: new ort.Tensor('float32', x, [n, 3, TINY.inputSize, TINY.inputSize]) });
    return Float32Array.from(logits!.data as Float32Array);
  } finally {
    await s.release();
  }
}

test('a Caffe-input model on the pipeline tensor computes the plain model on the BGR 0–255 mean-subtracted tensor', async () => {
  const caffe = buildModel('nin', { ...TINY, input: 'caffe' });
  const plain = buildModel('nin', TINY);
  assert.equal(caffe.options.input, 'caffe');
  assert.equal(plain.options.input, undefined);
  assert.equal(caffe.graph.paramCount(), plain.graph.paramCount(), 'the input layer has no parameters');
  const weights = initParams(inferenceParams(plain), 7);
  const n = 2;
  const plane = TINY.inputSize * TINY.inputSize;
  const rng = new Rng(3);
  // Pixels as the pipeline gives them: uniform in [0, 1], normalised per RGB channel.
  const x = new Float32Array(n * 3 * plane);
  const [mean, std] = [
    [0.485, 0.456, 0.406],
    [0.229, 0.224, 0.225],
  ];
  for (let i = 0; i < x.length; i++) {
    const c = Math.floor(i / plane) % 3;
    x[i] = (rng.next() - mean[c]!) / std[c]!;
  }
  const got = await run(exportInferenceModel(caffe, weights), x, n);
  const want = await run(exportInferenceModel(plain, weights), toCaffe(x, n, plane), n);
  let d = 0;
  let m = 0;
  for (let i = 0; i < want.length; i++) {
    d = Math.max(d, Math.abs(got[i]! - want[i]!));
    m = Math.max(m, Math.abs(want[i]!));
  }
  assert.ok(m > 0 && d / m <= 1e-5, `relative error ${d / m}`);
  // Fed unconverted, the plain model computes something else: the layer matters.
  const raw = await run(exportInferenceModel(plain, weights), x, n);
  assert.ok(raw.some((v, i) => Math.abs(v - want[i]!) > 1e-3 * m));
});

test('a training graph builds through the input layer (its ops have gradient rules)', () => {
  const b = buildModel('nin', { ...TINY, input: 'caffe' }, { training: true, batch: 2 });
  const ops = new Set(b.graph.nodes.filter((n) => n.scope.startsWith('caffe_input')).map((n) => n.op));
  assert.deepEqual([...ops].sort(), ['Add', 'Concat', 'Mul', 'Slice']);
});

test('gray models refuse --input caffe in one line; "torchvision" is the default and is stored as absent', async () => {
  assert.throws(
    () => buildModel('nin', { ...TINY, channels: 1, input: 'caffe' }),
    (e: unknown) => e instanceof UsageError && /^Expected 3 channels for --input caffe \(.*\) but received --channels 1$/.test(e.message),
  );
  assert.equal(buildModel('nin', { ...TINY, input: 'torchvision' }).options.input, undefined);
  assertUsageError(await ilsvrc(['summary', 'nin', '--channels', '1', '--input', 'caffe']), '--input caffe', '--channels 1');
  assertUsageError(await ilsvrc(['summary', 'nin', '--input', 'bgr']), '--input', 'bgr');
  assert.throws(
    () => readModelOptions({ classes: 10, inputSize: 64, channels: 3, width: 1, input: 'bgr' }, 'in x.safetensors'),
    /Expected "torchvision" or "caffe" for input in x\.safetensors but received "bgr"/,
  );
});

test('summary names the option in its variant line; the input layer adds no parameters', async () => {
  const s = await ilsvrc(['summary', 'alexnet', '--lrn', 'caffe', '--pool', 'ceil', '--input', 'caffe', '--input-size', '135', '--json']);
  assert.equal(s.code, 0, s.stderr);
  const j = JSON.parse(s.stdout) as { variant: string; params: number };
  assert.equal(j.variant, 'lrn caffe, pool ceil, input caffe');
  const plain = JSON.parse(
    (await ilsvrc(['summary', 'alexnet', '--lrn', 'caffe', '--pool', 'ceil', '--input-size', '135', '--json'])).stdout,
  ) as typeof j;
  assert.equal(j.params, plain.params);
});
