/**
 * The in-place native update (native/optim.c through src/optim/native.ts) against the update graph it
 * replaces: after three steps, parameters and optimizer state are bit-identical, for every optimizer
 * and convention, with weight decay on and off biases, a frozen parameter, and changing rates.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { hasNativeOptimizer } from '../../src/optim/native.js';
import { DEFAULT_OPTIMIZER, type OptimizerConfig } from '../../src/optim/optimizer.js';
import { TrainingSession, type StepBatch, type TrainingConfig } from '../../src/runtime/training-session.js';
import { Rng } from '../../src/util/rng.js';

// With a C compiler and Node's headers, .ci/run sets this: a missing addon is then a failure, not a skip.
const required = process.env['ILSVRC_REQUIRE_NATIVE_JPEG'] === '1' || process.env['ILSVRC_REQUIRE_NATIVE_OPTIM'] === '1';
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

const OPTIMIZERS: [string, Partial<OptimizerConfig>][] = [
  ['SGD, PyTorch momentum, decay on biases', { kind: 'sgd' }],
  ['SGD, Caffe momentum, no decay on biases', { kind: 'sgd', convention: 'caffe', decayBiases: false }],
  ['Nesterov', { kind: 'nesterov', momentum: 0.95 }],
  ['SGD without momentum or decay', { kind: 'sgd', momentum: 0, weightDecay: 0 }],
  ['AdamW', { kind: 'adamw', weightDecay: 0.01, decayBiases: false }],
];

for (const [label, opt] of OPTIMIZERS) {
  test(`native update = update graph after 3 steps, bit for bit: ${label}`, { skip }, async () => {
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
    for (let i = 0; i < 3; i++) lg.push((await graph.runFusedSteps([data[i]!], [lrs[i]!]))[0]!.loss);
    for (const m of await native.runFusedSteps(data, lrs)) ln.push(m.loss);
    assert.deepEqual(ln, lg);
    assert.deepEqual(differing(native.params, graph.params), []);
    assert.deepEqual(differing(native.states, graph.states), []);
    // The graph path's K steps in one Loop run stay what they were (the default off the CPU).
    const loop = await TrainingSession.create(config(opt, 'graph'));
    assert.deepEqual((await loop.runFusedSteps(data, lrs)).map((m) => m.loss), lg);
    assert.ok(maxDiff(loop.params, graph.params) <= 1e-6 && maxDiff(loop.states, graph.states) <= 1e-6, 'the Loop run differs from single steps');
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

test('gradient accumulation with the native update = with the update graph, bit for bit', { skip }, async () => {
  const opt = { kind: 'adamw' as const, weightDecay: 0.01 };
  const data = batches(4);
  const run = async (update: 'native' | 'graph') => {
    const s = await TrainingSession.create(config(opt, update));
    for (let i = 0; i < 4; i += 2) {
      await s.runTrainStep(data[i]!);
      await s.runTrainStep(data[i + 1]!);
      await s.runOptimizerStep(0.01);
    }
    await s.release();
    return s;
  };
  const [g, n] = [await run('graph'), await run('native')];
  assert.equal(n.step, 2);
  assert.deepEqual(differing(n.params, g.params), []);
  assert.deepEqual(differing(n.states, g.states), []);
});

test('without the addon (ILSVRC_NATIVE_OPTIM=0) training runs the update graph, and asking for native says why', () => {
  const session = fileURLToPath(new URL('../../src/runtime/training-session.js', import.meta.url));
  const script = `
    const { TrainingSession } = await import(${JSON.stringify(session)});
    const cfg = ${JSON.stringify(config({}, 'graph'))};
    delete cfg.update;
    const s = await TrainingSession.create(cfg);
    const x = new Float32Array(2 * 3 * 32 * 32).fill(0.5);
    const [m] = await s.runFusedSteps([{ x, labels: Int32Array.of(1, 2) }], [0.01]);
    let why = '';
    try { await TrainingSession.create({ ...cfg, update: 'native' }); } catch (e) { why = e.name + ': ' + e.message; }
    console.log(JSON.stringify({ update: s.updateIn, loss: m.loss, why }));
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, ILSVRC_NATIVE_OPTIM: '0' } });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { update: string; loss: number; why: string };
  assert.equal(out.update, 'graph');
  assert.ok(Number.isFinite(out.loss));
  assert.match(out.why, /^UsageError: Expected build\/native\/optim\.node .* for the native optimizer update but received "no addon"$/);
});

test('the native optimizer is built where the build can build it', { skip: !required && 'only checked where .ci/run installed a C compiler' }, () => {
  assert.ok(built, 'build/native/optim.node is missing: see scripts/build-native');
});
