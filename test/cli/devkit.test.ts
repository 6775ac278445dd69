/**
 * ILSVRC-2012 as downloaded, through the CLI: a validation folder with the devkit (meta.mat written
 * by SciPy, unpacked or the .tar.gz read in place) evaluates a 1 000-class model with no other file;
 * a 1 000-class model without names predicts in ImageNet-1k's words, --labels gives others.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { imagenet1k } from '../../src/data/synsets.js';
import { devkitRows, groundTruth, noScipy, writeDevkitTar, writeMetaMat } from '../data/devkit-files.js';
import { COLOURS, LABELS, WNIDS, writeLayout, type Layout } from '../data/ilsvrc-layout.js';
import { colourModel, writeColourFolder } from './colour-classes.js';
import { channelMeanModel } from './plain-onnx.js';
import { assertUsageError, ilsvrc } from './run.js';

const root = mkdtempSync(join(tmpdir(), 'ilsvrc-devkit-'));
let L: Layout;
const model = join(root, 'mean-1k.onnx');
const SIZE = 12;

before(async () => {
  L = await writeLayout(join(root, 'layout'));
  // Class c < 3 scores channel c's mean: the layout's three synsets are ImageNet-1k's first three.
  writeFileSync(model, channelMeanModel(SIZE, undefined, 1000));
});
after(() => rmSync(root, { recursive: true, force: true }));

/** A folder holding only the validation images, plus `extra` copied in. */
function valOnly(name: string): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  execFileSync('cp', ['-r', join(L.folders, 'val'), dir]);
  return dir;
}

interface Out {
  n: number;
  top1: number;
  per_class: Record<string, number | null>;
}

