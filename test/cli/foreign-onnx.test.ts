/**
 * ONNX classifiers from other exporters, through `predict` and `evaluate` as a user runs them: a
 * channels-last graph with a leading Transpose and a trailing Softmax (Keras through tf2onnx), at
 * a non-square size, scaled as the flags say. Each answer is checked against onnxruntime run
 * directly on the same file, fed as its author meant.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { decodeModel } from '../../src/onnx/proto.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../../src/util/imagenet.js';
import { assertUsageError, ilsvrc } from './run.js';
import {
  directProbabilities,
  type Feeding,
  hasPythonOnnx,
  kerasLikeModel,
  topIndices,
  writeNoisePng,
  writePythonKerasLike,
} from './foreign-onnx.js';

const root = mkdtempSync(join(tmpdir(), 'ilsvrc-foreign-onnx-'));
const [H, W, CLASSES] = [160, 224, 10];
const keras = join(root, 'keras.onnx');
const images: string[] = [];
/** An ImageFolder of the same images, one per class (train and val alike). */
const folder = join(root, 'data');
const labels: number[] = [];
/** Keras' "tf" preprocessing: pixels to [-1, 1]. */
const TF_FLAGS = ['--input-scale', '1/127.5', '--mean', '1', '--std', '1'];
const TF_FEED: Omit<Feeding, 'layout' | 'softmax'> = { scale: 1 / 127.5, mean: [1, 1, 1], std: [1, 1, 1] };

before(async () => {
  writeFileSync(keras, kerasLikeModel({ height: H, width: W, classes: CLASSES, layout: 'nhwc', softmax: true }));
  for (let c = 0; c < CLASSES; c++) {
    const file = join(root, `img${c}.png`);
    await writeNoisePng(file, W, H, c + 1);
    images.push(file);
    for (const split of ['train', 'val']) {
      mkdirSync(join(folder, split, `c${c}`), { recursive: true });
      copyFileSync(file, join(folder, split, `c${c}`, 'img.png'));
    }
    labels.push(c);
  }
});
after(() => rmSync(root, { recursive: true, force: true }));

interface Predicted {
  image: string;
  top: { index: number; probability: number }[];
}

async function predictJson(model: string, files: readonly string[], ...more: string[]): Promise<Predicted[]> {
  const r = await ilsvrc(['predict', model, ...files, '--json', '--crop', 'full', ...more]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Predicted[];
}

/** Predict's top-5 are the direct run's, in order, with the same probabilities (1e-6). */
function assertSameTop5(got: Predicted[], want: number[][]): void {
  assert.equal(got.length, want.length);
  got.forEach((p, i) => {
    const ref = want[i]!;
    assert.deepEqual(
      p.top.map((t) => t.index),
      topIndices(ref, 5),
      `top-5 of ${p.image}`,
    );
    for (const t of p.top)
      assert.ok(Math.abs(t.probability - ref[t.index]!) <= 1e-6, `${p.image} class ${t.index}: ${t.probability} vs ${ref[t.index]}`);
  });
}

test('predict and evaluate feed a channels-last 160×224 Softmax classifier as a direct onnxruntime run does', async () => {
  const want = await directProbabilities(keras, images, { ...TF_FEED, layout: 'nhwc', softmax: true });
  assertSameTop5(await predictJson(keras, images, ...TF_FLAGS), want);
  // --layout given says what the graph says.
  assertSameTop5(await predictJson(keras, images.slice(0, 2), ...TF_FLAGS, '--layout', 'nhwc'), want.slice(0, 2));

  const r = await ilsvrc(['evaluate', keras, '--data', folder, '--crop', 'full', '--json', '--out', join(root, 'eval'), ...TF_FLAGS]);
  assert.equal(r.code, 0, r.stderr);
  const e = JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as { n: number; top1: number; top5: number; loss: number };
  assert.equal(e.n, CLASSES);
  const top1 = labels.filter((l, i) => topIndices(want[i]!, 1)[0] === l).length / CLASSES;
  const top5 = labels.filter((l, i) => topIndices(want[i]!, 5).includes(l)).length / CLASSES;
  const loss = labels.reduce((s, l, i) => s - Math.log(want[i]![l]!), 0) / CLASSES;
  assert.equal(e.top1, top1);
  assert.equal(e.top5, top5);
  // The probabilities are used as they are: softmaxed twice, the loss would be near log(classes).
  assert.ok(Math.abs(e.loss - loss) <= 1e-5 * loss, `loss ${e.loss} vs ${loss}`);
});

test('export records the input flags in the file: the re-exported model is fed the same with no flags', async () => {
  const out = join(root, 'recorded.onnx');
  const r = await ilsvrc(['export', keras, '-o', out, ...TF_FLAGS]);
  assert.equal(r.code, 0, r.stderr);
  const props = Object.fromEntries((decodeModel(readFileSync(out)).metadataProps ?? []).map((p) => [p.key, p.value]));
  const spec = JSON.parse(props['ilsvrc.input'] ?? '{}') as Record<string, unknown>;
  assert.deepEqual(
    {
      layout: spec['layout'],
      height: spec['height'],
      width: spec['width'],
      scale: spec['scale'],
      mean: spec['mean'],
      output: spec['output'],
    },
    { layout: 'NHWC', height: H, width: W, scale: 1 / 127.5, mean: [1, 1, 1], output: 'probabilities' },
  );
  const files = images.slice(0, 3);
  const want = await directProbabilities(keras, files, { ...TF_FEED, layout: 'nhwc', softmax: true });
  assertSameTop5(await predictJson(out, files), want);
  // The flags made the difference: the original file without them is fed ImageNet's normalisation.
  const plain = await predictJson(keras, files);
  assert.notDeepEqual(
    plain.map((p) => p.top[0]!.probability),
    want.map((p) => p[topIndices(p, 1)[0]!]),
  );
  // Flags still override what the file records.
  assertSameTop5(
    await predictJson(out, files, '--input-scale', '1/255'),
    await directProbabilities(keras, files, {
      scale: 1 / 255,
      mean: [0, 0, 0],
      std: [1, 1, 1],
      layout: 'nhwc',
      softmax: true,
    }),
  );
});

test('a channels-first classifier that answers logits is fed ImageNet normalisation without flags and softmaxed once', async () => {
  const model = join(root, 'nchw-logits.onnx');
  writeFileSync(model, kerasLikeModel({ height: 48, width: 64, classes: CLASSES, layout: 'nchw', softmax: false }));
  const files = [join(root, 'small0.png'), join(root, 'small1.png')];
  await Promise.all(files.map((f, i) => writeNoisePng(f, 64, 48, 40 + i)));
  const feed: Feeding = { layout: 'nchw', scale: 1 / 255, mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD], softmax: false };
  assertSameTop5(await predictJson(model, files), await directProbabilities(model, files, feed));
});

