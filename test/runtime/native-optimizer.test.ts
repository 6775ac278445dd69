/**
 * The in-place native update (native/optim.c through src/optim/native.ts) against the update graph it
 * replaces, for every optimizer and convention, with weight decay on and off biases, a frozen
 * parameter and changing rates:
 * - from the same gradients (runTrainStep + runOptimizerStep), bit-identical after three steps;
 * - training (runSteps), where fully connected weights are updated from their layers' inputs
 *   and output gradients, equal to 1e-6 of each tensor's largest value after three steps;
 * - the outer-product update itself against a float64 reference, to 1e-6 relative.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { hasNativeOptimizer, NativeOptimizer } from '../../src/optim/native.js';
import { DEFAULT_OPTIMIZER, hyperValues, type OptimizerConfig } from '../../src/optim/optimizer.js';
import { TrainingSession, type StepBatch, type TrainingConfig } from '../../src/train/training-session.js';
import { buildTrainGraph, OUTER_MIN_ELEMENTS } from '../../src/train/graphs.js';
import { Rng } from '../../src/util/rng.js';

// With a C compiler and Node's headers, .ci/run sets this: a missing addon is then a failure, not a skip.
const required = process.env['ILSVRC_REQUIRE_NATIVE_OPTIM'] === '1';
const built = hasNativeOptimizer();
const skip = built ? false : 'build/native/optim.node is not built (scripts/build-native)';

function config(opt: Partial<OptimizerConfig>, update: 'native' | 'graph'): TrainingConfig {
  return {
    model: 'vgg-a',
    modelOptions: { width: 1 / 16, classes: 5, inputSize: 32, init: 'kaiming' },
    batch: 2,
    optimizer: { ...DEFAULT_OPTIMIZER, ...opt },
    labelSmoothing: 0,
    frozen: ['conv1_1.weight'],
    seed: 5,
    session: { threads: 1 },
    update,
    outerMinElements: 0, // these layers are small: every one takes the row-by-row sum here
  };
}

function batches(count: number): StepBatch[] {
  const rng = new Rng(8);
  return Array.from({ length: count }, () => ({
    x: Float32Array.from({ length: 2 * 3 * 32 * 32 }, () => rng.normal()),
    labels: Int32Array.from({ length: 2 }, () => rng.int(5)),
  }));
}

/** Names of the entries whose bits differ (Float32 compared as integers: -0 ≠ 0, NaN = NaN). */
function differing(a: ReadonlyMap<string, Float32Array>, b: ReadonlyMap<string, Float32Array>): string[] {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  const out: string[] = [];
  for (const [k, v] of a) {
    const x = new Uint32Array(v.buffer, v.byteOffset, v.length);
    const w = b.get(k)!;
    const y = new Uint32Array(w.buffer, w.byteOffset, w.length);
    if (x.length !== y.length || x.some((bits, i) => bits !== y[i])) out.push(k);
  }
  return out;
}

function maxDiff(a: ReadonlyMap<string, Float32Array>, b: ReadonlyMap<string, Float32Array>): number {
  let m = 0;
  for (const [k, v] of a) v.forEach((x, i) => (m = Math.max(m, Math.abs(x - b.get(k)![i]!))));
  return m;
}

/** Entries whose largest difference exceeds `tol` of their largest magnitude, with that ratio. */
function relativelyOff(a: ReadonlyMap<string, Float32Array>, b: ReadonlyMap<string, Float32Array>, tol: number): string[] {
  const out: string[] = [];
  for (const [k, v] of a) {
    const w = b.get(k)!;
    let d = 0;
    let s = 0;
    v.forEach((x, i) => {
      d = Math.max(d, Math.abs(x - w[i]!));
      s = Math.max(s, Math.abs(w[i]!));
    });
    if (d > tol * s) out.push(`${k}: ${(d / s).toExponential(2)}`);
  }
  return out;
}

const OPTIMIZERS: [string, Partial<OptimizerConfig>][] = [
  ['SGD, PyTorch momentum, decay on biases', { kind: 'sgd' }],
  ['SGD, Caffe momentum, no decay on biases', { kind: 'sgd', convention: 'caffe', decayBiases: false }],
  ['Nesterov', { kind: 'nesterov', momentum: 0.95 }],
  ['SGD without momentum or decay', { kind: 'sgd', momentum: 0, weightDecay: 0 }],
  ['AdamW', { kind: 'adamw', weightDecay: 0.01, decayBiases: false }],
];

