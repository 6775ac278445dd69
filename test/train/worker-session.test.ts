/** The session on a worker thread: same numbers as in-process, and the main thread keeps running during a step. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_OPTIMIZER } from '../../src/optim/optimizer.js';
import type { StepBatch, TrainingConfig } from '../../src/train/training-session.js';
import { LocalSession, METHOD_NAMES, SESSION_METHODS, WorkerSession, type SessionHandle } from '../../src/train/worker-session.js';
import { Rng } from '../../src/util/rng.js';

function config(width: number, size: number, batch: number): TrainingConfig {
  return {
    model: 'vgg-a',
    modelOptions: { width, inputSize: size, classes: 4, init: 'kaiming' },
    batch,
    optimizer: DEFAULT_OPTIMIZER,
    labelSmoothing: 0,
    frozen: [],
    seed: 3,
    session: { threads: 1 },
  };
}

function batches(c: TrainingConfig, k: number): StepBatch[] {
  const s = c.modelOptions.inputSize ?? 32;
  const rng = new Rng(9);
  return Array.from({ length: k }, () => ({
    x: Float32Array.from({ length: c.batch * 3 * s * s }, () => rng.normal()),
    labels: Int32Array.from({ length: c.batch }, () => rng.int(4)),
  }));
}

test('a worker session computes what an in-process one does, bit for bit', async () => {
  const c = config(1 / 16, 32, 4);
  const local = await LocalSession.create(c);
  const worker = await WorkerSession.create(c);
  try {
    const a = await local.runSteps(batches(c, 3), [0.01, 0.01, 0.01]);
    const b = await worker.runSteps(batches(c, 3), [0.01, 0.01, 0.01]);
    assert.deepEqual(b, a);
    const sa = await local.snapshot();
    const sb = await worker.snapshot();
    assert.equal(sb.step, 3);
    assert.equal(sb.rng, sa.rng);
    for (const [name, p] of sa.params) assert.deepEqual(sb.params.get(name), p, name);
    const ea = await local.runEvalStep(batches(c, 1)[0]!);
    const eb = await worker.runEvalStep(batches(c, 1)[0]!);
    assert.deepEqual(eb.logits, ea.logits);
    const onnx = await worker.exportModel(18);
    assert.ok(onnx.byteLength > 1000);
  } finally {
    await local.release();
    await worker.release();
  }
});

test('the batch buffers are transferred, and the event loop ticks during a long step', async () => {
  const c = config(1 / 4, 64, 16);
  const worker = await WorkerSession.create(c);
  try {
    await worker.runSteps(batches(c, 1), [0.01]); // compiles the session
    const bs = batches(c, 2);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const t0 = Date.now();
    await worker.runSteps(bs, [0.01, 0.01]);
    const ms = Date.now() - t0;
    clearInterval(timer);
    assert.equal(bs[0]!.x.byteLength, 0, 'moved to the worker, not copied');
    // A blocked loop would tick at most once; allow for a slow machine's timer granularity.
    assert.ok(ms > 40, `the step took ${ms} ms: too short to tell`);
    assert.ok(ticks >= Math.floor(ms / 5 / 4), `${ticks} ticks in ${ms} ms`);
  } finally {
    await worker.release();
  }
});

test('errors in the worker come back as rejections; a usage mistake stays one', async () => {
  await assert.rejects(WorkerSession.create({ ...config(1 / 16, 32, 2), frozen: ['nope.weight'] }), /cannot freeze nope\.weight/);
});

test('the worker client and LocalSession are generated from the method table: each method there, each giving the in-process answer', async () => {
  const c = config(1 / 16, 32, 4);
  assert.deepEqual(METHOD_NAMES, Object.keys(SESSION_METHODS));
  const local = await LocalSession.create(c);
  const worker = await WorkerSession.create(c);
  try {
    for (const s of [local, worker])
      for (const name of [...METHOD_NAMES, 'release'])
        assert.equal(typeof (s as unknown as Record<string, unknown>)[name], 'function', name);
    // Every table method, called on both: adding one to the table without a call here fails the last check.
    const called = new Set<string>();
    const both = async <T>(name: keyof SessionHandle, f: (s: SessionHandle) => Promise<T>): Promise<void> => {
      called.add(name);
      assert.deepEqual(await f(worker), await f(local), name);
    };
    await both('runSteps', (s) => s.runSteps(batches(c, 2), [0.02, 0.01]));
    await both('runTrainStep', (s) => s.runTrainStep(batches(c, 1)[0]!));
    await both('runOptimizerStep', (s) => s.runOptimizerStep(0.03));
    await both('runEvalStep', (s) => s.runEvalStep(batches(c, 1)[0]!));
    await both('runInference', (s) => s.runInference(batches(c, 1)[0]!.x, 4));
    await both('snapshot', (s) => s.snapshot());
    await both('exportModel', async (s) => (await s.exportModel(17)).byteLength);
    assert.deepEqual([...called].sort(), [...METHOD_NAMES].sort());
    // A snapshot is the caller's own: later steps leave it as it was.
    const snap = await local.snapshot();
    const w = snap.params.get('fc8.weight')!.slice();
    await local.runSteps(batches(c, 1), [0.05]);
    assert.deepEqual(snap.params.get('fc8.weight'), w);
  } finally {
    await local.release();
    await worker.release();
  }
});
