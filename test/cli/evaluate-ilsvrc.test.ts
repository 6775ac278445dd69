/**
 * `ilsvrc evaluate --data ilsvrc:DIR` as a user runs it, on the miniature ILSVRC-2012 of
 * test/data/ilsvrc-layout.ts, with a "model" whose predictions are known: the mean of each input
 * channel, so an image's prediction is its dominant colour. Four of the six validation images are
 * coloured as their label: top-1 error 33.33 %, whichever form the data takes.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { COLOURS, LABELS, type Layout, writeLayout } from '../data/ilsvrc-layout.js';
import { assertUsageError, ilsvrc } from './run.js';
import { channelMeanModel } from './plain-onnx.js';

const root = mkdtempSync(join(tmpdir(), 'ilsvrc-eval-2012-'));
let L: Layout;
const model = join(root, 'mean.onnx');
before(async () => {
  L = await writeLayout(root);
  writeFileSync(model, channelMeanModel(12));
});
after(() => rmSync(root, { recursive: true, force: true }));

interface Out {
  n: number;
  top1: number;
  top5: number;
  top1_error_pct: number;
  top5_error_pct: number;
  loss: number;
  per_class: Record<string, number>;
  protocol: string;
}

async function evaluate(dir: string, ...more: string[]): Promise<Out> {
  const r = await ilsvrc(['evaluate', model, '--data', `ilsvrc:${dir}`, '--json', '--out', join(root, 'out'), ...more]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as Out;
}

test('evaluate on ILSVRC-2012 folders, tars and the outer tar: the expected top-1 error, in the papers’ per cent too', async () => {
  const hits = LABELS.filter((l, k) => COLOURS[k] === l).length;
  assert.equal(hits, 4);
  const [a, b, c, g] = await Promise.all([
    evaluate(L.folders),
    evaluate(L.tars, '--crop', 'ten'),
    evaluate(L.outer),
    evaluate(L.tars, '--crop', 'googlenet'),
  ]);
  for (const r of [a, b, c, g]) {
    assert.equal(r.n, 6);
    assert.equal(r.top1, hits / 6);
    assert.equal(r.top1_error_pct, 33.33);
    assert.equal(r.top5_error_pct, 0);
  }
  assert.equal(c.loss, a.loss, 'the same pixels from the val tar as from the folder');
  assert.equal(b.protocol, 'ten');
  assert.equal(g.protocol, 'googlenet 14/15/17/19, 144 views'); // 256, 288, 320, 352 scaled to the 12 px model
  // Per class: tench 1/2 (image 4 is goldfish-coloured), goldfish 2/2, shark 1/2.
  assert.deepEqual(Object.values(a.per_class), [0.5, 1, 0.5]);
  assert.deepEqual(Object.keys(a.per_class), ['n01440764 tench', 'n01443537 goldfish', 'n01484850 great white shark']);
});

test('train on ILSVRC-2012 tars with loader workers: tar members render on the workers, and validation runs on their batches', async () => {
  const out = join(root, 'run');
  const r = await ilsvrc([
    'train',
    'alexnet-single',
    '--data',
    `ilsvrc:${L.tars}`,
    '--workers',
    '2',
    '--width',
    '0.0625',
    '--input-size',
    '67',
    '--epochs',
    '1',
    '--batch-size',
    '3',
    '--init',
    'kaiming',
    '--out',
    out,
  ]);
  assert.equal(r.code, 0, r.stderr);
  const log = r.stdout + r.stderr;
  assert.match(log, /on ilsvrc:.*tars: 9 train \/ 6 val images/);
  assert.match(log, /done after 1 epoch .* best val top-1 [\d.]+%/);
  const ev = await ilsvrc(['evaluate', join(out, 'last.safetensors'), '--data', `ilsvrc:${L.outer}`, '--json', '--out', out]);
  assert.equal(ev.code, 0, ev.stderr);
  assert.equal((JSON.parse(ev.stdout.trim().split('\n').pop() ?? '') as Out).n, 6);
});

test('evaluate names what is missing in an ILSVRC-2012 directory, and a protocol the model cannot follow, exit 2', async () => {
  const run = (data: string, ...more: string[]) => ilsvrc(['evaluate', model, '--data', data, ...more]);
  const [noData, empty, dense, scales, badScale] = await Promise.all([
    run(`ilsvrc:${join(root, 'folders', 'val')}`),
    run('ilsvrc:'),
    run(`ilsvrc:${L.tars}`, '--crop', 'dense'),
    run(`ilsvrc:${L.tars}`, '--scales', '14,16'),
    run(`ilsvrc:${L.tars}`, '--scales', '14,x'),
  ]);
  assertUsageError(noData, /Expected the training set \(train, .*\) or the validation set \(val, .*\) in .*folders\/val but found neither/);
  assertUsageError(empty, "Expected a directory after the prefix in --data but received 'ilsvrc:'");
  // A model from elsewhere has no zoo graph to make fully convolutional.
  assertUsageError(
    dense,
    /^ilsvrc: Expected a checkpoint or an ONNX file exported by ilsvrc for --crop dense \(it rebuilds the network\) but .*mean\.onnx is an ONNX model from elsewhere$/,
  );
  assertUsageError(scales, 'Expected --crop multiscale, googlenet or dense with --scales but received --crop center');
  assertUsageError(badScale, 'Expected a positive integer for --scales but received "x"');
});
