/**
 * `ilsvrc import`: published weight files written by PyTorch (test/import/peer_import.py) from random
 * weights — torchvision's VGG-16 as a state dict and as ONNX at opsets 11 and 17, and BVLC AlexNet
 * and GoogLeNet (Caffe's definitions: Caffe's LRN, ceil-mode pools, two towers) as ONNX and as
 * .caffemodel in both layer formats — become checkpoints whose logits equal PyTorch's. Refusals of
 * files that do not fit are one line naming the tensor. Skipped without Debian's python3-torch /
 * python3-torchvision.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { importWeights, saveImported } from '../../src/import/index.js';
import { decodeModel, encodeModel } from '../../src/onnx/proto.js';
import { loadCheckpoint } from '../../src/train/checkpoint.js';
import { loadSafetensors, saveSafetensors } from '../../src/runtime/safetensors.js';
import { openInference } from '../../src/trained/inference.js';
import { assertUsageError, ilsvrc } from '../cli/run.js';
import { fromCaffe } from './caffe-files.js';
import { badBnStateDict, trainingModeBnOnnx } from './bn-files.js';

const peer = fileURLToPath(new URL('../../../test/import/peer_import.py', import.meta.url));
const has = (mod: string) => spawnSync('/usr/bin/python3', ['-c', `import ${mod}`], { stdio: 'ignore' }).status === 0;
const torch = has('torch') ? false : 'PyTorch (Debian python3-torch) not installed';
const vision = torch || (has('torchvision') ? false : 'torchvision (Debian python3-torchvision) not installed');

/** One training step of four images on one thread: enough to show a checkpoint trains. */
const ONE_STEP = ['--max-steps', '1', '--batch-size', '4', '--threads', '1'];

