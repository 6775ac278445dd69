/**
 * Known answers for the visualisations, on tiny networks with hand-set weights:
 * deconvnet / saliency / guided projections computed by hand, the ReLU rule as the only difference,
 * occlusion peaking over the one object that decides the class, filter statistics.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Graph, type Value } from '../../src/graph/graph.js';
import { conv2d, gap, linear, maxPool2d } from '../../src/nn/layers.js';
import { buildModel } from '../../src/zoo/index.js';
import { MODES, projectionGraph, type Mode } from '../../src/viz/backward.js';
import { bandEnergy, filterStats } from '../../src/viz/filters.js';
import { cpuSession, findLayer, type Network } from '../../src/viz/network.js';
import { occlusion, occluderStarts } from '../../src/viz/occlusion.js';
import { projectImage } from '../../src/viz/project.js';
import { liveNodes } from '../../src/graph/serialize.js';

const zero = { kind: 'constant', value: 0 } as const;

/**
 * x (1×2×2) → conv1: three 1×1 filters [1, −1, 2], ReLU → conv2: one 1×1 filter [2, w12, w22], ReLU
 * → pool1: 2×2 max → fc: logits [p, −p].
 */
function handNet(w2: readonly [number, number, number]): Network {
  const weights = new Map<string, Float32Array>([
    ['conv1.weight', Float32Array.from([1, -1, 2])],
    ['conv1.bias', new Float32Array(3)],
    ['conv2.weight', Float32Array.from(w2)],
    ['conv2.bias', new Float32Array(1)],
    ['fc.weight', Float32Array.from([1, -1])],
    ['fc.bias', new Float32Array(2)],
  ]);
  return {
    name: 'hand',
    build(batch) {
      const g = new Graph('hand');
      const input = g.input('input', 'float32', [batch, 1, 2, 2]);
      let h: Value = conv2d(input, 'conv1', { out: 3, k: 1, init: zero });
      h = conv2d(h, 'conv2', { out: 1, k: 1, init: zero });
      h = maxPool2d(h, 'pool1', 2, 2);
      const logits = linear(h, 'fc', { out: 2, init: zero });
      return { graph: g, input, logits };
    },
    weights,
    view: 'center',
    channels: 1,
    inputSize: 2,
    numClasses: 2,
    classes: ['a', 'b'],
    threads: 1,
    session: (m) => cpuSession(m, 1),
  };
}

// At pixel (1,1), x = 2: conv1 = relu([2, −2, 4]) = [2, 0, 4]; conv2 = relu(2·2 + 0 − 0.5·4) = 2, the
// strongest of the four pixels (the others give 1, 1.5 and 0.5). Seeding conv2 there with 1, the
// signal into conv1's ReLU is [2, 3, −0.5] against outputs [2, 0, 4]:
//   gradient  keeps open units:            [2, 0, −0.5] → dx = 2·1 + 0·(−1) − 0.5·2 = 1
//   deconvnet keeps positive signals:      [2, 3, 0]    → dx = 2 − 3 = −1
//   guided    keeps both conditions:       [2, 0, 0]    → dx = 2
// 1×1 convolutions: every other pixel gets 0.
const X = Float32Array.from([1, -0.5, 0.5, 2]);
const NET = handNet([2, 3, -0.5]);

async function project(net: Network, mode: Mode, layer: string, channel: number): Promise<number[]> {
  const { result, projections } = await projectImage(net, X, { mode, layer, channels: [channel], count: 1, batch: 1 });
  if (layer !== 'logits') assert.deepEqual(result.units[0]?.position, [1, 1], 'the strongest position');
  return Array.from(projections[0]!);
}

