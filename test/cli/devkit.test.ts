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
import { encodeModel } from '../../src/onnx/proto.js';
import { devkitRows, groundTruth, noScipy, writeDevkitTar, writeMetaMat } from '../data/devkit-files.js';
import { COLOURS, LABELS, WNIDS, writeLayout, type Layout } from '../data/ilsvrc-layout.js';
import { assertUsageError, ilsvrc } from './run.js';

const root = mkdtempSync(join(tmpdir(), 'ilsvrc-devkit-'));
let L: Layout;
const model = join(root, 'mean-1k.onnx');
const SIZE = 12;

/** Scores for 1 000 classes: channel c's mean for class c (the three synsets of the layout are ImageNet-1k's first), -10 elsewhere. */
function channelMean1k(): Uint8Array {
  const w = new Float32Array(3 * 1000);
  for (let c = 0; c < 3; c++) w[c * 1000 + c] = 1;
  const b = new Float32Array(1000).fill(-10).fill(0, 0, 3);
  const t = (name: string, dims: number[], data: Float32Array) => ({ name, dims, dataType: 1, rawData: new Uint8Array(data.buffer) });
  const dims = [{ dimParam: 'N' }, { dimValue: 3 }, { dimValue: SIZE }, { dimValue: SIZE }];
  return encodeModel({
    irVersion: 8,
    opsetImport: [{ version: 18 }],
    graph: {
      name: 'channel-mean-1k',
      node: [
        { input: ['images'], output: ['pooled'], opType: 'GlobalAveragePool', name: 'gap' },
        { input: ['pooled'], output: ['flat'], opType: 'Flatten', name: 'flat' },
        { input: ['flat', 'w'], output: ['mm'], opType: 'MatMul', name: 'mm' },
        { input: ['mm', 'b'], output: ['scores'], opType: 'Add', name: 'add' },
      ],
      initializer: [t('w', [3, 1000], w), t('b', [1000], b)],
      input: [{ name: 'images', type: { tensorType: { elemType: 1, shape: { dim: dims } } } }],
      output: [{ name: 'scores', type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'N' }, { dimValue: 1000 }] } } } }],
    },
  });
}

before(async () => {
  L = await writeLayout(join(root, 'layout'));
  writeFileSync(model, channelMean1k());
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
  const fromCkpt = await ilsvrc(['predict', ckpt, image, '--json']);
  assert.equal(fromCkpt.code, 0, fromCkpt.stderr);
  assert.doesNotMatch(fromCkpt.stderr, /carries no class names/, 'the checkpoint has them');
  const fromOnnx = await ilsvrc(['predict', src, image, '--json']);
  assert.equal(fromOnnx.code, 0, fromOnnx.stderr);
  assert.match(fromOnnx.stderr, /a\.onnx carries no class names: using ImageNet-1k's/);
  type P = { top: { class: string; index: number }[] }[];
  for (const r of [fromCkpt, fromOnnx]) {
    const top = (JSON.parse(r.stdout) as P)[0]!.top;
    assert.equal(top.length, 5);
    for (const t of top) assert.match(t.class, new RegExp(`^n\\d{8} \\S`), `${t.index} is named by its words`);
  }
  const text = await ilsvrc(['predict', src, image]);
  assert.match(text.stdout, /%  n\d{8} [a-zA-Z]/);
  const labels = join(dir, 'labels.txt');
  writeFileSync(labels, Array.from({ length: 1000 }, (_, i) => `class ${i}`).join('\n') + '\n');
  const own = await ilsvrc(['predict', src, image, '--json', '--labels', labels]);
  assert.equal(own.code, 0, own.stderr);
  assert.doesNotMatch(own.stderr, /carries no class names/);
  for (const t of (JSON.parse(own.stdout) as P)[0]!.top) assert.equal(t.class, `class ${t.index}`);
  assertUsageError(
    await ilsvrc(['predict', ckpt, image, '--labels', labels]),
    /Expected --labels .*labels\.txt to agree with the class names in the "ilsvrc" metadata of .*a\.safetensors but class 0 is "n01440764 tench" there and "class 0" in --labels/,
  );
  writeFileSync(labels, 'one\ntwo\n');
  assertUsageError(
    await ilsvrc(['predict', src, image, '--labels', labels]),
    /Expected 1000 class names in --labels .*labels\.txt \(the classes of .*a\.onnx\) but received 2/,
  );
});
