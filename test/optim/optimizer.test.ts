/** The optimizer graphs against reference formulas computed here in float64. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Graph } from '../../src/graph/graph.js';
import { toModel } from '../../src/graph/serialize.js';
import { encodeModel } from '../../src/onnx/proto.js';
import { applyUpdate, DEFAULT_OPTIMIZER, hyperNames, hyperValues, stateSuffixes, type OptimizerConfig } from '../../src/optim/optimizer.js';
import { createSession, tensor } from '../../src/runtime/ort.js';

const W = [0.5, -1.25, 2, 0.1];
const G = [0.3, 0.2, -0.7, 1.5];

/** Runs `steps` updates with a constant gradient through the graph. */
async function run(c: OptimizerConfig, steps: number, lrs: number[], isBias = false): Promise<number[]> {
  const g = new Graph('opt');
  const w = g.input('w', 'float32', [4]);
  const grad = g.input('g', 'float32', [4]);
  const st = stateSuffixes(c).map((s) => g.input(s, 'float32', [4]));
  const hyper = hyperNames(c).map((h) => g.input(h, 'float32', []));
  const up = applyUpdate(c, w, grad, st, hyper, isBias);
  g.output(up.param, 'w_next');
  up.states.forEach((v, i) => g.output(v, `${stateSuffixes(c)[i]}_next`));
  const s = await createSession(encodeModel(toModel(g)), { threads: 1 });
  let wv: Float32Array = Float32Array.from(W);
  let states: Float32Array[] = stateSuffixes(c).map(() => new Float32Array(4));
  for (let t = 1; t <= steps; t++) {
    const feeds: Record<string, ReturnType<typeof tensor>> = {
      w: tensor('float32', wv, [4]),
      g: tensor('float32', Float32Array.from(G), [4]),
    };
    stateSuffixes(c).forEach((n, i) => (feeds[n] = tensor('float32', states[i]!, [4])));
    hyperValues(c, lrs[t - 1]!, t).forEach((v, i) => (feeds[hyperNames(c)[i]!] = tensor('float32', Float32Array.from([v]), [])));
    const out = await s.run(feeds);
    wv = out['w_next']!.data as Float32Array;
    states = stateSuffixes(c).map((n) => out[`${n}_next`]!.data as Float32Array);
  }
  return Array.from(wv);
}

function close(a: number[], b: number[]): void {
  a.forEach((v, i) => assert.ok(Math.abs(v - b[i]!) < 1e-5, `${a} vs ${b}`));
}

test('SGD, PyTorch convention: v = μv + g + λw; w −= lr·v (changing rate)', async () => {
  const c = { ...DEFAULT_OPTIMIZER, momentum: 0.9, weightDecay: 0.1 };
  const lrs = [0.1, 0.05, 0.02];
  const w = [...W];
  const v = [0, 0, 0, 0];
  for (const lr of lrs) {
    for (let i = 0; i < 4; i++) {
      v[i] = 0.9 * v[i]! + G[i]! + 0.1 * w[i]!;
      w[i] = w[i]! - lr * v[i]!;
    }
  }
  close(await run(c, 3, lrs), w);
});

test('SGD, Caffe convention: v = μv + lr·(g + λw); w −= v', async () => {
  const c: OptimizerConfig = { ...DEFAULT_OPTIMIZER, momentum: 0.9, weightDecay: 0.1, convention: 'caffe' };
  const lrs = [0.1, 0.05];
  const w = [...W];
  const v = [0, 0, 0, 0];
  for (const lr of lrs) {
    for (let i = 0; i < 4; i++) {
      v[i] = 0.9 * v[i]! + lr * (G[i]! + 0.1 * w[i]!);
      w[i] = w[i]! - v[i]!;
    }
  }
  close(await run(c, 2, lrs), w);
});

test('Nesterov: w −= lr·(g + λw + μv)', async () => {
  const c: OptimizerConfig = { ...DEFAULT_OPTIMIZER, kind: 'nesterov', momentum: 0.9, weightDecay: 0.01 };
  const w = [...W];
  const v = [0, 0, 0, 0];
  for (let t = 0; t < 2; t++) {
    for (let i = 0; i < 4; i++) {
      const g = G[i]! + 0.01 * w[i]!;
      v[i] = 0.9 * v[i]! + g;
      w[i] = w[i]! - 0.1 * (g + 0.9 * v[i]!);
    }
  }
  close(await run(c, 2, [0.1, 0.1]), w);
});

test('no momentum, and biases exempt from decay when asked', async () => {
  close(
    await run({ ...DEFAULT_OPTIMIZER, momentum: 0, weightDecay: 0.5 }, 1, [0.1]),
    W.map((w, i) => w - 0.1 * (G[i]! + 0.5 * w)),
  );
  close(
    await run({ ...DEFAULT_OPTIMIZER, momentum: 0, weightDecay: 0.5, decayBiases: false }, 1, [0.1], true),
    W.map((w, i) => w - 0.1 * G[i]!),
  );
});

test('AdamW with bias correction and decoupled decay', async () => {
  const c: OptimizerConfig = { ...DEFAULT_OPTIMIZER, kind: 'adamw', weightDecay: 0.01 };
  const w = [...W];
  const m = [0, 0, 0, 0];
  const v = [0, 0, 0, 0];
  for (let t = 1; t <= 3; t++) {
    for (let i = 0; i < 4; i++) {
      m[i] = 0.9 * m[i]! + 0.1 * G[i]!;
      v[i] = 0.999 * v[i]! + 0.001 * G[i]! ** 2;
      const mh = m[i]! / (1 - 0.9 ** t);
      const vh = v[i]! / (1 - 0.999 ** t);
      w[i] = w[i]! - 0.01 * (mh / (Math.sqrt(vh) + 1e-8) + 0.01 * w[i]!);
    }
  }
  close(await run(c, 3, [0.01, 0.01, 0.01]), w);
});
