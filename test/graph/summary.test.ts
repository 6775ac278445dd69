/** The per-layer analysis on small hand-made graphs, where every number can be checked by hand. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Graph, type Value } from '../../src/graph/graph.js';
import { conv2d, gap, linear, maxPool2d } from '../../src/nn/layers.js';
import { summarize, topLevel } from '../../src/graph/summary.js';
import { concat } from '../../src/ops/shape.js';

const init = { kind: 'constant', value: 0 } as const;

function graph(shape: readonly number[], body: (x: Value) => Value): Graph {
  const g = new Graph('t');
  const x = g.input('input', 'float32', [1, ...shape]);
  g.output(body(x), 'y');
  return g;
}

test('stride and dilation: rf += (k−1)·d·jump, jump ·= s', () => {
  const g = graph([3, 64, 64], (x) => {
    let h = conv2d(x, 'a', { out: 4, k: 5, stride: 2, pad: 2, init }); // rf 5, jump 2
    h = conv2d(h, 'b', { out: 4, k: 3, dilation: 2, pad: 2, init }); //  5 + 2·2·2 = 13, jump 2
    return maxPool2d(h, 'c', 2, 2); //                                  13 + 1·2 = 15, jump 4
  });
  const s = summarize(g);
  assert.deepEqual(
    s.layers.map((l) => [l.name, l.rf, l.jump, l.kernel, l.stride]),
    [
      ['a', 5, 2, 5, 2],
      ['b', 13, 2, 3, 1],
      ['c', 15, 4, 2, 2],
    ],
  );
  assert.deepEqual(s.input, [3, 64, 64]);
  assert.deepEqual(s.layers.at(-1)?.output, [4, 16, 16]);
});

test('params, MACs and ops per layer; totals', () => {
  const g = graph([2, 8, 8], (x) => linear(conv2d(x, 'conv', { out: 3, k: 3, pad: 1, init }), 'fc', { out: 5, init }));
  const s = summarize(g);
  const [conv, fc] = s.layers;
  assert.deepEqual(conv?.ops, ['Conv', 'Relu']);
  assert.equal(conv?.params, 3 * 2 * 9 + 3);
  assert.equal(conv?.macs, 3 * 8 * 8 * 2 * 9);
  assert.deepEqual(fc?.ops, ['Flatten', 'Gemm']);
  assert.equal(fc?.params, 5 * 192 + 5);
  assert.equal(fc?.macs, 5 * 192);
  assert.equal(s.params, g.paramCount());
  assert.equal(s.macs, g.macs());
  // Fully connected: the whole 8 px input, more than conv's 3.
  assert.equal(fc?.rf, 8);
  assert.equal(fc?.kernel, undefined);
});

test('blocks: one row per top-level scope, or per sub-layer with detail; concat takes the widest field', () => {
  const g = graph([4, 16, 16], (x) =>
    x.graph.scope('block', () => concat([conv2d(x, '1x1', { out: 2, k: 1, init }), conv2d(x, '5x5', { out: 3, k: 5, pad: 2, init })], 1)),
  );
  const top = summarize(g);
  assert.deepEqual(
    top.layers.map((l) => [l.name, l.output, l.rf, l.kernel]),
    [['block', [5, 16, 16], 5, undefined]],
  );
  const detail = summarize(g, { detail: true });
  assert.deepEqual(
    detail.layers.map((l) => [l.name, l.rf, l.params]),
    [
      ['block/1x1', 1, 10],
      ['block/5x5', 5, 303],
      ['block', 5, 0],
    ],
  );
  assert.equal(detail.params, top.params);
  assert.equal(topLevel('inception_3a/3x3_reduce'), 'inception_3a');
  assert.equal(topLevel('fc6'), 'fc6');
});

test('global average pooling covers the image; only nodes that feed the outputs count', () => {
  const g = new Graph('t');
  const x = g.input('input', 'float32', [1, 3, 32, 32]);
  const h = conv2d(x, 'conv', { out: 4, k: 3, init });
  conv2d(h, 'unused', { out: 4, k: 3, init }); // dead: feeds nothing
  const y = g.scope('gap', () => gap(h, 'pool'));
  const s = summarize(g, { outputs: [y] });
  assert.deepEqual(
    s.layers.map((l) => [l.name, l.output, l.rf, l.jump]),
    [
      ['conv', [4, 30, 30], 3, 1],
      ['gap', [4, 1, 1], 32, 1],
    ],
  );
  assert.equal(s.params, 4 * 3 * 9 + 4);
  assert.equal(g.paramCount(), s.params + 4 * 4 * 9 + 4);
});
