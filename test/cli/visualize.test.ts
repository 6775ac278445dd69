import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { buildModel } from '../../src/zoo/index.js';
import { initParams } from '../../src/graph/init.js';
import { saveCheckpoint } from '../../src/train/checkpoint.js';
import { exportInferenceModel, inferenceParams } from '../../src/zoo/export.js';
import { assertUsageError, ilsvrc } from './run.js';

const dir = mkdtempSync(join(tmpdir(), 'ilsvrc-cli-visualize-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const onnx = join(dir, 'alexnet.onnx');
const ckpt = join(dir, 'vgg.safetensors');
const image = join(dir, 'img.png');
const OPTS = { width: 1 / 16, classes: 4 };

before(async () => {
  const a = buildModel('alexnet', OPTS);
  writeFileSync(onnx, exportInferenceModel(a, initParams(inferenceParams(a), 1)));
  const v = buildModel('vgg-a', { ...OPTS, inputSize: 32 });
  const state = { params: initParams(v.graph.params, 2), states: new Map(), step: 0, rng: 0 };
  saveCheckpoint(ckpt, state, {
    model: 'vgg-a',
    modelOptions: v.options,
    epoch: 0,
    batchInEpoch: 0,
    classes: ['a', 'b', 'c', 'd'],
  });
  const px = Buffer.alloc(40 * 40 * 3, 128);
  for (let y = 10; y < 22; y++) for (let x = 12; x < 26; x++) px[(y * 40 + x) * 3] = 250;
  await sharp(px, { raw: { width: 40, height: 40, channels: 3 } })
    .png()
    .toFile(image);
});

describe('ilsvrc visualize', { concurrency: true }, () => {
  test('filters of an exported AlexNet: conv1 as an RGB grid of the expected size, with statistics', async () => {
    const out = join(dir, 'filters.png');
    const r = await ilsvrc(['visualize', 'filters', onnx, '-o', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as {
      layer: string;
      shape: number[];
      rgb: boolean;
      count: number;
      deadFraction: number;
      grid: { width: number; height: number; cols: number };
      filters: { norm: number; low: number; mid: number; high: number }[];
    };
    assert.equal(j.layer, 'conv1');
    assert.deepEqual(j.shape, [6, 3, 11, 11]);
    assert.equal(j.rgb, true);
    assert.equal(j.count, 6);
    assert.equal(j.filters.length, 6);
    for (const f of j.filters) assert.ok(Math.abs(f.low + f.mid + f.high - 1) < 1e-9 && f.norm > 0);
    // 6 tiles of 11×11 at scale 2 in 3 columns, 1 px padding: 3·22 + 4 = 70 by 2·22 + 3 = 47.
    const meta = await sharp(out).metadata();
    assert.deepEqual([meta.width, meta.height, meta.format], [70, 47, 'png']);
    assert.deepEqual([j.grid.width, j.grid.height], [70, 47]);
  });

  test('deeper filters: one gray tile per input channel', async () => {
    const out = join(dir, 'conv2.png');
    const r = await ilsvrc(['visualize', 'filters', onnx, '--layer', 'conv2', '--max-filters', '4', '--max-inputs', '3', '-o', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /conv2: 16×3×5×5 \(per input channel tiles\)/);
    const meta = await sharp(out).metadata();
    // 4 rows × 3 columns of 5×5 tiles at scale 5 (25 px), 1 px padding.
    assert.deepEqual([meta.width, meta.height], [3 * 25 + 4, 4 * 25 + 5]);
  });

  test('a checkpoint: every subcommand writes its PNG and JSON', async () => {
    const runs: [string, string[]][] = [
      ['activations', ['--layer', 'conv3_1', '--top', '4']],
      ['deconvnet', ['--layer', 'conv4_2', '--channel', '0-2']],
      ['saliency', []],
      ['guided', []],
      ['occlusion', ['--class', 'b', '--batch', '8']],
    ];
    for (const [sub, extra] of runs) {
      const out = join(dir, `${sub}.png`);
      const r = await ilsvrc(['visualize', sub, ckpt, image, '-o', out, '--json', '--threads', '1', ...extra]);
      assert.equal(r.code, 0, `${sub}: ${r.stderr}`);
      const j = JSON.parse(r.stdout) as Record<string, unknown>;
      assert.equal(j['png'], out);
      assert.equal((await sharp(out).metadata()).format, 'png');
      if (sub === 'deconvnet')
        assert.deepEqual(
          (j['units'] as { channel: number }[]).map((u) => u.channel),
          [0, 1, 2],
        );
      if (sub === 'occlusion') assert.deepEqual(j['class'], { index: 1, name: 'b' });
    }
  });

  test('a wrong layer name: exit 2 and the valid layers', async () => {
    assertUsageError(
      await ilsvrc(['visualize', 'filters', onnx, '--layer', 'conv9']),
      'Expected a layer of alexnet (conv1, norm1, pool1, conv2',
      'for --layer but received "conv9"',
    );
    assertUsageError(
      await ilsvrc(['visualize', 'activations', ckpt, image, '--layer', 'fc6']),
      'Expected a layer with feature maps of vgg-a',
      '"fc6"',
    );
    assertUsageError(await ilsvrc(['visualize', 'deconvnet', ckpt, image, '--channel', 'x']), 'Expected channel numbers');
    assertUsageError(await ilsvrc(['visualize', 'saliency', ckpt, join(dir, 'missing.png')]), 'does not exist');
  });
});
