/**
 * Every command given a damaged, mismatched or wrong kind of file: one line naming the file and
 * what was expected, exit 2, no stack trace (the corpus is test/cli/hostile.ts). Then the folder
 * forms of the path flags: `-o <folder>` writes the default name inside it, `--resume <folder>`
 * reads its last.safetensors.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadCheckpoint } from '../../src/train/checkpoint.js';
import { loadSafetensors, saveSafetensors } from '../../src/runtime/safetensors.js';
import { writeCorpus, type Corpus } from './hostile.js';
import { assertUsageError, ilsvrc, type Run } from './run.js';

let c: Corpus;
before(async () => {
  c = await writeCorpus();
});
after(() => rmSync(c.dir, { recursive: true, force: true }));

type Case = [args: () => string[], ...parts: (string | RegExp)[]];

/** Runs the cases two at a time (the CLI is a child process each) and checks each is a usage error. */
async function expectUsageErrors(cases: readonly Case[]): Promise<void> {
  const runs: Run[] = [];
  for (let i = 0; i < cases.length; i += 2) runs.push(...(await Promise.all(cases.slice(i, i + 2).map(([args]) => ilsvrc(args())))));
  runs.forEach((r, i) => {
    const [args, ...parts] = cases[i]!;
    assert.doesNotThrow(() => assertUsageError(r, ...parts), `ilsvrc ${args().join(' ')}\n${r.stderr}`);
  });
}

describe('hostile inputs: one line, exit 2', () => {
  test('predict and visualize given an image that is empty, truncated, garbage or a folder', async () => {
    await expectUsageErrors([
      [() => ['predict', c.ckpt, c.images.empty], 'empty.png', 'empty file'],
      [() => ['predict', c.ckpt, c.images.truncated], 'truncated.png', 'cannot decode'],
      [() => ['predict', c.ckpt, c.image, c.images.garbage], 'garbage.jpg', 'not a readable image'],
      [() => ['predict', c.ckpt, c.images.directory], 'folder.png', 'EISDIR'],
      [() => ['visualize', 'activations', c.ckpt, c.images.truncated, '--layer', 'conv1_1', '-o', join(c.dir, 'a.png')], 'truncated.png'],
    ]);
  });

  test('a model argument that is missing, a folder, empty, garbage, or another kind of file', async () => {
    await expectUsageErrors([
      [() => ['predict', c.files.missing, c.image], 'missing.onnx', 'does not exist'],
      [() => ['evaluate', c.files.directory], 'a-folder.onnx is a directory'],
      [() => ['visualize', 'filters', c.files.empty], 'empty.onnx', 'Expected an ONNX model'],
      [() => ['evaluate', c.files.garbage], 'garbage.onnx', 'do not decode'],
    ]);
  });

  test('a model argument of another kind than its name says', async () => {
    await expectUsageErrors([
      [() => ['predict', c.ckpts.onnxNamedSafetensors, c.image], 'onnx-inside.safetensors', 'header length'],
      [() => ['visualize', 'filters', c.onnxs.safetensorsNamedOnnx], 'safetensors-inside.onnx', 'do not decode'],
      [() => ['train', '--resume', c.files.garbage], 'garbage.onnx'],
    ]);
  });

  test('checkpoints whose metadata is damaged or disagrees with their tensors', async () => {
    await expectUsageErrors([
      [
        () => ['predict', c.ckpts.metaNull, c.image],
        'Expected an object in the "ilsvrc" metadata of',
        'meta-null.safetensors',
        'received null',
      ],
      [
        () => ['evaluate', c.ckpts.noModelOptions],
        'Expected an object for modelOptions in the "ilsvrc" metadata of',
        'no-model-options.safetensors',
      ],
      [
        () => ['visualize', 'filters', c.ckpts.badFieldType],
        'Expected a non-negative integer for epoch',
        'bad-field-type.safetensors',
        'received "one"',
      ],
    ]);
  });

  test('checkpoints whose tensors do not fit the model their metadata describes', async () => {
    await expectUsageErrors([
      [
        () => ['predict', c.ckpts.otherWidth, c.image],
        'other-width.safetensors does not fit the model its metadata describes (vgg-a, width 0.5',
        "conv1_1.weight has 108 values, the graph's 32×3×3×3 needs 864",
      ],
      [() => ['visualize', 'filters', c.ckpts.otherWidth], 'other-width.safetensors does not fit', 'conv1_1.weight'],
      [() => ['evaluate', c.ckpts.missingTensor], 'missing-tensor.safetensors does not fit', 'missing conv1_1.weight'],
    ]);
  });

  test('checkpoints naming a model that does not exist or cannot be built, read by every command', async () => {
    await expectUsageErrors([
      [() => ['predict', c.ckpts.unknownModel, c.image], 'received "lenet"', 'unknown-model.safetensors'],
      [() => ['visualize', 'occlusion', c.ckpts.otherModel, c.image], 'alexnet', 'other-model.safetensors'],
      [
        () => ['export', 'vgg-a', '--checkpoint', c.ckpts.metaNotJson, '-o', join(c.dir, 'x.onnx')],
        'Expected JSON in the "ilsvrc" metadata of',
        'meta-not-json.safetensors',
      ],
      [() => ['train', '--resume', c.ckpts.noModelOptions], 'modelOptions', 'no-model-options.safetensors'],
    ]);
  });

  test('ONNX files that are damaged, inconsistent or not what their metadata says', async () => {
    await expectUsageErrors([
      [() => ['predict', c.onnxs.truncated, c.image], 'truncated.onnx', 'do not decode'],
      [() => ['evaluate', c.onnxs.noNodes], 'no-nodes.onnx', 'no node does'],
      [
        () => ['visualize', 'filters', c.onnxs.shortRawData],
        'Expected 432 bytes of raw_data for initializer "conv1_1.weight" (dims [4, 3, 3, 3])',
        'short-raw-data.onnx',
        'received 424',
      ],
      [
        () => ['predict', c.onnxs.unknownOp, c.image],
        'Expected a model ONNX Runtime can run in',
        'unknown-op.onnx',
        'ConvolutionOfTheFuture',
      ],
      [() => ['evaluate', c.onnxs.metaNotJson], 'Expected JSON in the "ilsvrc.options" metadata of', 'meta-not-json.onnx'],
    ]);
  });

  test('ONNX files whose metadata and tensors disagree', async () => {
    await expectUsageErrors([
      [() => ['predict', c.onnxs.hugeDims, c.image], 'huge-dims.onnx', 'initializer "conv1_1.weight"', '[1099511627776, 1048576]'],
      [
        () => ['visualize', 'occlusion', c.onnxs.hugeInputSize, c.image],
        'Expected a positive integer up to 16383 for inputSize in the "ilsvrc.options" metadata of',
        'huge-input-size.onnx',
        'received 1000000',
      ],
      [
        () => ['predict', c.onnxs.inputDims, c.image],
        'Expected input [N, 3, 32, 32] in',
        'input-dims.onnx',
        'its graph declares [N, 3, 64, 64]',
      ],
      [
        () => ['predict', c.onnxs.optionsDisagree, c.image],
        'options-disagree.onnx does not fit',
        '10 classes',
        'fc8.weight is 8×256, the graph has 10×256',
      ],
      [() => ['evaluate', c.onnxs.noLogits], 'no-logits.onnx', 'compute "logits"', '["scores"]'],
    ]);
  });

  test('a classes.json beside an ONNX file that is not JSON or has the wrong number of names', async () => {
    await expectUsageErrors([
      [() => ['predict', join(c.classesJson.notJson, 'tiny.onnx'), c.image], join('cj-not-json', 'classes.json')],
      [() => ['evaluate', join(c.classesJson.wrongShape, 'tiny.onnx')], join('cj-wrong-shape', 'classes.json'), 'but found something else'],
      [
        () => ['visualize', 'filters', join(c.classesJson.wrongCount, 'tiny.onnx')],
        'Expected 8 class names in',
        join('cj-wrong-count', 'classes.json'),
        'received 3',
      ],
    ]);
  });

  test('an output path through a file, found before any work', async () => {
    await expectUsageErrors([
      [
        () => ['evaluate', c.ckpt, '--out', c.image],
        'Expected a folder (or a path where one can be made) for --out but',
        'image.png is a file',
      ],
      [() => ['export', 'vgg-a', '--width', '0.0625', '-o', join(c.image, 'x.onnx')], 'for --output', 'image.png is a file'],
      [() => ['visualize', 'filters', c.ckpt, '-o', join(c.image, 'f.png')], 'for --out', 'image.png is a file'],
    ]);
  });
});

