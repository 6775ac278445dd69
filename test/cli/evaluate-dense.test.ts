/**
 * `ilsvrc evaluate --crop dense` against a reference computed here, independently of the dense
 * graph: the ordinary VGG's convolutional trunk (its exported ONNX cut before fc6, run at the whole
 * image's size), then fc6/fc7/fc8 as the FC layers' matrices applied in JavaScript to every k×k
 * window of the feature map (k = the ordinary model's last map, 2 at 64 px), logits averaged over
 * windows, softmax, averaged over the image and its mirror at each scale. Both weight sources (an
 * exported ONNX and a training checkpoint) must give that answer.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import sharp from 'sharp';
import { buildModel, findModel, modelOptions } from '../../src/zoo/index.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../../src/data/index.js';
import { initParams } from '../../src/graph/init.js';
import { decodeModel, encodeModel, type ModelProto } from '../../src/onnx/proto.js';
import { saveCheckpoint } from '../../src/train/checkpoint.js';
import { exportInferenceModel, inferenceParams } from '../../src/zoo/export.js';
import { createSession, tensor } from '../../src/runtime/ort.js';
import { ilsvrc } from './run.js';

const dir = mkdtempSync(join(tmpdir(), 'ilsvrc-dense-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const SIZE = 64;
const SCALES = [64, 96];
/** [width, height] per class; each shorter side is 64, so scale 64 takes the pixels as they are. */
const IMAGES: [number, number][] = [
  [96, 64],
  [80, 64],
  [64, 72],
];

function pixels(w: number, h: number, seed: number): Uint8Array {
  const px = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let c = 0; c < 3; c++) px[(y * w + x) * 3 + c] = (seed * 53 + x * (3 + c) + y * (5 - c) + ((x * y) % (7 + seed))) % 256;
  return px;
}

/** The ordinary model cut after its last pooling layer, with free height and width. */
function trunkOf(proto: ModelProto): { model: Uint8Array; k: number } {
  const g = proto.graph;
  const flat = (g.node ?? []).find((n) => n.opType === 'Flatten');
  const out = flat?.input[0];
  assert.ok(out, 'the classifier starts with a Flatten');
  const needed = new Set([out]);
  const kept = [...(g.node ?? [])].reverse().filter((n) => {
    if (!n.output.some((o) => needed.has(o))) return false;
    for (const i of n.input) needed.add(i);
    return true;
  });
  const dims = g.input?.[0]?.type?.tensorType?.shape?.dim ?? [];
  const model = encodeModel({
    ...proto,
    graph: {
      ...g,
      node: kept.reverse(),
      initializer: (g.initializer ?? []).filter((t) => needed.has(t.name)),
      input: [
        {
          ...g.input![0]!,
          type: { tensorType: { elemType: 1, shape: { dim: [dims[0]!, dims[1]!, { dimParam: 'H' }, { dimParam: 'W' }] } } },
        },
      ],
      output: [{ name: out, type: { tensorType: { elemType: 1, shape: { dim: ['N', 'C', 'h', 'w'].map((d) => ({ dimParam: d })) } } } }],
    },
  });
  return { model, k: SIZE / 32 };
}

function dense(v: Float32Array, W: Float32Array, b: Float32Array, relu: boolean): Float32Array {
  const out = new Float32Array(b.length);
  for (let o = 0; o < b.length; o++) {
    let s = b[o]!;
    for (let i = 0; i < v.length; i++) s += W[o * v.length + i]! * v[i]!;
    out[o] = relu ? Math.max(0, s) : s;
  }
  return out;
}