for (const [label, opt] of OPTIMIZERS) {
  test(`training with the native update = with the update graph after 3 steps, to 1e-6: ${label}`, { skip }, async () => {
    const data = batches(3);
    const lrs = [0.05, 0.02, 0.01];
    const graph = await TrainingSession.create(config(opt, 'graph'));
    const native = await TrainingSession.create(config(opt, 'native'));
    assert.equal(graph.updateIn, 'graph');
    assert.equal(native.updateIn, 'native');
    const frozen = native.params.get('conv1_1.weight')!.slice();
    const fc8 = native.params.get('fc8.weight')!.slice();
    const arrays = [...native.params.values(), ...native.states.values()];
    const lg: number[] = [];
    const ln: number[] = [];
    // Graph: single steps; native: one call of three (its per-batch loop), the way training calls it.
    for (let i = 0; i < 3; i++) lg.push((await graph.runSteps([data[i]!], [lrs[i]!]))[0]!.loss);
    for (const m of await native.runSteps(data, lrs)) ln.push(m.loss);
    // The first step's loss is computed before any update; later ones follow the (rounding-equal) weights.
    assert.equal(ln[0], lg[0]);
    ln.forEach((l, i) => assert.ok(Math.abs(l - lg[i]!) <= 1e-5 * Math.abs(lg[i]!), `loss ${i}: ${l} vs ${lg[i]}`));
    assert.deepEqual(relativelyOff(native.params, graph.params, 1e-6), []);
    assert.deepEqual(relativelyOff(native.states, graph.states, 1e-6), []);
    // The fully connected weights did take the outer-product path, and moved.
    assert.ok(differing(native.params, graph.params).includes('fc6.weight'));
    // The graph path's K steps in one Loop run stay what they were (the default off the CPU).
    const loop = await TrainingSession.create(config(opt, 'graph'));
    assert.deepEqual(
      (await loop.runSteps(data, lrs)).map((m) => m.loss),
      lg,
    );
    assert.ok(
      maxDiff(loop.params, graph.params) <= 1e-6 && maxDiff(loop.states, graph.states) <= 1e-6,
      'the Loop run differs from single steps',
    );
    await loop.release();
    assert.equal(native.step, 3);
    // In place: the session still holds the very arrays it started with, and the frozen one is unchanged.
    assert.ok([...native.params.values(), ...native.states.values()].every((a, i) => a === arrays[i]));
    assert.deepEqual(native.params.get('conv1_1.weight'), frozen);
    assert.notDeepEqual(native.params.get('fc8.weight'), fc8);
    await graph.release();
    await native.release();
  });
}

for (const [label, opt] of OPTIMIZERS) {
  test(`from the same gradients, the native update = the update graph after 3 steps, bit for bit: ${label}`, { skip }, async () => {
    const data = batches(4);
    const lrs = [0.05, 0.02, 0.01];
    const run = async (update: 'native' | 'graph') => {
      const s = await TrainingSession.create(config(opt, update));
      // Steps of one micro-batch, then one of two (the mean of accumulated gradients).
      await s.runTrainStep(data[0]!);
      await s.runOptimizerStep(lrs[0]!);
      await s.runTrainStep(data[1]!);
      await s.runOptimizerStep(lrs[1]!);
      await s.runTrainStep(data[2]!);
      await s.runTrainStep(data[3]!);
      await s.runOptimizerStep(lrs[2]!);
      await s.release();
      return s;
    };
    const [g, n] = [await run('graph'), await run('native')];
    assert.equal(n.step, 3);
    assert.deepEqual(differing(n.params, g.params), []);
    assert.deepEqual(differing(n.states, g.states), []);
    assert.notDeepEqual(n.params.get('fc8.weight'), (await TrainingSession.create(config(opt, 'graph'))).params.get('fc8.weight'));
  });
}

test('the outer-product update (W from dYᵀ·X) equals a float64 reference to 1e-6, for SGD, Nesterov and AdamW', { skip }, () => {
  const [rows, cols, n] = [37, 300, 5];
  const rng = new Rng(4);
  const rand = (len: number, s: number) => Float32Array.from({ length: len }, () => rng.normal() * s);
  for (const opt of [
    { kind: 'sgd' as const },
    { kind: 'nesterov' as const },
    { kind: 'sgd' as const, convention: 'caffe' as const },
    { kind: 'adamw' as const, weightDecay: 0.01 },
  ]) {
    const c: OptimizerConfig = { ...DEFAULT_OPTIMIZER, ...opt };
    const native = NativeOptimizer.create(c, 2)!;
    const w = rand(rows * cols, 0.05);
    const states =
      c.kind === 'adamw' ? [rand(rows * cols, 0.01), Float32Array.from(rand(rows * cols, 0.01), Math.abs)] : [rand(rows * cols, 0.01)];
    const dy = rand(n * rows, 0.1);
    const x = rand(n * cols, 1);
    const [lr, t] = [0.03, 2];
    // float64 reference from the float32 inputs
    const W = Float64Array.from(w);
    const S = states.map((a) => Float64Array.from(a));
    const [, bc1 = 1, bc2 = 1] = hyperValues(c, lr, t);
    for (let r = 0; r < rows; r++) {
      for (let i = 0; i < cols; i++) {
        let g = 0;
        for (let b = 0; b < n; b++) g += dy[b * rows + r]! * x[b * cols + i]!;
        const k = r * cols + i;
        const wk = W[k]!;
        if (c.kind === 'adamw') {
          const m = c.beta1 * S[0]![k]! + (1 - c.beta1) * g;
          const v = c.beta2 * S[1]![k]! + (1 - c.beta2) * g * g;
          S[0]![k] = m;
          S[1]![k] = v;
          W[k] = wk - lr * ((m * bc1) / (Math.sqrt(v * bc2) + c.eps) + c.weightDecay * wk);
        } else if (c.convention === 'caffe') {
          const v = c.momentum * S[0]![k]! + lr * (g + c.weightDecay * wk);
          S[0]![k] = v;
          W[k] = wk - v;
        } else {
          const gd = g + c.weightDecay * wk;
          const v = c.momentum * S[0]![k]! + gd;
          S[0]![k] = v;
          W[k] = wk - lr * (c.kind === 'nesterov' ? gd + c.momentum * v : v);
        }
      }
    }
    native.stepOuter(w, dy, x, states, lr, t);
    const off = (got: Float32Array, want: Float64Array) => {
      let d = 0;
      let s = 0;
      want.forEach((v, i) => {
        d = Math.max(d, Math.abs(got[i]! - v));
        s = Math.max(s, Math.abs(v));
      });
      return d / s;
    };
    assert.ok(off(w, W) <= 1e-6, `${c.kind}/${c.convention}: weights off by ${off(w, W)}`);
    states.forEach((a, i) => assert.ok(off(a, S[i]!) <= 1e-6, `${c.kind}/${c.convention}: state ${i} off by ${off(a, S[i]!)}`));
  }
});