describe('path flags given a folder', () => {
  test('export -o and visualize -o write their default file name inside it', async () => {
    const folder = join(c.dir, 'outputs');
    const [e, v] = await Promise.all([
      ilsvrc(['export', 'vgg-a', '--width', '0.0625', '--input-size', '32', '--classes', '8', '-o', `${folder}/`]),
      ilsvrc(['visualize', 'filters', c.ckpt, '-o', c.files.directory]),
    ]);
    assert.equal(e.code, 0, e.stderr);
    assert.equal(v.code, 0, v.stderr);
    assert.ok(existsSync(join(folder, 'vgg-a.onnx')), e.stdout);
    assert.match(e.stdout, /^wrote .*outputs\/vgg-a\.onnx: /);
    assert.deepEqual(readdirSync(c.files.directory), ['filters-conv1_1.png']);
    // The exported file opens like any other.
    const p = await ilsvrc(['predict', join(folder, 'vgg-a.onnx'), c.image, '--json']);
    assert.equal(p.code, 0, p.stderr);
  });

  test('train --resume <run folder> continues from its last.safetensors; a missing optimizer state is named', async () => {
    const run = join(c.dir, 'run');
    const args = ['--width', '0.0625', '--input-size', '32', '--init', 'kaiming', '--batch-size', '16', '--threads', '1', '--in-process'];
    const t = await ilsvrc(['train', 'vgg-a', ...args, '--max-steps', '2', '--out', run]);
    assert.equal(t.code, 0, t.stderr);
    const last = join(run, 'last.safetensors');
    const file = loadSafetensors(last);
    const { ['optim/conv3_1.weight.momentum']: dropped, ...rest } = file.tensors;
    assert.ok(dropped, 'the run has momentum for conv3_1.weight');
    const damaged = join(c.dir, 'damaged', 'last.safetensors');
    mkdirSync(dirname(damaged));
    saveSafetensors(damaged, rest, file.metadata);
    const [bad, r] = await Promise.all([
      ilsvrc(['train', '--resume', dirname(damaged)]),
      ilsvrc(['train', '--resume', run, '--max-steps', '3']),
    ]);
    assertUsageError(
      bad,
      'Expected the optimizer state of sgd for every trainable parameter in',
      damaged,
      'optim/conv3_1.weight.momentum is missing',
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^resuming vgg-a/);
    assert.equal(loadCheckpoint(last).meta.step, 3);
  });
});
