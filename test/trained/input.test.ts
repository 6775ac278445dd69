/** The input description's pure parts: the views of a non-square input, channels-last feeding, probabilities as logits. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { scoreViews } from '../../src/train/score.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { evaluate } from '../../src/cli/evaluate.js';
import { UsageError } from '../../src/util/errors.js';
import { kerasLikeModel } from '../cli/foreign-onnx.js';
import { asLogits, evalTransforms, feedLayout, overInput, zooInput, type ModelInput } from '../../src/trained/input.js';

const keras: ModelInput = { ...zooInput(1, 3), layout: 'nhwc', height: 160, width: 224, output: 'probabilities' };

test('a 224×160 input: the centre view covers it with the 256/224 margin, the full view resizes to it', () => {
  // 300×200 → shorter side 256 (= 224 · 256/224): 384×256, then the 224×160 window in the middle.
  const center = evalTransforms(keras, 'center').plan(null, 300, 200).views;
  assert.deepEqual(center, [{ sw: 384, sh: 256, left: 80, top: 48, w: 224, h: 160, flip: false }]);
  const full = evalTransforms(keras, 'none').plan(null, 300, 200).views;
  assert.deepEqual(full, [{ sw: 224, sh: 160, left: 0, top: 0, w: 224, h: 160, flip: false }]);
  assert.throws(
    () => evalTransforms(keras, 'ten'),
    /Expected --crop center or full for a 224×160 \(non-square\) input but received --crop ten/,
  );
});

test('scaling folds into one normalisation: pixel × scale − mean over std', () => {
  const d: ModelInput = { ...keras, scale: 1 / 127.5, mean: [1, 1, 1], std: [1, 1, 1] };
  const p = evalTransforms(d, 'none').plan(null, 224, 160);
  for (const pixel of [0, 100, 255]) {
    for (let c = 0; c < 3; c++) assert.ok(Math.abs(pixel * p.scale[c]! + p.bias[c]! - (pixel / 127.5 - 1)) < 1e-12);
  }
});

test('channels-last feeding moves each value to [row, y, x, channel]', () => {
  const d: ModelInput = { ...keras, height: 2, width: 3 };
  const x = Float32Array.from({ length: 2 * 3 * 2 * 3 }, (_, i) => i);
  const { data, dims } = feedLayout(d, x, 2);
  assert.deepEqual(dims, [2, 2, 3, 3]);
  for (let r = 0; r < 2; r++)
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < 2; y++)
        for (let w = 0; w < 3; w++) assert.equal(data[((r * 2 + y) * 3 + w) * 3 + c], x[((r * 3 + c) * 2 + y) * 3 + w]);
  assert.equal(feedLayout({ ...d, layout: 'nchw' }, x, 2).data, x, 'channels first: fed as it is');
});

test('probabilities scored through softmax come back as they were, logits are softmaxed', () => {
  const p = Float32Array.from([0.7, 0.2, 0.1, 1e-7, 0.25, 0.25, 0.5 - 1e-7, 0]);
  const back = scoreViews(asLogits(keras, p), 2, 4, 1);
  p.forEach((v, i) => assert.ok(Math.abs(back[i]! - v) < 1e-7, `${i}: ${back[i]} vs ${v}`));
  const logits = Float32Array.from([0, Math.log(3)]);
  assert.deepEqual(
    Array.from(scoreViews(asLogits({ ...keras, output: 'logits' }, logits), 1, 2, 1)).map((v) => +v.toFixed(6)),
    [0.25, 0.75],
  );
});

test('flags over a recorded input: --layout over its layout, any scaling flag over its whole scaling', () => {
  const recorded = { layout: 'nhwc', inputScale: 1 / 127.5, mean: [1], std: [1] } as const;
  assert.deepEqual(overInput({ ...recorded, mean: [1], std: [1] }, {}), { ...recorded, mean: [1], std: [1] });
  assert.deepEqual(overInput({ ...recorded, mean: [1], std: [1] }, { inputScale: 1 / 255 }), { layout: 'nhwc', inputScale: 1 / 255 });
  assert.deepEqual(overInput({ ...recorded, mean: [1], std: [1] }, { layout: 'nchw' }), {
    ...recorded,
    mean: [1],
    std: [1],
    layout: 'nchw',
  });
  assert.deepEqual(overInput(undefined, { mean: [0.5] }), { mean: [0.5] });
});

test("the API's evaluate holds layout and scaling given from code to the flags' rule", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ilsvrc-input-api-'));
  try {
    const model = join(dir, 'keras.onnx');
    writeFileSync(model, kerasLikeModel({ height: 8, width: 8, classes: 3, layout: 'nhwc', softmax: true }));
    const refused = async (o: Parameters<typeof evaluate>[1], message: RegExp) =>
      assert.rejects(evaluate(model, { ...o, data: 'synthetic', out: dir }), (e) => e instanceof UsageError && message.test(e.message));
    await refused({ std: [0] }, /Expected positive numbers for --std but received \[0\]/);
    await refused({ inputScale: -1 }, /Expected a positive number for --input-scale but received -1/);
    await refused({ mean: [1, 2] }, /Expected 1 or 3 values for --mean .* but received 1,2/);
    await refused({ layout: 'nhcw' as 'nhwc' }, /Expected one of nchw, nhwc for --layout but received "nhcw"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