test('the outer gradient graph: fully connected weights give X and dY, not a gradient; frozen and convolution weights as before', () => {
  const c = config({}, 'native');
  const tg = buildTrainGraph({ ...c, frozen: new Set(['conv1_1.weight', 'fc7.weight']) }, 'outer');
  const outputs = tg.graph.outputs.map((v) => v.name);
  assert.deepEqual(
    tg.outer.map((o) => [o.param.value.name, o.x, o.dy]),
    ['fc6', 'fc8'].map((l) => [`${l}.weight`, `${l}.weight.x`, `${l}.weight.dy`]),
  );
  for (const name of ['fc6.weight.x', 'fc6.weight.dy', 'fc6.bias.grad', 'fc7.bias.grad', 'conv1_1.bias.grad', 'conv2_1.weight.grad'])
    assert.ok(outputs.includes(name), name);
  for (const name of ['fc6.weight.grad', 'fc7.weight.grad', 'fc7.weight.x', 'conv1_1.weight.grad'])
    assert.ok(!outputs.includes(name), name);
  const shape = (n: string) => tg.graph.outputs.find((v) => v.name === n)!.shape;
  assert.deepEqual(
    [shape('fc6.weight.x'), shape('fc6.weight.dy')],
    [
      [2, tg.params.find((p) => p.value.name === 'fc6.weight')!.value.shape[1]],
      [2, 256],
    ],
  );
});

test('by default only fully connected layers of 2 M weights or more come out as X and dY', () => {
  const { outerMinElements: _, ...c } = config({}, 'native');
  const small = buildTrainGraph({ ...c, frozen: new Set() }, 'outer');
  assert.deepEqual(small.outer, []);
  assert.ok(small.graph.outputs.some((v) => v.name === 'fc6.weight.grad'));
  const alexnet = buildTrainGraph({ ...c, model: 'alexnet', modelOptions: { classes: 1000 }, frozen: new Set() }, 'outer');
  assert.deepEqual(
    alexnet.outer.map((o) => o.param.value.name),
    ['fc6.weight', 'fc7.weight', 'fc8.weight'],
  );
  assert.ok(alexnet.outer.every((o) => o.param.value.size >= OUTER_MIN_ELEMENTS));
});

test('without the addon (ILSVRC_NATIVE_OPTIM=0) training runs the update graph, and asking for native says why', () => {
  const session = fileURLToPath(new URL('../../src/train/training-session.js', import.meta.url));
  const script = `
    const { TrainingSession } = await import(${JSON.stringify(session)});
    const cfg = ${JSON.stringify(config({}, 'graph'))};
    delete cfg.update;
    const s = await TrainingSession.create(cfg);
    const x = new Float32Array(2 * 3 * 32 * 32).fill(0.5);
    const [m] = await s.runSteps([{ x, labels: Int32Array.of(1, 2) }], [0.01]);
    let why = '';
    try { await TrainingSession.create({ ...cfg, update: 'native' }); } catch (e) { why = e.name + ': ' + e.message; }
    console.log(JSON.stringify({ update: s.updateIn, loss: m.loss, why }));
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
    env: { ...process.env, ILSVRC_NATIVE_OPTIM: '0' },
  });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { update: string; loss: number; why: string };
  assert.equal(out.update, 'graph');
  assert.ok(Number.isFinite(out.loss));
  assert.match(out.why, /^UsageError: Expected build\/native\/optim\.node .* for the native optimizer update but received "no addon"$/);
});

test(
  'the native optimizer is built where the build can build it',
  { skip: !required && 'only checked where .ci/run installed a C compiler' },
  () => {
    assert.ok(built, 'build/native/optim.node is missing: see scripts/build-native');
  },
);
