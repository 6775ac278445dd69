/** Training end to end through onnxruntime: every zoo model learns, runs repeat, K steps = K single steps, checkpoints resume exactly. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { MODELS } from '../../src/zoo/index.js';
import { DEFAULT_OPTIMIZER, type OptimizerConfig } from '../../src/optim/optimizer.js';
import { loadCheckpoint, saveCheckpoint } from '../../src/train/checkpoint.js';
import { TrainingSession, type StepBatch, type TrainingConfig } from '../../src/train/training-session.js';
import { Rng } from '../../src/util/rng.js';
import { decodeModel } from '../../src/onnx/proto.js';
import { createSession, tensor } from '../../src/runtime/ort.js';

/** Smallest sensible input per model at these depths (aux heads need 4a's map ≥ 5×5). */
const INPUT: Record<string, number> = { alexnet: 131, 'alexnet-single': 131, googlenet: 96, 'googlenet-naive': 96 };

function config(model: string, over: Partial<TrainingConfig> = {}, opt: Partial<OptimizerConfig> = {}): TrainingConfig {
  return {
    model,
    modelOptions: { width: 1 / 16, classes: 5, inputSize: INPUT[model] ?? 64, init: 'kaiming', aux: model.startsWith('googlenet') },
    batch: 4,
    optimizer: { ...DEFAULT_OPTIMIZER, ...opt },
    labelSmoothing: 0,
    frozen: [],
    seed: 11,
    session: { threads: 2 },
    ...over,
  };
}

function batches(cfg: TrainingConfig, count: number, seed = 3): StepBatch[] {
  const s = cfg.modelOptions.inputSize ?? 64;
  const rng = new Rng(seed);
  return Array.from({ length: count }, () => ({
    x: Float32Array.from({ length: cfg.batch * 3 * s * s }, () => rng.normal()),
    labels: Int32Array.from({ length: cfg.batch }, () => rng.int(5)),
  }));
}

function maxDiff(a: Map<string, Float32Array>, b: Map<string, Float32Array>): number {
  let m = 0;
  for (const [k, v] of a) {
    const w = b.get(k)!;
    for (let i = 0; i < v.length; i++) m = Math.max(m, Math.abs(v[i]! - w[i]!));
  }
  return m;
}

for (const spec of MODELS) {
  test(`${spec.name} learns: the loss on two fixed batches falls within 10 steps`, async () => {
    const cfg = config(spec.name);
    // Dropout on 4 images makes batch norm's first steps a random walk (in PyTorch as well): measured without it.
    if (spec.name.endsWith('-bn')) cfg.modelOptions = { ...cfg.modelOptions, dropout: 0 };
    const data = batches(cfg, 2);
    const s = await TrainingSession.create(cfg);
    const losses: number[] = [];
    for (let i = 0; i < 10; i++) losses.push((await s.runSteps([data[i % 2]!], [0.01]))[0]!.loss);
    await s.release();
    assert.ok(losses.every(Number.isFinite), `non-finite loss: ${losses}`);
    const first = (losses[0]! + losses[1]!) / 2;
    const last = (losses[8]! + losses[9]!) / 2;
    assert.ok(
      last < first,
      `${spec.name}: loss went ${first.toFixed(4)} → ${last.toFixed(4)} (${losses.map((l) => l.toFixed(3)).join(' ')})`,
    );
  });
}

test('a fixed seed gives the identical loss sequence twice', async () => {
  const cfg = config('alexnet');
  const data = batches(cfg, 3);
  const run = async () => {
    const s = await TrainingSession.create(cfg);
    const out: number[] = [];
    for (const b of data) out.push((await s.runSteps([b], [0.01]))[0]!.loss);
    await s.release();
    return out;
  };
  assert.deepEqual(await run(), await run());
});

test('K steps in one Loop run equal K single steps (SGD and AdamW)', async () => {
  for (const opt of [{ kind: 'sgd' as const }, { kind: 'adamw' as const, weightDecay: 0.01 }]) {
    const cfg = config('googlenet', {}, opt);
    const data = batches(cfg, 3);
    const single = await TrainingSession.create(cfg);
    const l1: number[] = [];
    for (const b of data) l1.push((await single.runSteps([b], [0.01]))[0]!.loss);
    // The Loop is the graph update's; the CPU's default updates in place, one step per gradient run.
    const fused = await TrainingSession.create({ ...cfg, update: 'graph' });
    assert.equal(fused.updateIn, 'graph');
    const l2 = (await fused.runSteps(data, [0.01, 0.01, 0.01])).map((m) => m.loss);
    assert.deepEqual(l2, l1);
    assert.ok(maxDiff(single.params, fused.params) <= 1e-6, 'parameters differ');
    assert.ok(maxDiff(single.states, fused.states) <= 1e-6, 'optimizer state differs');
    await single.release();
    await fused.release();
  }
});

