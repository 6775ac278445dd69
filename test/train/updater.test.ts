/**
 * The two updaters (src/train/updater.ts) give the same weights: the native one, which updates in
 * place after each gradient run, and the graph one, whose step graph updates (K = 1) or whose ONNX
 * Loop runs K steps at once. Where no fully connected layer takes the row-by-row native sum (the
 * default for layers under OUTER_MIN_ELEMENTS), they agree bit for bit; test/runtime/native-optimizer.test.ts
 * covers that sum, equal to 1e-6.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hasNativeOptimizer } from '../../src/optim/native.js';
import { DEFAULT_OPTIMIZER, type OptimizerConfig } from '../../src/optim/optimizer.js';
import { TrainingSession, type StepBatch, type StepMetrics, type TrainingConfig } from '../../src/train/training-session.js';
import { Rng } from '../../src/util/rng.js';

const skip = hasNativeOptimizer() ? false : 'build/native/optim.node is not built (scripts/build-native)';

function config(update: 'native' | 'graph', opt: Partial<OptimizerConfig>): TrainingConfig {
  return {
    model: 'vgg-a', // dropout in fc6 and fc7: the masks' draws must line up too
    modelOptions: { width: 1 / 16, classes: 5, inputSize: 32, init: 'kaiming' },
    batch: 4,
    optimizer: { ...DEFAULT_OPTIMIZER, ...opt },
    labelSmoothing: 0,
    frozen: ['conv1_1.bias'],
    seed: 5,
    session: { threads: 1 },
    update,
  };
}

function batches(count: number): StepBatch[] {
  const rng = new Rng(8);
  return Array.from({ length: count }, () => ({
    x: Float32Array.from({ length: 4 * 3 * 32 * 32 }, () => rng.normal()),
    // An unreadable image's row (-1) is ignored by the loss and the counts alike.
    labels: Int32Array.from({ length: 4 }, (_, i) => (i === 3 ? -1 : rng.int(5))),
  }));
}

/** Names of the arrays whose bits differ (compared as integers: -0 ≠ 0). */
function differing(a: ReadonlyMap<string, Float32Array>, b: ReadonlyMap<string, Float32Array>): string[] {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  const bits = (v: Float32Array) => new Uint32Array(v.buffer, v.byteOffset, v.length);
  return [...a]
    .filter(([k, v]) => {
      const w = b.get(k);
      return !w || w.length !== v.length || bits(v).some((x, i) => x !== bits(w)[i]);
    })
    .map(([k]) => k);
}

for (const [label, opt] of [
  ['SGD', {}],
  ['AdamW', { kind: 'adamw', weightDecay: 0.01, decayBiases: false }],
] as const) {
  test(`native updater = graph updater, K single steps and one Loop run of K, bit for bit after 3 steps: ${label}`, { skip }, async () => {
    const data = batches(3);
    const lrs = [0.05, 0.02, 0.01];
    const native = await TrainingSession.create(config('native', opt));
    const single = await TrainingSession.create(config('graph', opt));
    const loop = await TrainingSession.create(config('graph', opt));
    try {
      assert.deepEqual([native.updateIn, single.updateIn, loop.updateIn], ['native', 'graph', 'graph']);
      const before = new Map([...native.params].map(([k, v]) => [k, v.slice()] as const));
      const mn = await native.runSteps(data, lrs);
      const ms: StepMetrics[] = [];
      for (let i = 0; i < data.length; i++) ms.push(...(await single.runSteps(data.slice(i, i + 1), lrs.slice(i, i + 1))));
      const ml = await loop.runSteps(data, lrs);
      assert.deepEqual(mn, ms);
      assert.deepEqual(ml, ms);
      assert.ok(
        mn.every((m) => m.n === 3 && Number.isFinite(m.loss)),
        JSON.stringify(mn),
      );
      for (const other of [single, loop]) {
        assert.deepEqual(differing(native.params, other.params), []);
        assert.deepEqual(differing(native.states, other.states), []);
        assert.equal(other.step, 3);
        assert.equal(other.rngState, native.rngState);
      }
      // The steps did move every trainable parameter, and none of the frozen one.
      const moved = differing(before, native.params);
      assert.deepEqual(moved.sort(), [...native.params.keys()].filter((k) => k !== 'conv1_1.bias').sort());
    } finally {
      await Promise.all([native.release(), single.release(), loop.release()]);
    }
  });
}

test("the native updater changes the session's arrays in place; the graph updater replaces them", { skip }, async () => {
  const data = batches(2);
  for (const update of ['native', 'graph'] as const) {
    const s = await TrainingSession.create(config(update, {}));
    const arrays = [...s.params.values(), ...s.states.values()];
    await s.runSteps(data, [0.05, 0.05]);
    const kept = [...s.params.values(), ...s.states.values()].filter((a, i) => a === arrays[i]).length;
    // The graph update keeps only the frozen parameter's array.
    assert.equal(kept, update === 'native' ? arrays.length : 1, update);
    await s.release();
  }
});