describe('projections on a hand-set network', () => {
  test('deconvnet, saliency and guided projections of conv2 equal the hand-computed values', async () => {
    assert.deepEqual(await project(NET, 'gradient', 'conv2', 0), [0, 0, 0, 1]);
    assert.deepEqual(await project(NET, 'deconvnet', 'conv2', 0), [0, 0, 0, -1]);
    assert.deepEqual(await project(NET, 'guided', 'conv2', 0), [0, 0, 0, 2]);
  });

  test('through max-unpooling with the recorded switch and the fc layer, per class', async () => {
    // Class a (fc weight +1): the same signal as seeding conv2, placed by pool1's switch at (1,1).
    assert.deepEqual(await project(NET, 'gradient', 'logits', 0), [0, 0, 0, 1]);
    assert.deepEqual(await project(NET, 'deconvnet', 'logits', 0), [0, 0, 0, -1]);
    // Class b (fc weight −1): conv2's ReLU gets −1 with its output open: the gradient passes it
    // ([−2, −3, 0.5] → open units [−2, 0, 0.5] → dx = −2 + 1 = −1); deconvnet and guided rectify it to 0.
    assert.deepEqual(await project(NET, 'gradient', 'logits', 1), [0, 0, 0, -1]);
    assert.deepEqual(await project(NET, 'deconvnet', 'logits', 1), [0, 0, 0, 0]);
    assert.deepEqual(await project(NET, 'guided', 'logits', 1), [0, 0, 0, 0]);
  });

  test('guided equals saliency where no open ReLU receives a negative signal, and differs where one does', async () => {
    // With conv2's third weight +0.5 the signal into conv1's ReLU is [2, 3, 0.5]: no negative part.
    const net = handNet([2, 3, 0.5]);
    // dx = 2·1 + 0.5·2 = 3 for both.
    assert.deepEqual(await project(net, 'gradient', 'conv2', 0), [0, 0, 0, 3]);
    assert.deepEqual(await project(net, 'guided', 'conv2', 0), [0, 0, 0, 3]);
    // With −0.5 the open third unit gets −0.5: exactly the term guided drops (1 vs 2 above).
    assert.notDeepEqual(await project(NET, 'gradient', 'conv2', 0), await project(NET, 'guided', 'conv2', 0));
  });

  test('the three backward graphs differ only in the nodes of the ReLU rule', () => {
    const net: Network = {
      ...NET,
      build: (b) => {
        const m = buildModel('vgg-a', { width: 1 / 16, inputSize: 32, classes: 4 }, { batch: b });
        return { graph: m.graph, input: m.input, logits: m.logits };
      },
    };
    const counts = (mode: Mode) => {
      const pg = projectionGraph(net, 'conv4_1', mode, 1);
      const c = new Map<string, number>();
      // Backward nodes only: deconvnet reads no forward mask, so it may need fewer forward nodes.
      for (const n of liveNodes(pg.ng.graph, [pg.projection])) if (n.scope.startsWith('grad/')) c.set(n.op, (c.get(n.op) ?? 0) + 1);
      return c;
    };
    const [g, d, gb] = MODES.map(counts) as [Map<string, number>, Map<string, number>, Map<string, number>];
    const relus = 5; // conv1_1, conv2_1, conv3_1, conv3_2 and conv4_1 each end in a ReLU
    // The gradient's ReLU rule is dy · Cast(y > 0): one Greater, Cast and Mul per ReLU.
    const rule = ['Relu', 'Greater', 'Cast', 'Mul'];
    const others = (m: Map<string, number>) => [...m].filter(([op]) => !rule.includes(op));
    assert.deepEqual(others(d), others(g));
    assert.deepEqual(others(gb), others(g));
    assert.equal(g.get('Cast'), relus);
    assert.equal(d.get('Relu'), (g.get('Relu') ?? 0) + relus, 'deconvnet: one Relu on the signal per ReLU');
    for (const op of ['Greater', 'Cast', 'Mul'])
      assert.equal(d.get(op) ?? 0, (g.get(op) ?? 0) - relus, `deconvnet: no forward mask (${op})`);
    assert.equal(gb.get('Relu'), (g.get('Relu') ?? 0) + relus, 'guided: the signal rectified …');
    for (const op of ['Greater', 'Cast', 'Mul']) assert.equal(gb.get(op), g.get(op), `… and masked like the gradient (${op})`);
  });

  test('a wrong layer name is a usage error listing the layers', () => {
    assert.throws(
      () => findLayer(NET.build(1), 'conv9', 'hand'),
      (e: Error) => e.name === 'UsageError' && /conv1, conv2, pool1, fc/.test(e.message) && /"conv9"/.test(e.message),
    );
  });
});

