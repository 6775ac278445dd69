import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../../src/util/rng.js';

test('fillMask draws exactly what next() per element draws, and leaves the stream where next() would', () => {
  for (const rate of [0, 0.25, 0.5, 0.9]) {
    const a = new Rng(42);
    const b = new Rng(42);
    const keep = 1 / (1 - rate);
    const m = a.fillMask(new Float32Array(10_000), rate, keep);
    const ref = Float32Array.from({ length: 10_000 }, () => (b.next() >= rate ? keep : 0));
    assert.deepEqual(m, ref);
    assert.equal(a.state, b.state);
    const kept = m.filter((v) => v !== 0).length / m.length;
    assert.ok(Math.abs(kept - (1 - rate)) < 0.02, `rate ${rate}: kept ${kept}`);
  }
});

test('the stream stays the one saved checkpoints continue (the first outputs for seed 0)', () => {
  const r = new Rng(0);
  assert.deepEqual([r.nextUint32(), r.nextUint32(), r.nextUint32()], [1144304738, 1416247, 958946056]);
});