test('evaluate --crop dense equals FC layers applied to every window of the conv features, averaged, with flips and scales', async () => {
  const classes = IMAGES.length;
  const options = modelOptions(findModel('vgg-a'), { classes, inputSize: SIZE, width: 1 / 16 });
  const built = buildModel('vgg-a', options);
  const weights = initParams(inferenceParams(built), 7);
  const onnx = exportInferenceModel(built, weights);
  writeFileSync(join(dir, 'vgg.onnx'), onnx);
  const ckpt = join(dir, 'vgg.safetensors');
  saveCheckpoint(
    ckpt,
    { params: weights, states: new Map(), step: 1, rng: 1 },
    { model: 'vgg-a', modelOptions: options, epoch: 1, batchInEpoch: 0 },
  );
  for (const [k, [w, h]] of IMAGES.entries()) {
    for (const split of ['train', 'val']) {
      mkdirSync(join(dir, 'data', split, `c${k}`), { recursive: true });
      await sharp(Buffer.from(pixels(w, h, k)), { raw: { width: w, height: h, channels: 3 } })
        .png()
        .toFile(join(dir, 'data', split, `c${k}`, 'img.png'));
    }
  }

  // The reference.
  const trunk = trunkOf(decodeModel(onnx));
  const session = await createSession(trunk.model, { threads: 1 });
  const W = (n: string): Float32Array => weights.get(n)!;
  let loss = 0;
  let hits = 0;
  let windows = 0;
  for (const [label, [w, h]] of IMAGES.entries()) {
    const post = new Float64Array(classes);
    for (const Q of SCALES) {
      const f = Q / Math.min(w, h);
      const [sw, sh] = [Math.round(w * f), Math.round(h * f)];
      const png = await sharp(Buffer.from(pixels(w, h, label)), { raw: { width: w, height: h, channels: 3 } })
        .png()
        .toBuffer();
      const px =
        sw === w && sh === h
          ? pixels(w, h, label)
          : new Uint8Array(await sharp(png).resize(sw, sh, { fit: 'fill', kernel: 'linear' }).raw().toBuffer());
      for (const mirror of [false, true]) {
        const x = new Float32Array(3 * sh * sw);
        for (let c = 0; c < 3; c++)
          for (let y = 0; y < sh; y++)
            for (let xx = 0; xx < sw; xx++) {
              const src = mirror ? sw - 1 - xx : xx;
              x[(c * sh + y) * sw + xx] = (px[(y * sw + src) * 3 + c]! / 255 - IMAGENET_MEAN[c]!) / IMAGENET_STD[c]!;
            }
        const out = Object.values(await session.run({ input: tensor('float32', x, [1, 3, sh, sw]) }))[0]!;
        const [, C, fh, fw] = out.dims as number[];
        const feat = out.data as Float32Array;
        const k = trunk.k;
        const logits = new Float64Array(classes);
        const positions = (fh! - k + 1) * (fw! - k + 1);
        windows = Math.max(windows, positions);
        for (let i = 0; i + k <= fh!; i++)
          for (let j = 0; j + k <= fw!; j++) {
            const v = new Float32Array(C! * k * k);
            for (let c = 0; c < C!; c++)
              for (let y = 0; y < k; y++) for (let xx = 0; xx < k; xx++) v[(c * k + y) * k + xx] = feat[(c * fh! + i + y) * fw! + j + xx]!;
            const z = dense(
              dense(dense(v, W('fc6.weight'), W('fc6.bias'), true), W('fc7.weight'), W('fc7.bias'), true),
              W('fc8.weight'),
              W('fc8.bias'),
              false,
            );
            z.forEach((s, c) => (logits[c]! += s / positions));
          }
        const m = Math.max(...logits);
        const e = [...logits].map((s) => Math.exp(s - m));
        const sum = e.reduce((a, b) => a + b, 0);
        e.forEach((s, c) => (post[c]! += s / sum / (2 * SCALES.length)));
      }
    }
    loss += -Math.log(post[label]!) / classes;
    if (post.indexOf(Math.max(...post)) === label) hits++;
  }
  await session.release();
  assert.ok(windows >= 6, `the score map has several positions (${windows})`);

  for (const model of [join(dir, 'vgg.onnx'), ckpt]) {
    const r = await ilsvrc([
      'evaluate',
      model,
      '--data',
      join(dir, 'data'),
      '--crop',
      'dense',
      '--scales',
      SCALES.join(','),
      '--json',
      '--out',
      dir,
      '--threads',
      '1',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const got = JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as {
      n: number;
      top1: number;
      loss: number;
      protocol: string;
      scales: number[];
    };
    assert.equal(got.n, classes);
    assert.equal(got.protocol, 'dense, Q 64/96, flip');
    assert.equal(got.top1, hits / classes);
    assert.ok(Math.abs(got.loss - loss) < 1e-5, `${model}: loss ${got.loss} vs the reference ${loss}`);
  }
});