describe('occlusion', () => {
  test('the probability of the class falls most where the deciding object is', async () => {
    // A red detector: 1×1 conv with weights [1, −0.5, −0.5] + ReLU, global average, logits ±5·redness.
    const S = 16;
    const net: Network = {
      name: 'red',
      view: 'center',
      build(batch) {
        const g = new Graph('red');
        const input = g.input('input', 'float32', [batch, 3, S, S]);
        const h = gap(conv2d(input, 'conv1', { out: 1, k: 1, init: zero }), 'gap');
        return { graph: g, input, logits: linear(h, 'fc', { out: 2, init: zero }) };
      },
      weights: new Map([
        ['conv1.weight', Float32Array.from([1, -0.5, -0.5])],
        ['conv1.bias', new Float32Array(1)],
        ['fc.weight', Float32Array.from([5, -5])],
        ['fc.bias', Float32Array.from([-0.5, 0.5])],
      ]),
      channels: 3,
      inputSize: S,
      numClasses: 2,
      classes: ['red', 'none'],
      threads: 1,
      session: (m) => cpuSession(m, 1),
    };
    // Grey (0 after normalisation) with one red 4×4 square at rows 4–7, columns 10–13.
    const x = new Float32Array(3 * S * S);
    for (let y = 4; y < 8; y++)
      for (let xx = 10; xx < 14; xx++) {
        x[y * S + xx] = 2;
        x[S * S + y * S + xx] = -1;
        x[2 * S * S + y * S + xx] = -1;
      }
    const r = await occlusion(net, x, { size: 4, stride: 2, target: 0, batch: 8 });
    assert.deepEqual(r.starts, occluderStarts(S, 4, 2));
    assert.deepEqual(r.starts, [0, 2, 4, 6, 8, 10, 12]);
    assert.equal(r.predicted, 0);
    assert.ok(r.clean > 0.5);
    assert.deepEqual({ top: r.peak.top, left: r.peak.left }, { top: 4, left: 10 });
    // Covering the whole square leaves no red: logits [−0.5, 0.5].
    assert.ok(Math.abs(r.peak.probability - 1 / (1 + Math.exp(1))) < 1e-5);
    // The strongest feature map (the only one) also has its lowest total activation there: 0.
    assert.equal(r.layer, 'conv1');
    const n = r.starts.length;
    const i = r.starts.indexOf(4) * n + r.starts.indexOf(10);
    assert.equal(r.activation[i], 0);
    assert.equal(Math.min(...r.activation), 0);
    // Far from the square the class keeps its clean probability.
    assert.ok(Math.abs(r.probability[0]! - r.clean) < 1e-6);
  });
});

describe('filter statistics', () => {
  test('frequency bands: a constant kernel is all low, a checkerboard all high', () => {
    const [l, m, h] = bandEnergy(new Array(16).fill(1), 4, 4);
    assert.ok(l > 0 && m < 1e-20 && h < 1e-20);
    const checker = Array.from({ length: 16 }, (_, i) => (((i % 4) + Math.floor(i / 4)) % 2 ? 1 : -1));
    const [l2, m2, h2] = bandEnergy(checker, 4, 4);
    assert.ok(l2 < 1e-9 && m2 < 1e-9 && h2 > 0);
    // Parseval: the energies sum to k·k·Σw².
    assert.ok(Math.abs(h2 - 16 * 16) < 1e-9);
  });

  test('norms, dead filters relative to the median, band shares', () => {
    // Three 1-channel 2×2 filters: norms 2, 4 and 0.1 (median 2): the last is dead at 0.1 × median.
    const w = Float32Array.from([1, 1, 1, 1, 2, -2, -2, 2, 0.05, 0.05, 0.05, 0.05]);
    const s = filterStats(w, [3, 1, 2, 2], 0.1);
    assert.deepEqual(
      s.filters.map((f) => +f.norm.toFixed(6)),
      [2, 4, 0.1],
    );
    assert.equal(s.medianNorm, 2);
    assert.deepEqual(
      s.filters.map((f) => f.dead),
      [false, false, true],
    );
    assert.equal(s.deadFraction, 1 / 3);
    assert.equal(s.filters[0]!.low, 1);
    assert.equal(s.filters[1]!.high, 1);
  });
});