test('batch norm: K steps in one Loop run equal K single steps, running statistics included', async () => {
  const cfg = config('vgg-a-bn');
  const data = batches(cfg, 3);
  const single = await TrainingSession.create(cfg);
  const before = Float32Array.from(single.params.get('conv2_1_bn.running_var')!);
  for (const b of data) await single.runSteps([b], [0.01]);
  const fused = await TrainingSession.create({ ...cfg, update: 'graph' });
  await fused.runSteps(data, [0.01, 0.01, 0.01]);
  assert.notDeepEqual(single.params.get('conv2_1_bn.running_var'), before, 'the running variance moved');
  assert.ok(maxDiff(single.params, fused.params) <= 1e-5, 'parameters or running statistics differ');
  // Gradient accumulation's path (runTrainStep) moves them as a step does.
  const acc = await TrainingSession.create(cfg);
  for (const b of data) {
    await acc.runTrainStep(b);
    await acc.runOptimizerStep(0.01);
  }
  assert.ok(maxDiff(single.params, acc.params) <= 1e-5, 'gradient accumulation differs');
  for (const s of [single, fused, acc]) await s.release();
});

test('a batch norm layer frozen whole runs in eval mode: its running statistics stay, unfrozen layers move theirs', async () => {
  const cfg = config('vgg-a-bn', { frozen: ['conv1_1_bn.weight', 'conv1_1_bn.bias', 'conv2_1_bn.weight'] });
  for (const update of ['native', 'graph'] as const) {
    const s = await TrainingSession.create({ ...cfg, update });
    const copy = (n: string) => Float32Array.from(s.params.get(n)!);
    const frozenMean = copy('conv1_1_bn.running_mean');
    const half = copy('conv2_1_bn.running_mean');
    await s.runSteps(batches(cfg, 2), [0.05, 0.05]);
    assert.deepEqual(s.params.get('conv1_1_bn.running_mean'), frozenMean, update);
    // Only its weight frozen: the layer still normalises by its batch and keeps statistics.
    assert.notDeepEqual(s.params.get('conv2_1_bn.running_mean'), half, update);
    await s.release();
  }
});

test('gradient accumulation: runTrainStep ×1 + runOptimizerStep equals the fused step', async () => {
  const cfg = config('nin');
  const data = batches(cfg, 2);
  const a = await TrainingSession.create(cfg);
  const b = await TrainingSession.create(cfg);
  for (const d of data) {
    await a.runSteps([d], [0.02]);
    await b.runTrainStep(d);
    await b.runOptimizerStep(0.02);
  }
  assert.equal(maxDiff(a.params, b.params), 0);
  await a.release();
  await b.release();
});

test('frozen parameters stay fixed while the classifier trains', async () => {
  const cfg = config('vgg-a', { frozen: ['conv1_1.weight', 'conv1_1.bias'] });
  const s = await TrainingSession.create(cfg);
  const before = Float32Array.from(s.params.get('conv1_1.weight')!);
  const fc = Float32Array.from(s.params.get('fc8.weight')!);
  await s.runSteps(batches(cfg, 2), [0.05, 0.05]);
  assert.deepEqual(s.params.get('conv1_1.weight'), before);
  assert.notDeepEqual(s.params.get('fc8.weight'), fc);
  await s.release();
});