test('a graph of fixed batch size 1 is fed one image at a time', async () => {
  const model = join(root, 'batch1.onnx');
  writeFileSync(model, kerasLikeModel({ height: H, width: W, classes: CLASSES, layout: 'nhwc', softmax: true, batch: 1 }));
  const files = images.slice(0, 3);
  const want = await directProbabilities(model, files, { ...TF_FEED, layout: 'nhwc', softmax: true });
  assertSameTop5(await predictJson(model, files, ...TF_FLAGS), want);
});

test("a Keras-shaped file written by Python's onnx helper: predict matches a direct onnxruntime run", async (t) => {
  if (!hasPythonOnnx()) return t.skip('python3 with onnx and numpy is not installed');
  const model = join(root, 'python.onnx');
  writePythonKerasLike(model, H, W, CLASSES);
  const files = images.slice(0, 4);
  const want = await directProbabilities(model, files, { scale: 1 / 255, mean: [0, 0, 0], std: [1, 1, 1], layout: 'nhwc', softmax: true });
  assertSameTop5(await predictJson(model, files, '--input-scale', '1/255'), want);
});

test('bad input flags, a layout the graph contradicts and a non-square crop are one line each, exit 2', async () => {
  const img = images[0]!;
  const cases: [string[], string][] = [
    [['--layout', 'nhcw'], 'Expected one of nchw, nhwc for --layout but received "nhcw"'],
    [['--mean', '1,2'], 'Expected 1 or 3 comma-separated numbers (one per channel, or one for all) for --mean but received "1,2"'],
    [['--std', '0'], 'for --std but received "0"'],
    [['--input-scale', 'abc'], 'Expected a positive number or fraction (1/255) for --input-scale but received "abc"'],
    [['--input-scale', '1/0'], 'for --input-scale but received "1/0"'],
    [
      ['--layout', 'nchw'],
      `Expected ${keras}'s input "input_1" to be [N, 1 or 3, H, W] for --layout nchw but its graph declares [?, 160, 224, 3]`,
    ],
    [['--crop', 'ten'], 'Expected --crop center or full for a 224×160 (non-square) input but received --crop ten'],
  ];
  await Promise.all(
    cases.map(async ([flags, message]) => {
      // evaluate reads the same flags from the same table: two of them there keep the test short.
      const evaluate = flags[0] === '--layout' ? [['evaluate', keras, '--data', folder, '--out', join(root, 'refused'), ...flags]] : [];
      for (const cmd of [['predict', keras, img, ...flags], ...evaluate]) assertUsageError(await ilsvrc(cmd), message);
    }),
  );
  const ours = join(root, 'ours.onnx');
  const r = await ilsvrc(['export', 'vgg-a', '--width', '0.0625', '--input-size', '32', '-o', ours]);
  assert.equal(r.code, 0, r.stderr);
  assertUsageError(
    await ilsvrc(['predict', ours, img, '--layout', 'nhwc', '--mean', '0']),
    `Expected an ONNX model from elsewhere for --layout, --mean but ${ours} is ilsvrc's (its file records how it is fed)`,
  );
});