async function evaluate(dir: string): Promise<Out> {
  const r = await ilsvrc(['evaluate', model, '--data', `ilsvrc:${dir}`, '--json', '--out', join(root, 'out')]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /mean-1k\.onnx carries no class names: using ImageNet-1k's/);
  assert.equal(r.stderr.match(/carries no class names/g)?.length, 1, 'said once');
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as Out;
}

function expectScores(o: Out): void {
  assert.equal(o.n, 6);
  assert.equal(o.top1, LABELS.filter((l, k) => COLOURS[k] === l).length / 6);
  assert.equal(Object.keys(o.per_class).length, 1000);
  // tench 1/2 (image 4 is goldfish-coloured), goldfish 2/2, shark 1/2; no image of the others.
  assert.equal(o.per_class['n01440764 tench'], 0.5);
  assert.equal(o.per_class['n01443537 goldfish'], 1);
  assert.equal(o.per_class['n01484850 great white shark'], 0.5);
  assert.equal(Object.keys(o.per_class)[281], 'n02123045 tabby');
}

test(
  "evaluate a 1 000-class model on validation images with the devkit's meta.mat, unpacked and as the .tar.gz",
  { skip: noScipy },
  async () => {
    const rows = devkitRows();
    const truth = groundTruth(
      rows,
      LABELS.map((l) => WNIDS[l]!),
    );
    const unpacked = valOnly('unpacked');
    const data = join(unpacked, 'ILSVRC2012_devkit_t12', 'data');
    writeMetaMat(join(data, 'meta.mat'), rows);
    writeFileSync(join(data, 'ILSVRC2012_validation_ground_truth.txt'), truth);
    const packed = valOnly('packed');
    writeDevkitTar(packed, rows, truth);
    rmSync(join(packed, 'devkit-src'), { recursive: true });
    const [a, b] = await Promise.all([evaluate(unpacked), evaluate(packed)]);
    expectScores(a);
    expectScores(b);
  },
);

test("a few validation images with Kaggle's solution and no words file are scored among ImageNet-1k's 1 000 classes", async () => {
  const dir = valOnly('kaggle');
  execFileSync('cp', [join(L.tars, 'LOC_val_solution.csv'), dir]);
  expectScores(await evaluate(dir));
});

test('predict on an imported 1 000-class model prints ImageNet-1k words; --labels gives others, and is checked', async () => {
  const dir = join(root, 'import');
  mkdirSync(dir);
  const src = join(dir, 'a.onnx');
  const ckpt = join(dir, 'a.safetensors');
  const opts = ['--width', '0.0625', '--input-size', '67'];
  assert.equal((await ilsvrc(['export', 'alexnet-single', ...opts, '-o', src])).code, 0);
  const imp = await ilsvrc(['import', src, '--as', 'alexnet-single', ...opts, '-o', ckpt]);
  assert.equal(imp.code, 0, imp.stderr);
  assert.match(imp.stderr, /names no classes: the checkpoint takes ImageNet-1k's/);
  const image = join(L.folders, 'val', 'ILSVRC2012_val_00000001.JPEG');
  const labels = join(dir, 'labels.txt');
  const short = join(dir, 'short.txt');
  writeFileSync(labels, Array.from({ length: 1000 }, (_, i) => `class ${i}`).join('\n') + '\n');
  writeFileSync(short, 'one\ntwo\n');
  // visualize takes the same names, and a class by its words.
  const occ = (model: string, cls: string) => [
    'visualize',
    'occlusion',
    model,
    image,
    '--size',
    '16',
    '--stride',
    '32',
    '-o',
    join(dir, `occ-${cls}.png`),
    '--json',
    '--class',
    cls,
  ];
  const [fromCkpt, fromOnnx, text, vis, visBad, own, contradicts, tooFew] = await Promise.all([
    ilsvrc(['predict', ckpt, image, '--json']),
    ilsvrc(['predict', src, image, '--json']),
    ilsvrc(['predict', src, image]),
    ilsvrc(occ(src, 'tabby')),
    ilsvrc(occ(ckpt, 'no such thing')),
    ilsvrc(['predict', src, image, '--json', '--labels', labels]),
    ilsvrc(['predict', ckpt, image, '--labels', labels]),
    ilsvrc(['predict', src, image, '--labels', short]),
  ]);
  assert.equal(fromCkpt.code, 0, fromCkpt.stderr);
  assert.doesNotMatch(fromCkpt.stderr, /carries no class names/, 'the checkpoint has them');
  assert.equal(fromOnnx.code, 0, fromOnnx.stderr);
  assert.match(fromOnnx.stderr, /a\.onnx carries no class names: using ImageNet-1k's/);
  type P = { top: { class: string; index: number }[] }[];
  for (const r of [fromCkpt, fromOnnx]) {
    const top = (JSON.parse(r.stdout) as P)[0]!.top;
    assert.equal(top.length, 5);
    for (const t of top) assert.match(t.class, new RegExp(`^n\\d{8} \\S`), `${t.index} is named by its words`);
  }
  assert.match(text.stdout, /%  n\d{8} [a-zA-Z]/);
  assert.equal(vis.code, 0, vis.stderr);
  assert.match(vis.stderr, /a\.onnx carries no class names: using ImageNet-1k's/);
  assert.deepEqual((JSON.parse(vis.stdout) as { class: unknown }).class, { index: 281, name: 'n02123045 tabby' });
  assertUsageError(
    visBad,
    /^ilsvrc: Expected a class index or one of n01440764 tench, .* … \(1000 names\) for --class but received "no such thing"$/,
  );
  assert.equal(own.code, 0, own.stderr);
  assert.doesNotMatch(own.stderr, /carries no class names/);
  for (const t of (JSON.parse(own.stdout) as P)[0]!.top) assert.equal(t.class, `class ${t.index}`);
  assertUsageError(
    contradicts,
    /Expected --labels .*labels\.txt to agree with the class names in the "ilsvrc" metadata of .*a\.safetensors but class 0 is "n01440764 tench" there and "class 0" in --labels/,
  );
  assertUsageError(tooFew, /Expected 1000 class names in --labels .*short\.txt \(the classes of .*a\.onnx\) but received 2/);
});

test("evaluate a 1 000-class model without names on folders named by synset id shows ImageNet-1k's words", async () => {
  const dir = join(root, 'folders-by-id');
  writeColourFolder(dir, imagenet1k().wnids, 1, 4);
  const onnx = join(root, 'colour-1k.onnx');
  writeFileSync(onnx, colourModel(1000, 4));
  const r = await ilsvrc(['evaluate', onnx, '--data', dir, '--json', '--out', join(root, 'out-1k')]);
  assert.equal(r.code, 0, r.stderr);
  const o = JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as Out;
  assert.equal(o.top1, 1);
  const names = Object.keys(o.per_class);
  assert.equal(names.length, 1000);
  assert.equal(names[0], 'n01440764 tench');
  assert.equal(names[281], 'n02123045 tabby');
});
