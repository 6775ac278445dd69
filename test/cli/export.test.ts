import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { buildModel, findModel, modelOptions } from '../../src/zoo/index.js';
import { initParams } from '../../src/graph/init.js';
import { decodeModel } from '../../src/onnx/proto.js';
import { exportInferenceModel, inferenceParams } from '../../src/zoo/export.js';
import { saveCheckpoint } from '../../src/train/checkpoint.js';
import { saveSafetensors, type Tensor } from '../../src/runtime/safetensors.js';
import { cardMetadata } from '../../src/trained/card.js';
import { assertUsageError, ilsvrc } from './run.js';

const dir = mkdtempSync(join(tmpdir(), 'ilsvrc-cli-export-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const SMALL = ['--width', '0.125', '--classes', '10'];

describe('ilsvrc export', { concurrency: true }, () => {
  test('writes the same model as the library, with the seed, opset and options asked for', async () => {
    const file = join(dir, 'nested', 'nin.onnx');
    const r = await ilsvrc(['export', 'nin', '-o', file, '--seed', '3', '--opset', '17', ...SMALL]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^wrote .*nin\.onnx: nin, [\d,]+ params from seed 3, opset 17, [\d.]+ MB\n$/);
    const bytes = readFileSync(file);
    const built = buildModel('nin', { width: 0.125, classes: 10 });
    const expected = exportInferenceModel(built, initParams(inferenceParams(built), 3), {
      opset: 17,
      metadata: cardMetadata({ size: built.options.inputSize, channels: built.options.channels }),
    });
    assert.ok(Buffer.from(expected).equals(bytes), 'byte-identical to exportInferenceModel');
    assert.equal(decodeModel(bytes).opsetImport?.[0]?.version, 17);
    assert.deepEqual(readdirSync(join(dir, 'nested')), ['nin.onnx'], 'no temporary file left behind');
  });

  test('--checkpoint takes the weights from a safetensors file', async () => {
    const built = buildModel('alexnet', { width: 0.125, classes: 10 });
    const params = inferenceParams(built);
    const weights = initParams(params, 42);
    const tensors: Record<string, Tensor> = {};
    for (const p of params) tensors[p.name] = { dtype: 'F32', shape: [...p.value.shape], data: weights.get(p.name) ?? new Float32Array() };
    const ckpt = join(dir, 'alexnet.safetensors');
    saveSafetensors(ckpt, tensors);
    const out = join(dir, 'alexnet.onnx');
    const r = await ilsvrc(['export', 'alexnet', '-o', out, '--checkpoint', ckpt, ...SMALL]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(
      Buffer.from(exportInferenceModel(built, weights, { metadata: cardMetadata({ size: built.options.inputSize, channels: 3 }) })).equals(
        readFileSync(out),
      ),
    );
    // The same checkpoint with other model options does not fit, and the error says which tensors.
    const wrong = await ilsvrc([
      'export',
      'alexnet',
      '-o',
      join(dir, 'wrong.onnx'),
      '--checkpoint',
      ckpt,
      '--width',
      '0.25',
      '--classes',
      '10',
    ]);
    assertUsageError(wrong, 'alexnet.safetensors does not fit this model', 'conv1.weight is 12×3×11×11, the graph has 24×3×11×11');
  });

  test('a training checkpoint brings its model options; its optimizer state is left out', async () => {
    const options = modelOptions(findModel('zfnet'), { width: 0.125, classes: 7, inputSize: 96 });
    const built = buildModel('zfnet', options);
    const params = initParams(inferenceParams(built), 5);
    const ckpt = join(dir, 'zfnet-train.safetensors');
    const states = new Map([...params].map(([k, v]) => [`${k}.momentum`, new Float32Array(v.length)]));
    saveCheckpoint(
      ckpt,
      { params, states, step: 10, rng: 1 },
      {
        model: 'zfnet',
        modelOptions: options,
        epoch: 1,
        batchInEpoch: 0,
      },
    );
    const out = join(dir, 'zfnet.onnx');
    const r = await ilsvrc(['export', 'zfnet', '-o', out, '--checkpoint', ckpt]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(
      Buffer.from(exportInferenceModel(built, params, { metadata: cardMetadata({ view: 'center', size: 96, channels: 3 }) })).equals(
        readFileSync(out),
      ),
    );
    assertUsageError(
      await ilsvrc(['export', 'alexnet', '-o', out, '--checkpoint', ckpt]),
      'Expected a alexnet model in --checkpoint',
      'but it holds zfnet',
    );
  });

  test('bad input: one line, exit 2, no stack trace, no file', async () => {
    const out = join(dir, 'bad.onnx');
    const cases: [string[], ...string[]][] = [
      [['export', 'alexnet', '-o', out, '--opset', '12'], 'Expected 17 or 18 for --opset but received "12"'],
      [['export', 'alexnet', '-o', out, '--seed', '-3'], 'for --seed'],
      [['export', 'alexnet'], "required option '-o, --output <file>' not specified"],
      [['export', 'lenet', '-o', out], 'for model', '"lenet"'],
      [['export', 'alexnet', '-o', out, '--checkpoint', join(dir, 'none.safetensors'), ...SMALL], '--checkpoint', 'none.safetensors'],
    ];
    const runs = await Promise.all(cases.map(([args]) => ilsvrc(args)));
    runs.forEach((r, i) => {
      const [, ...parts] = cases[i] ?? [[]];
      assertUsageError(r, ...parts);
    });
    assert.ok(!readdirSync(dir).includes('bad.onnx'));
  });
});
