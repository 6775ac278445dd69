/**
 * A `.caffemodel` imports as a checkpoint with `input: 'caffe'`: on the pipeline's tensor it computes
 * what the Caffe network computes on BGR 0–255 mean-subtracted pixels; export states the option in
 * `ilsvrc.options` (and importing that export reads it back); a contradicting --input is refused;
 * training starts `--from` the checkpoint. The file is written here from a tiny NIN's weights.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { buildModel } from '../../src/zoo/index.js';
import { initParams } from '../../src/graph/init.js';
import { exportInferenceModel, inferenceParams, METADATA } from '../../src/zoo/export.js';
import { decodeModel, encodeModel } from '../../src/onnx/proto.js';
import { loadCheckpoint } from '../../src/train/checkpoint.js';
import { openInference } from '../../src/trained/inference.js';
import { Rng } from '../../src/util/rng.js';
import { assertUsageError, ilsvrc } from '../cli/run.js';
import { chainCaffemodel, toCaffe } from './caffe-files.js';

const root = mkdtempSync(join(tmpdir(), 'ilsvrc-caffe-input-'));
after(() => rmSync(root, { recursive: true, force: true }));

const SIZE = 64;
const FLAGS = ['--width', '0.0625'];
const plain = buildModel('nin', { width: 1 / 16, inputSize: SIZE, classes: 10 });
const weights = initParams(inferenceParams(plain), 11);
const model = join(root, 'nin.caffemodel');
writeFileSync(model, chainCaffemodel(plain, weights));
const ckpt = join(root, 'nin.safetensors');

test('a .caffemodel imports with input caffe and computes the Caffe network on the pipeline tensor', async () => {
  const r = await ilsvrc(['import', model, '--as', 'nin', ...FLAGS, '-o', ckpt]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /nin \(64 px, 10 classes, width 0\.0625, --input caffe\), 12 weight layers/);
  assert.equal(loadCheckpoint(ckpt).meta.modelOptions.input, 'caffe');

  const n = 2;
  const plane = SIZE * SIZE;
  const rng = new Rng(5);
  const x = Float32Array.from({ length: n * 3 * plane }, () => rng.normal());
  const m = await openInference(ckpt, { threads: 1 });
  let got: Float32Array;
  try {
    got = Float32Array.from(await m.logits(x, n));
  } finally {
    await m.release();
  }
  const s = await ort.InferenceSession.create(exportInferenceModel(plain, weights), { intraOpNumThreads: 1 });
  const want = (await s.run({ input: new ort.Tensor('float32', toCaffe(x, n, plane), [n, 3, SIZE, SIZE]) }))['logits']!
    .data as Float32Array;
  await s.release();
  let d = 0;
  let mx = 0;
  for (let i = 0; i < want.length; i++) {
    d = Math.max(d, Math.abs(got[i]! - want[i]!));
    mx = Math.max(mx, Math.abs(want[i]!));
  }
  assert.ok(mx > 0 && d / mx <= 1e-5, `relative error ${d / mx}`);
});

test('the export carries input caffe in ilsvrc.options, and importing it reads the option back', async () => {
  const onnx = join(root, 'nin.onnx');
  const e = await ilsvrc(['export', 'nin', '--checkpoint', ckpt, '-o', onnx]);
  assert.equal(e.code, 0, e.stderr);
  const meta = decodeModel(readFileSync(onnx)).metadataProps ?? [];
  const options = JSON.parse(meta.find((p) => p.key === METADATA.options)!.value) as { input?: string };
  assert.equal(options.input, 'caffe');
  const back = join(root, 'back.safetensors');
  const r = await ilsvrc(['import', onnx, '--as', 'nin', ...FLAGS, '-o', back]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(loadCheckpoint(back).meta.modelOptions.input, 'caffe');
  assert.doesNotMatch(r.stderr, /does not state the pixels/);
  // -o given a folder writes <model>.safetensors inside it, as export's -o does.
  const folder = join(root, 'into') + '/';
  const f = await ilsvrc(['import', onnx, '--as', 'nin', ...FLAGS, '-o', folder]);
  assert.equal(f.code, 0, f.stderr);
  assert.equal(loadCheckpoint(join(folder, 'nin.safetensors')).meta.model, 'nin');
  assertUsageError(
    await ilsvrc(['import', onnx, '--as', 'nin', ...FLAGS, '--input', 'torchvision', '-o', join(root, 'x.safetensors')]),
    'Expected --input caffe for',
    'but received --input torchvision',
  );
});

test('a contradicting --input is one line; an ONNX file that states nothing gets a note', async () => {
  assertUsageError(
    await ilsvrc(['import', model, '--as', 'nin', ...FLAGS, '--input', 'torchvision', '-o', join(root, 'x.safetensors')]),
    `Expected --input caffe for ${model}`,
    'BGR',
  );
  const bare = join(root, 'bare.onnx');
  writeFileSync(bare, exportInferenceModel(buildModel('nin', { width: 1 / 16, inputSize: SIZE, classes: 10 }), weights));
  // An export always states its options; a file from elsewhere does not: drop them.
  const m = decodeModel(readFileSync(bare));
  m.metadataProps = [];
  writeFileSync(bare, encodeModel(m));
  const r = await ilsvrc(['import', bare, '--as', 'nin', ...FLAGS, '-o', join(root, 'bare.safetensors')]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /does not state the pixels it takes: used torchvision's .* needs --input caffe/);
  const c = await ilsvrc(['import', bare, '--as', 'nin', ...FLAGS, '--input', 'caffe', '-o', join(root, 'bare-caffe.safetensors')]);
  assert.equal(c.code, 0, c.stderr);
  assert.equal(loadCheckpoint(join(root, 'bare-caffe.safetensors')).meta.modelOptions.input, 'caffe');
});

test('training starts --from the imported checkpoint through the input layer', async () => {
  const t = await ilsvrc([
    'train',
    'nin',
    '--data',
    'synthetic',
    '--from',
    ckpt,
    '--reset-classifier',
    ...FLAGS,
    '--input-size',
    String(SIZE),
    '--input',
    'caffe',
    '--max-steps',
    '2',
    '--batch-size',
    '4',
    '--threads',
    '1',
    '--out',
    join(root, 'run'),
  ]);
  assert.equal(t.code, 0, t.stderr);
  assert.equal(loadCheckpoint(join(root, 'run', 'last.safetensors')).meta.modelOptions.input, 'caffe');
});
