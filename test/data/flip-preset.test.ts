// The 'flip' training preset: the whole image resized, mirrored for some samples and not others.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Loader, PixelDataset, Transforms } from '../../src/data/index.js';

test("'flip' keeps the whole image and mirrors about half of the samples", async () => {
  const W = 8;
  const n = 64;
  // Every image is the same left-to-right ramp: a flip reverses it, nothing else changes it.
  const one = new Uint8Array(W * W * 3);
  for (let y = 0; y < W; y++) for (let x = 0; x < W; x++) one.fill(x * 30, (y * W + x) * 3, (y * W + x) * 3 + 3);
  const data = new Uint8Array(n * one.length);
  for (let i = 0; i < n; i++) data.set(one, i * one.length);
  const ds = new PixelDataset({
    data,
    width: W,
    height: W,
    channels: 3,
    rows: Int32Array.from({ length: n }, (_, i) => i),
    labels: new Int32Array(n),
    name: 'ramp',
  });
  const tf = Transforms.train('flip', { size: W, channels: 3, mean: [0, 0, 0], std: [1, 1, 1] });
  const loader = new Loader(ds, tf, { batchSize: n, shuffle: false, seed: 5, dropLast: false, channels: 3 });
  let flipped = 0;
  for await (const b of loader.epoch(0)) {
    for (let i = 0; i < b.n; i++) {
      const row = Array.from(b.x.subarray(i * 3 * W * W, i * 3 * W * W + W), (v) => Math.round(v * 255));
      const ramp = Array.from({ length: W }, (_, x) => x * 30);
      if (row[0] === ramp[W - 1]) {
        flipped++;
        assert.deepEqual(row, [...ramp].reverse());
      } else {
        assert.deepEqual(row, ramp);
      }
    }
  }
  assert.ok(flipped > n / 4 && flipped < (3 * n) / 4, `${flipped} of ${n} flipped`);
});
