import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { buildModel } from '../../src/zoo/index.js';
import { initParams } from '../../src/graph/init.js';
import { saveCheckpoint } from '../../src/train/checkpoint.js';
import { exportInferenceModel, inferenceParams } from '../../src/zoo/export.js';
import { MIN_TILE, type FigureLayout } from '../../src/plot/figure.js';
import { pngText } from '../../src/plot/image.js';
import { assertUsageError, ilsvrc } from './run.js';

const dir = mkdtempSync(join(tmpdir(), 'ilsvrc-cli-visualize-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const onnx = join(dir, 'alexnet.onnx');
const ckpt = join(dir, 'vgg.safetensors');
const image = join(dir, 'img.png');
const folder = join(dir, 'folder');
const OPTS = { width: 1 / 16, classes: 4 };

/** The words and layout a picture carries, and how many dark pixels its title strip holds. */
async function readFigure(file: string): Promise<{ title: string; layout: FigureLayout; ink: number; size: number[] }> {
  const text = pngText(readFileSync(file));
  const layout = JSON.parse(text['Layout'] ?? 'null') as FigureLayout;
  const { data, info } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
  let ink = 0;
  for (let i = 0; i < info.width * layout.titleHeight; i++) {
    if (data[i * info.channels]! + data[i * info.channels + 1]! + data[i * info.channels + 2]! < 3 * 96) ink++;
  }
  return { title: text['Title'] ?? '', layout, ink, size: [info.width, info.height] };
}

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
  for (const split of ['train', 'val'])
    for (const [c, name] of ['a', 'b', 'c', 'd'].entries()) {
      mkdirSync(join(folder, split, name), { recursive: true });
      const img = Buffer.alloc(32 * 32 * 3, 40 + 50 * c);
      for (let y = 4 * c; y < 4 * c + 12; y++) for (let x = 6; x < 20; x++) img[(y * 32 + x) * 3 + (c % 3)] = 250;
      await sharp(img, { raw: { width: 32, height: 32, channels: 3 } })
        .png()
        .toFile(join(folder, split, name, '0.png'));
    }
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
      layout: FigureLayout;
      filters: { norm: number; low: number; mid: number; high: number }[];
    };
    assert.equal(j.layer, 'conv1');
    assert.deepEqual(j.shape, [6, 3, 11, 11]);
    assert.equal(j.rgb, true);
    assert.equal(j.count, 6);
    assert.equal(j.filters.length, 6);
    for (const f of j.filters) assert.ok(Math.abs(f.low + f.mid + f.high - 1) < 1e-9 && f.norm > 0);
    // 6 tiles of 11×11 in 3 columns, enlarged to the smallest tile a person can read.
    const meta = await sharp(out).metadata();
    assert.deepEqual([meta.width, meta.height, meta.format], [j.layout.width, j.layout.height, 'png']);
    assert.deepEqual([j.layout.grid.cols, j.layout.grid.rows, j.layout.tiles], [3, 2, 6]);
    assert.ok(j.layout.cell.width >= MIN_TILE && j.layout.cell.width % 11 === 0, JSON.stringify(j.layout.cell));
  });

  test('deeper filters: one gray tile per input channel', async () => {
    const out = join(dir, 'conv2.png');
    const r = await ilsvrc(['visualize', 'filters', onnx, '--layer', 'conv2', '--max-filters', '4', '--max-inputs', '3', '-o', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /conv2: 16×3×5×5 \(per input channel tiles\)/);
    // 4 rows (filters) × 3 columns (input channels) of 5×5 tiles.
    const f = await readFigure(out);
    assert.deepEqual([f.layout.grid.rows, f.layout.grid.cols, f.layout.cell.height], [4, 3, f.layout.cell.width]);
    assert.ok(f.layout.cell.width >= MIN_TILE);
  });

  test('every picture carries a title line naming model, layer, mode, image and class, over tiles of at least the minimum size', async () => {
    const img = 'img.png';
    const runs: [string, string[], string[]][] = [
      ['filters', [onnx], ['alexnet · conv1 · filters · 6×3×11×11']],
      ['filters', [ckpt, '--layer', 'conv2_1'], ['vgg-a · conv2_1 · filters']],
      ['activations', [ckpt, image, '--layer', 'conv3_1', '--top', '4'], ['vgg-a · conv3_1 · activations', img, 'predicted ']],
      ['deconvnet', [ckpt, image, '--layer', 'conv4_2', '--channel', '0-2'], ['vgg-a · conv4_2 · deconvnet', img, 'predicted ']],
      ['saliency', [ckpt, image], ['vgg-a · logits · saliency', img, 'predicted ']],
      ['guided', [ckpt, image], ['vgg-a · logits · guided', img, 'predicted ']],
      ['occlusion', [ckpt, image, '--class', 'b', '--batch', '8'], ['vgg-a · conv5_2 · occlusion', img, 'class b ']],
      ['top', [ckpt, '--layer', 'conv3_1', '--channel', '0-1', '-k', '2', '--data', folder], ['vgg-a · conv3_1 · top 2']],
    ];
    for (const [sub, args, words] of runs) {
      const out = join(dir, `figure-${sub}-${args.length}.png`);
      const r = await ilsvrc(['visualize', sub, ...args, '-o', out, '--json', '--threads', '1']);
      assert.equal(r.code, 0, `${sub}: ${r.stderr}`);
      const j = JSON.parse(r.stdout) as Record<string, unknown>;
      assert.equal(j['png'], out);
      const f = await readFigure(out);
      for (const w of words) assert.ok(f.title.includes(w), `${sub}: ${JSON.stringify(w)} in the title ${JSON.stringify(f.title)}`);
      // A class is named by the checkpoint's class names, never by its index alone.
      if (/predicted|class/.test(f.title)) assert.match(f.title, /(predicted|class) [abcd] \d+\.\d%/, sub);
      assert.deepEqual(f.size, [f.layout.width, f.layout.height], sub);
      assert.equal(f.layout.title, f.title, sub);
      assert.ok(f.ink > 10 * f.title.length, `${sub}: the title strip is drawn (${f.ink} dark pixels)`);
      assert.ok(f.layout.minTile >= MIN_TILE, sub);
      assert.ok(Math.min(f.layout.cell.width, f.layout.cell.height) >= f.layout.minTile, `${sub}: ${JSON.stringify(f.layout.cell)}`);
      assert.ok(f.layout.grid.top >= f.layout.titleHeight && f.layout.grid.labelHeight > 0, sub);
      if (sub === 'occlusion') {
        assert.deepEqual(j['class'], { index: 1, name: 'b' });
        assert.deepEqual(f.layout.bars, ['fall in P(b)', `conv5_2 ch ${String(j['channel'])} activation`]);
      } else assert.equal(f.layout.bars.length, 1, sub);
      if (sub === 'deconvnet')
        assert.deepEqual(
          (j['units'] as { channel: number }[]).map((u) => u.channel),
          [0, 1, 2],
        );
    }
  });

  test('saliency of the logits names the class it projects, not a channel at an empty position', async () => {
    const r = await ilsvrc(['visualize', 'saliency', ckpt, image, '--channel', '2', '-o', join(dir, 'sal.png'), '--threads', '1']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ {2}c: score -?\d/m);
    assert.doesNotMatch(r.stdout, /at \[\]/);
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