const root = mkdtempSync(join(tmpdir(), 'ilsvrc-import-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** Writes the files for `what` into a fresh folder and returns it. */
function generate(what: string, ...args: string[]): string {
  const dir = join(root, [what, ...args].join('-').replace(/[^\w.-]/g, '_'));
  const r = spawnSync('/usr/bin/python3', [peer, what, dir, ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return dir;
}

function io(dir: string): { x: Float32Array; logits: Float32Array; rows: number } {
  const t = loadSafetensors(join(dir, 'io.safetensors')).tensors;
  const x = t['input']!;
  return { x: x.data as Float32Array, logits: t['logits']!.data as Float32Array, rows: x.shape[0]! };
}

/** max |a − b| relative to max |b|. */
function relErr(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  return d / m;
}

/** The checkpoint's logits for the peer's input: Caffe's pixels (BGR, 0–255 less the mean) as the pipeline gives them to a Caffe-input model. */
async function logitsOf(ckpt: string, dir: string): Promise<Float32Array> {
  const { x, rows } = io(dir);
  const caffe = loadCheckpoint(ckpt).meta.modelOptions.input === 'caffe';
  const m = await openInference(ckpt, { threads: 2 });
  try {
    return Float32Array.from(await m.logits(caffe ? fromCaffe(x, rows, x.length / rows / 3) : x, rows));
  } finally {
    await m.release();
  }
}

describe('BVLC AlexNet (Caffe definition, two towers, 135 px, width 1/16)', { skip: torch }, () => {
  const width = '0.0625';
  let dir = '';
  test("ONNX from PyTorch (opset 11) imports through the CLI to PyTorch's logits; export and predict take the checkpoint", async () => {
    dir = generate('alexnet', width, '135');
    const ckpt = join(dir, 'onnx.safetensors');
    // torch.onnx writes LRN as primitives, so the file cannot say which constants it uses: --lrn says.
    const labels = join(dir, 'synset_words.txt');
    writeFileSync(labels, Array.from({ length: 1000 }, (_, i) => `n${String(i).padStart(8, '0')} class ${i}`).join('\n') + '\n');
    const r = await ilsvrc([
      'import',
      join(dir, 'alexnet.onnx'),
      '--as',
      'alexnet',
      '--width',
      width,
      '--lrn',
      'caffe',
      '--labels',
      labels,
      '-o',
      ckpt,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /alexnet \(135 px, 1000 classes, width 0\.0625, --lrn caffe --pool ceil\), 8 weight layers/);
    const meta = loadCheckpoint(ckpt).meta;
    assert.equal(meta.step, 0);
    assert.equal(meta.modelOptions.pool, 'ceil'); // read from the file's ceil_mode
    const err = relErr(await logitsOf(ckpt, dir), io(dir).logits);
    assert.ok(err <= 1e-5, `relative error ${err}`);

    const onnx = join(dir, 'exported.onnx');
    const e = await ilsvrc(['export', 'alexnet', '--checkpoint', ckpt, '-o', onnx]);
    assert.equal(e.code, 0, e.stderr);
    const image = join(dir, 'image.png');
    const px = Buffer.alloc(160 * 160 * 3);
    for (let i = 0; i < px.length; i++) px[i] = (i * 37) % 251;
    await sharp(px, { raw: { width: 160, height: 160, channels: 3 } })
      .png()
      .toFile(image);
    const a = await ilsvrc(['predict', ckpt, image, '--top', '3', '--json']);
    const b = await ilsvrc(['predict', onnx, image, '--top', '3', '--json']);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    const [pa, pb] = [JSON.parse(a.stdout), JSON.parse(b.stdout)] as { top: { index: number; class: string }[] }[][];
    assert.equal(pa![0]!.top.length, 3);
    for (const t of pa![0]!.top) assert.equal(t.class, `n${String(t.index).padStart(8, '0')} class ${t.index}`);
    assert.deepEqual(
      pb![0]!.top.map((t) => t.index),
      pa![0]!.top.map((t) => t.index),
    );
  });

  test('.caffemodel, `layer` and legacy `layers` formats, imports to the same logits (LRN and pooling read from the file)', async () => {
    const want = io(dir).logits;
    for (const f of ['alexnet.caffemodel', 'alexnet-v1.caffemodel']) {
      const r = await importWeights(join(dir, f), 'alexnet', { width: 1 / 16 });
      assert.equal(r.checkpoint.meta.modelOptions.lrn, 'caffe', f);
      assert.equal(r.checkpoint.meta.modelOptions.pool, 'ceil', f);
      assert.equal(r.checkpoint.meta.modelOptions.inputSize, 135, f);
      assert.equal(r.checkpoint.meta.modelOptions.input, 'caffe', f);
      const ckpt = join(dir, `${f}.safetensors`);
      saveImported(ckpt, r);
      const err = relErr(await logitsOf(ckpt, dir), want);
      assert.ok(err <= 1e-5, `${f}: relative error ${err}`);
    }
    // Fine-tuning starts from it like from one of ours.
    const t = await ilsvrc([
      'train',
      'alexnet',
      '--data',
      'synthetic',
      '--from',
      join(dir, 'alexnet.caffemodel.safetensors'),
      '--reset-classifier',
      '--width',
      width,
      '--input-size',
      '135',
      '--lrn',
      'caffe',
      '--pool',
      'ceil',
      '--input',
      'caffe',
      ...ONE_STEP,
      '--out',
      join(dir, 'run'),
    ]);
    assert.equal(t.code, 0, t.stderr);
  });

  test(
    'ONNX as the model zoo writes Caffe2 conversions (opset 8, LRN nodes, ceil pools as end padding) imports with no flags',
    { skip: has('onnx') ? false : 'onnx (Debian python3-onnx) not installed' },
    async () => {
      const r = await importWeights(join(dir, 'alexnet-zoo.onnx'), 'alexnet', { width: 1 / 16 });
      assert.equal(r.checkpoint.meta.modelOptions.lrn, 'caffe');
      assert.equal(r.checkpoint.meta.modelOptions.pool, 'ceil');
      assert.equal(r.checkpoint.meta.modelOptions.inputSize, 135);
      const ckpt = join(dir, 'zoo.safetensors');
      saveImported(ckpt, r);
      const err = relErr(await logitsOf(ckpt, dir), io(dir).logits);
      assert.ok(err <= 1e-5, `relative error ${err}`);
    },
  );

  test(
    'weights in typed fields and in an external data file read the same; an external location outside the folder is refused',
    { skip: has('onnx') ? false : 'onnx (Debian python3-onnx) not installed' },
    async () => {
      const ref = (await importWeights(join(dir, 'alexnet.onnx'), 'alexnet', { width: 1 / 16, lrn: 'caffe' })).checkpoint.state.params;
      for (const f of ['alexnet-typed.onnx', 'alexnet-external.onnx']) {
        const got = (await importWeights(join(dir, f), 'alexnet', { width: 1 / 16, lrn: 'caffe' })).checkpoint.state.params;
        for (const [name, w] of ref) assert.deepEqual(got.get(name), w, `${f}: ${name}`);
      }
      const m = decodeModel(readFileSync(join(dir, 'alexnet-external.onnx')));
      for (const t of m.graph.initializer ?? [])
        for (const e of t.externalData ?? []) if (e.key === 'location') e.value = '../external.data';
      const hostile = join(dir, 'hostile.onnx');
      writeFileSync(hostile, encodeModel(m));
      assertUsageError(
        await ilsvrc(['import', hostile, '--as', 'alexnet', '--width', '0.0625', '-o', join(dir, 'x.safetensors')]),
        'in a file beside',
        '"../external.data" climbs out with ".."',
      );
    },
  );

  test("the paper's LRN on Caffe's weights computes something else, and floor pooling does not fit", async () => {
    const ckpt = join(dir, 'paper.safetensors');
    saveImported(ckpt, await importWeights(join(dir, 'alexnet.onnx'), 'alexnet', { width: 1 / 16, lrn: 'paper' }));
    assert.ok(relErr(await logitsOf(ckpt, dir), io(dir).logits) > 1e-3);
    const r = await ilsvrc([
      'import',
      join(dir, 'alexnet.onnx'),
      '--as',
      'alexnet',
      '--width',
      '0.0625',
      '--pool',
      'floor',
      '-o',
      join(dir, 'floor.safetensors'),
    ]);
    assertUsageError(r, 'Expected 256×144 for mods.fc6.weight', 'fc6.weight of alexnet', 'but received 256×256');
    const c = await ilsvrc([
      'import',
      join(dir, 'alexnet.caffemodel'),
      '--as',
      'alexnet',
      '--width',
      '0.0625',
      '--lrn',
      'paper',
      '-o',
      join(dir, 'x.safetensors'),
    ]);
    assertUsageError(c, 'Expected LRN size 5, alpha 0.0005, beta 0.75, bias 2 (--lrn paper) for norm1');
    const g = await ilsvrc([
      'import',
      join(dir, 'alexnet.caffemodel'),
      '--as',
      'alexnet-single',
      '--width',
      '0.0625',
      '-o',
      join(dir, 'x.safetensors'),
    ]);
    assertUsageError(
      g,
      /Expected 16×6×5×5 for conv2 in .*alexnet\.caffemodel \(conv2\.weight of alexnet-single with these options\) but received 16×3×5×5/,
    );
  });
});

test(
  "BVLC CaffeNet (.caffemodel, each norm after its pool) imports as alexnet --lrn caffenet to PyTorch's logits",
  { skip: torch },
  async () => {
    const dir = generate('caffenet', '0.0625', '135');
    const r = await importWeights(join(dir, 'caffenet.caffemodel'), 'alexnet', { width: 1 / 16 });
    assert.equal(r.checkpoint.meta.modelOptions.lrn, 'caffenet');
    const ckpt = join(dir, 'caffenet.safetensors');
    saveImported(ckpt, r);
    const err = relErr(await logitsOf(ckpt, dir), io(dir).logits);
    assert.ok(err <= 1e-5, `relative error ${err}`);
    // BVLC AlexNet's order is refused for this file, and computes something else on these weights.
    await assert.rejects(
      importWeights(join(dir, 'caffenet.caffemodel'), 'alexnet', { width: 1 / 16, lrn: 'caffe' }),
      /Expected each norm before its pool in .*caffenet\.caffemodel but the file pools first \(--lrn caffenet\)/,
    );
    const other = join(dir, 'alexnet-order.safetensors');
    const r2 = await importWeights(join(dir, 'caffenet.caffemodel'), 'alexnet', { width: 1 / 16 });
    r2.checkpoint.meta.modelOptions = { ...r2.checkpoint.meta.modelOptions, lrn: 'caffe' };
    saveImported(other, r2);
    assert.ok(relErr(await logitsOf(other, dir), io(dir).logits) > 1e-4);
  },
);

describe('BVLC GoogLeNet (Caffe definition, 64 px, width 1/8)', { skip: torch }, () => {
  test("ONNX (opset 17) and .caffemodel (with an auxiliary head) import to PyTorch's logits", async () => {
    const dir = generate('googlenet', '0.125', '64');
    const want = io(dir).logits;
    for (const f of ['googlenet.onnx', 'googlenet.caffemodel']) {
      const r = await importWeights(join(dir, f), 'googlenet', { width: 1 / 8 });
      assert.equal(r.source.layers, 58, f); // 3 stem convs, 9 × 6 in the inception modules, the classifier
      if (f.endsWith('.caffemodel'))
        assert.ok(
          r.notes.some((n) => n.includes('left out 3 weight layers') && n.includes('loss1/conv')),
          r.notes.join('\n'),
        );
      const ckpt = join(dir, `${f}.safetensors`);
      saveImported(ckpt, r);
      const err = relErr(await logitsOf(ckpt, dir), want);
      assert.ok(err <= 1e-5, `${f}: relative error ${err}`);
    }
  });
});

describe('torchvision VGG-16 at full size', { skip: vision }, () => {
  test("state dict (safetensors) and ONNX at opsets 11 and 17 give the same weights and PyTorch's logits", async () => {
    const dir = generate('vgg16');
    const fromDict = await importWeights(join(dir, 'vgg16.safetensors'), 'vgg16');
    assert.equal(fromDict.checkpoint.meta.model, 'vgg-d');
    const ckpt = join(dir, 'vgg16.ckpt.safetensors');
    saveImported(ckpt, fromDict);
    const err = relErr(await logitsOf(ckpt, dir), io(dir).logits);
    assert.ok(err <= 1e-5, `relative error ${err}`);
    const params = fromDict.checkpoint.state.params;
    fromDict.checkpoint.state.params = new Map();
    for (const opset of [11, 17]) {
      const r = await importWeights(join(dir, `vgg16-opset${opset}.onnx`), 'vgg-d');
      assert.deepEqual([...r.checkpoint.state.params.keys()], [...params.keys()]);
      for (const [name, w] of r.checkpoint.state.params)
        assert.ok(
          Buffer.from(w.buffer, w.byteOffset, w.byteLength).equals(
            Buffer.from(params.get(name)!.buffer, params.get(name)!.byteOffset, params.get(name)!.byteLength),
          ),
          `opset ${opset}: ${name}`,
        );
    }
  });
});

/** The logits an ONNX file or checkpoint gives for `x` (torchvision's pixels). */
async function logitsFrom(file: string, x: Float32Array, rows: number): Promise<Float32Array> {
  const m = await openInference(file, { threads: 2 });
  try {
    return Float32Array.from(await m.logits(x, rows));
  } finally {
    await m.release();
  }
}

/**
 * `ilsvrc import FILE` (without --as the file's layers name the model) → `ilsvrc export` → the exported
 * graph's logits for the peer's input, within 1e-5 of PyTorch's in eval mode. Returns import's stderr; the checkpoint is FILE.ckpt.safetensors.
 */
async function tvRoundTrip(dir: string, file: string, model: string, flags: string[] = [], ioFile = 'io.safetensors'): Promise<string> {
  const ckpt = join(dir, `${file}.ckpt.safetensors`);
  const r = await ilsvrc(['import', join(dir, file), '-o', ckpt, ...flags]);
  assert.equal(r.code, 0, r.stderr);
  if (!flags.includes('--as')) assert.match(r.stderr, new RegExp(`no --as: .*${file}'s weight layers are those of ${model}\\b`));
  assert.match(r.stdout, new RegExp(`: ${model} \\(`));
  const onnx = join(dir, `${file}.exported.onnx`);
  const e = await ilsvrc(['export', model, '--checkpoint', ckpt, '-o', onnx]);
  assert.equal(e.code, 0, e.stderr);
  const t = loadSafetensors(join(dir, ioFile)).tensors;
  const x = t['input']!;
  const err = relErr(await logitsFrom(onnx, x.data as Float32Array, x.shape[0]!), t['logits']!.data as Float32Array);
  assert.ok(err <= 1e-5, `${file}: relative error ${err}`);
  for (const f of [onnx, join(dir, file)]) rmSync(f, { force: true });
  return r.stderr;
}

describe('torchvision AlexNet, GoogLeNet and batch-normalised VGG: state dicts and torch.onnx.export files', { skip: vision }, () => {
  test("alexnet: ONNX at 224 px, a state dict at 99 px (the adaptive pool's uneven cells) import to PyTorch's logits", async () => {
    const dir = generate('tv', 'alexnet', '224', 'onnx11,onnx17');
    for (const f of ['alexnet-onnx11.onnx', 'alexnet-onnx17.onnx']) await tvRoundTrip(dir, f, 'alexnet-tv');
    await tvRoundTrip(generate('tv', 'alexnet', '99', 'st'), 'alexnet-st.safetensors', 'alexnet-tv', ['--input-size', '99']);
  });

  test("googlenet(aux_logits=False) at 96 px: state dict, ONNX with batch norms kept or folded, opsets 11 and 17, give PyTorch's logits", async () => {
    const dir = generate('tv', 'googlenet', '96', 'st,aux,onnx11,onnx17,bn11,bn17,ti');
    const st = await tvRoundTrip(dir, 'googlenet-st.safetensors', 'googlenet-tv', ['--input-size', '96']);
    assert.match(st, /IMAGENET1K_V1 weights need --transform-input/);
    // Fine-tuning on the synthetic set's 8 classes: a new classifier, the imported batch norms' statistics moved by the batch.
    const from = join(dir, 'googlenet-st.safetensors.ckpt.safetensors');
    const run = join(dir, 'finetune');
    const t = await ilsvrc([
      'train',
      'googlenet-tv',
      '--data',
      'synthetic',
      '--from',
      from,
      '--reset-classifier',
      '--classes',
      '8',
      '--input-size',
      '96',
      ...ONE_STEP,
      '--out',
      run,
    ]);
    assert.equal(t.code, 0, t.stderr);
    const [was, now] = [loadCheckpoint(from).state.params, loadCheckpoint(join(run, 'last.safetensors')).state.params];
    assert.equal(now.get('fc.weight')!.length, 8 * 1024);
    assert.equal(now.get('inception5b/branch1/conv.weight')!.length, was.get('inception5b/branch1/conv.weight')!.length);
    assert.notDeepEqual(now.get('conv1/bn.running_mean'), was.get('conv1/bn.running_mean'));
    const aux = await tvRoundTrip(dir, 'googlenet-aux.safetensors', 'googlenet-tv', ['--input-size', '96']);
    assert.match(aux, /left out 8 weight layers .*aux1\.conv\.conv\.weight/);
    for (const f of ['googlenet-onnx11.onnx', 'googlenet-onnx17.onnx'])
      assert.match(await tvRoundTrip(dir, f, 'googlenet-tv'), /57 batch norms folded into its convolutions/);
    for (const f of ['googlenet-bn11.onnx', 'googlenet-bn17.onnx'])
      assert.doesNotMatch(await tvRoundTrip(dir, f, 'googlenet-tv'), /folded/);
    assert.match(await tvRoundTrip(dir, 'googlenet-ti.onnx', 'googlenet-tv', [], 'io-ti.safetensors'), /built with --transform-input/);
  });

  // A state dict and an ONNX file a model (each 0.5 GB at full size: what a VGG's classifier needs).
  for (const [name, model, onnx] of [
    ['vgg11_bn', 'vgg-a-bn', 'bn11'],
    ['vgg16_bn', 'vgg-d-bn', 'onnx17'],
  ] as const)
    test(`${name} at 224 px: state dict and ONNX (${onnx}) give PyTorch's logits`, async () => {
      const dir = generate('tv', name, '224', `st,${onnx}`);
      await tvRoundTrip(dir, `${name}-st.safetensors`, model);
      if (onnx === 'bn11') return void (await tvRoundTrip(dir, `${name}-${onnx}.onnx`, model));
      // Batch norms folded away leave the plain VGG's layers: the file fits both, the plain one exactly, and computes the same.
      const notes = await tvRoundTrip(dir, `${name}-${onnx}.onnx`, model.replace('-bn', ''));
      assert.match(notes, new RegExp(`they also fit ${model} \\(give --as to choose\\)`));
    });
});

test('summary names the variant; CaffeNet normalises after pooling; ceil pooling changes the shapes', async () => {
  const s = await ilsvrc(['summary', 'alexnet', '--lrn', 'caffenet', '--pool', 'ceil', '--input-size', '135', '--json']);
  assert.equal(s.code, 0, s.stderr);
  const j = JSON.parse(s.stdout) as { variant: string; layers: { name: string; output: number[] }[] };
  assert.equal(j.variant, 'lrn caffenet, pool ceil');
  assert.deepEqual(
    j.layers.slice(0, 3).map((l) => l.name),
    ['conv1', 'pool1', 'norm1'],
  );
  assert.deepEqual(j.layers[1]!.output.slice(-2), [16, 16]); // ⌈(32 − 3)/2⌉ + 1; the paper's floor gives 15
  const paper = JSON.parse((await ilsvrc(['summary', 'alexnet', '--input-size', '135', '--json'])).stdout) as typeof j;
  assert.equal(paper.variant, undefined);
  assert.deepEqual(
    paper.layers.slice(0, 3).map((l) => l.name),
    ['conv1', 'norm1', 'pool1'],
  );
  assert.deepEqual(paper.layers[2]!.output.slice(-2), [15, 15]);
});

test('files that are not weights, or not these weights, are one line naming the file, exit 2', async () => {
  const bad = join(root, 'garbage.caffemodel');
  writeFileSync(bad, Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02]));
  assertUsageError(await ilsvrc(['import', bad, '--as', 'alexnet', '-o', join(root, 'x.safetensors')]), `in ${bad}`);
  assertUsageError(
    await ilsvrc(['import', join(root, 'weights.pt'), '--as', 'alexnet', '-o', join(root, 'x.safetensors')]),
    'Expected a .onnx, .caffemodel or .safetensors file',
  );
  const bn = join(root, 'bn.safetensors');
  saveSafetensors(bn, { 'features.1.running_mean': { dtype: 'F32', shape: [2], data: new Float32Array(2) } });
  assertUsageError(await ilsvrc(['import', bn, '--as', 'vgg16', '-o', join(root, 'x.safetensors')]), 'features.1.running_mean');
  assertUsageError(
    await ilsvrc(['import', join(root, 'missing.onnx'), '--as', 'vgg16', '-o', join(root, 'x.safetensors')]),
    'missing.onnx',
  );
});

test('batch norms that cannot be (a negative running variance, statistics for other channels, an ONNX node in training mode) are one line, exit 2', async () => {
  const out = join(root, 'bn-refused.safetensors');
  const neg = join(root, 'negative-variance.safetensors');
  badBnStateDict(neg, 'negative-variance');
  assertUsageError(
    await ilsvrc(['import', neg, '--as', 'vgg11_bn', '-o', out]),
    `Expected running variances ≥ 0 for features.1.running_var in ${neg} but channel 2 holds -0.25`,
  );
  const channels = join(root, 'channels.safetensors');
  badBnStateDict(channels, 'channels');
  assertUsageError(
    await ilsvrc(['import', channels, '-o', out]),
    `Expected 4 values (the output channels of features.0.weight) for features.1.running_mean in ${channels} but received 3`,
  );
  const onnx = join(root, 'training-mode.onnx');
  await trainingModeBnOnnx(onnx);
  assertUsageError(await ilsvrc(['import', onnx, '--as', 'vgg-a-bn', '-o', out]), 'but received training_mode 1');
  // The same network with its batch norms as saved is the plain model's: the wrong one is named.
  const plain = join(root, 'plain-onnx.onnx');
  assert.equal((await ilsvrc(['export', 'vgg-a-bn', '--width', '0.0625', '--input-size', '32', '--classes', '10', '-o', plain])).code, 0);
  assertUsageError(
    await ilsvrc(['import', plain, '--as', 'vgg-a', '--width', '0.0625', '-o', out]),
    "give --as the model's batch-normalised form",
  );
  const r = await ilsvrc(['import', plain, '--width', '0.0625', '-o', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /: vgg-a-bn \(32 px, 10 classes, width 0\.0625\)/);
});