test('save → load → continue gives bit-identical parameters to an uninterrupted run', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ilsvrc-ckpt-'));
  try {
    const cfg = config('alexnet');
    const data = batches(cfg, 6);
    const whole = await TrainingSession.create(cfg);
    for (const b of data) await whole.runSteps([b], [0.01]);

    const first = await TrainingSession.create(cfg);
    for (const b of data.slice(0, 3)) await first.runSteps([b], [0.01]);
    const path = join(dir, 'last.safetensors');
    const o = cfg.modelOptions;
    saveCheckpoint(path, first.snapshot(), {
      model: cfg.model,
      modelOptions: {
        classes: 5,
        inputSize: o.inputSize ?? 64,
        channels: 3,
        width: o.width ?? 1,
        dropout: undefined,
        aux: false,
        init: 'kaiming',
      },
      epoch: 0,
      batchInEpoch: 3,
    });
    await first.release();

    const ck = loadCheckpoint(path);
    assert.equal(ck.meta.step, 3);
    const resumed = await TrainingSession.create(cfg, ck.state);
    for (const b of data.slice(3)) await resumed.runSteps([b], [0.01]);
    assert.equal(maxDiff(whole.params, resumed.params), 0);
    assert.equal(maxDiff(whole.states, resumed.states), 0);
    await whole.release();
    await resumed.release();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

for (const model of ['zfnet', 'vgg-a-bn']) {
  test(`exported inference model reproduces the eval graph logits (${model})`, async () => {
    const cfg = config(model);
    const s = await TrainingSession.create(cfg);
    const [b] = batches(cfg, 1);
    await s.runSteps([b!], [0.01]);
    const ev = await s.runEvalStep(b!);
    const bytes = s.exportModelForInferencing();
    const graph = decodeModel(bytes).graph;
    assert.equal(graph.input.length, 1, 'weights are initializers, the image is the only input');
    if (model.endsWith('-bn')) {
      // Eval mode: ONNX BatchNormalization reading the running statistics, which the step moved off 0 and 1.
      const bn = graph.node.filter((n) => n.opType === 'BatchNormalization');
      assert.equal(bn.length, 8);
      assert.ok(bn.every((n) => n.input[3]?.endsWith('.running_mean') && n.input[4]?.endsWith('.running_var')));
      assert.ok(s.params.get('conv1_1_bn.running_mean')!.some((v) => v !== 0));
    }
    const inf = await createSession(bytes, { threads: 2 });
    const out = await inf.run({ input: tensor('float32', b!.x, [4, 3, 64, 64]) });
    const logits = out['logits']!.data as Float32Array;
    for (let i = 0; i < logits.length; i++) assert.ok(Math.abs(logits[i]! - ev.logits[i]!) < 1e-4);
    await s.release();
  });
}

test('runInference gives the eval graph logits and follows the weights through steps and loads', async () => {
  const cfg = config('alexnet');
  const s = await TrainingSession.create(cfg);
  const [b, c] = batches(cfg, 2);
  const same = async (label: string) => {
    const ev = (await s.runEvalStep(b!)).logits;
    const got = await s.runInference(b!.x, cfg.batch);
    assert.equal(got.length, ev.length);
    for (let i = 0; i < got.length; i++)
      assert.ok(Math.abs(got[i]! - ev[i]!) < 1e-4 * (1 + Math.abs(ev[i]!)), `${label}: ${got[i]} vs ${ev[i]}`);
    return got.slice();
  };
  const before = await same('fresh');
  await s.runSteps([c!], [0.05]);
  const after = await same('after a step');
  assert.ok(
    after.some((v, i) => v !== before[i]),
    'a step changes the logits',
  );
  const other = await TrainingSession.create({ ...cfg, seed: 99 });
  s.loadParametersBuffer(other.getContiguousParameters());
  await same('after loadParametersBuffer');
  await other.release();
  await s.release();
});

test('the auxiliary-loss weight: 0 leaves the aux heads untouched, 0.3 trains them', async () => {
  const moved = async (auxWeight: number) => {
    const cfg = config('googlenet', { auxWeight }, { weightDecay: 0 });
    const s = await TrainingSession.create(cfg);
    const before = Float32Array.from(s.params.get('loss1/fc.weight')!);
    await s.runSteps(batches(cfg, 1), [0.05]);
    const after = s.params.get('loss1/fc.weight')!;
    await s.release();
    return before.some((v, i) => v !== after[i]);
  };
  assert.equal(await moved(0), false);
  assert.equal(await moved(0.3), true);
});

test('a row labelled -1 (an unreadable image) is ignored: loss is the mean over the other rows, n counts them, its pixels do not move the weights', async () => {
  for (const smoothing of [0, 0.1]) {
    const cfg = config('vgg-a', { labelSmoothing: smoothing });
    const [b] = batches(cfg, 1);
    const labels = Int32Array.from([1, 4, 2, -1]);
    const s = await TrainingSession.create(cfg);
    const ev = await s.runEvalStep({ x: b!.x, labels });
    assert.equal(ev.n, 3);
    let want = 0;
    for (let r = 0; r < 3; r++) {
      const row = ev.logits.subarray(r * 5, r * 5 + 5);
      const m = Math.max(...row);
      const lse = m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0));
      const target = (c: number): number => (c === labels[r] ? 1 - smoothing : 0) + smoothing / 5;
      for (let c = 0; c < 5; c++) want += (target(c) * (lse - row[c]!)) / 3;
    }
    assert.ok(Math.abs(ev.loss - want) < 1e-5, `smoothing ${smoothing}: loss ${ev.loss} vs ${want} over the 3 labelled rows`);
    assert.ok(ev.top5 <= 3);
    await s.release();

    // Other pixels in the ignored row: the same update, to the bit.
    const other = Float32Array.from(b!.x);
    const plane = other.length / 4;
    for (let i = 3 * plane; i < other.length; i++) other[i] = -other[i]! + 0.5;
    const after = async (x: Float32Array): Promise<{ params: Map<string, Float32Array>; n: number }> => {
      const t = await TrainingSession.create(cfg);
      const [m] = await t.runSteps([{ x: Float32Array.from(x), labels }], [0.05]);
      const params = new Map(t.snapshot().params);
      await t.release();
      return { params, n: m!.n };
    };
    const p = await after(b!.x);
    const q = await after(other);
    assert.equal(p.n, 3);
    assert.equal(maxDiff(p.params, q.params), 0);
  }
  // A batch with no labelled row: loss 0 (not NaN), nothing counted.
  const cfg = config('vgg-a');
  const s = await TrainingSession.create(cfg);
  const ev = await s.runEvalStep({ x: batches(cfg, 1)[0]!.x, labels: Int32Array.from([-1, -1, -1, -1]) });
  assert.deepEqual([ev.loss, ev.top1, ev.top5, ev.n], [0, 0, 0, 0]);
  await s.release();
});
