import assert from 'node:assert/strict';
import { test } from 'node:test';
import sharp from 'sharp';
import {
  encodePngSync,
  gridRaster,
  heatOverlay,
  heatOverlayRaster,
  imageGrid,
  jet,
  type Raster,
  type Tile,
  toPng,
  upsampleBilinear,
} from '../../src/plot/image.js';

async function decode(png: Buffer): Promise<{ data: Buffer; width: number; height: number; channels: number }> {
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

function pixel(img: { data: Uint8Array; width: number; channels?: number }, x: number, y: number): number[] {
  const ch = img.channels ?? 3;
  const o = (y * img.width + x) * ch;
  return [...img.data.subarray(o, o + 3)];
}

const view = (r: Raster): { data: Uint8Array; width: number } => ({ data: r.rgb, width: r.width });

const constant = (v: number, h = 2, w = 2): Tile => ({ channels: 1, height: h, width: w, data: new Float32Array(h * w).fill(v) });

test('grid layout: positions, padding and nearest upsampling', async () => {
  const tiles = [constant(0), constant(10), constant(5)];
  const { png, width, height } = await imageGrid(tiles, { normalize: 'global', cols: 2, pad: 1, scale: 2, background: 200 });
  assert.equal(width, 2 * 4 + 3);
  assert.equal(height, 2 * 4 + 3);
  const img = await decode(png);
  assert.equal(img.width, 11);
  assert.equal(img.height, 11);
  assert.equal(img.channels, 3);
  // Tile 0 (the global min) is black at [1..4]×[1..4]; tile 1 (the max) white at x 6..9; tile 2 grey below.
  for (const [x, y] of [
    [1, 1],
    [4, 4],
  ] as const)
    assert.deepEqual(pixel(img, x, y), [0, 0, 0]);
  for (const [x, y] of [
    [6, 1],
    [9, 4],
  ] as const)
    assert.deepEqual(pixel(img, x, y), [255, 255, 255]);
  assert.deepEqual(pixel(img, 1, 6), [128, 128, 128]);
  // Padding between and around tiles, and the empty fourth cell.
  for (const [x, y] of [
    [0, 0],
    [5, 2],
    [2, 5],
    [10, 10],
    [7, 7],
  ] as const)
    assert.deepEqual(pixel(img, x, y), [200, 200, 200]);
});

test('per-tile normalisation stretches each tile to black..white', () => {
  // Left column at the tile's min, right column at its max; magnitudes differ between tiles.
  const a: Tile = { channels: 1, height: 2, width: 2, data: Float32Array.from([-3, 7, -3, 7]) };
  const b: Tile = { channels: 1, height: 2, width: 2, data: Float32Array.from([1, 3, 2, 3]) };
  const r = gridRaster([a, b, constant(4)], { normalize: 'per-tile', cols: 3, pad: 0 });
  assert.equal(r.width, 6);
  assert.deepEqual(pixel(view(r), 0, 0), [0, 0, 0]);
  assert.deepEqual(pixel(view(r), 1, 0), [255, 255, 255]);
  assert.deepEqual(pixel(view(r), 2, 0), [0, 0, 0]);
  assert.deepEqual(pixel(view(r), 3, 0), [255, 255, 255]);
  assert.deepEqual(pixel(view(r), 2, 1), [128, 128, 128]);
  // A constant tile has no contrast: mid-grey.
  assert.deepEqual(pixel(view(r), 4, 0), [128, 128, 128]);
});

test('planar RGB tiles, "none" clamps to [0, 1], NaN is black, infinities do not flatten', () => {
  const rgb: Tile = { channels: 3, height: 1, width: 2, data: Float32Array.from([1, 0.5, 0, 2, 0, -1]) };
  const r = gridRaster([rgb], { normalize: 'none', pad: 0 });
  assert.deepEqual(pixel(view(r), 0, 0), [255, 0, 0]);
  assert.deepEqual(pixel(view(r), 1, 0), [128, 255, 0]);
  const odd: Tile = { channels: 1, height: 1, width: 4, data: Float32Array.from([NaN, 0, 1, Infinity]) };
  const o = gridRaster([odd], { normalize: 'per-tile', pad: 0 });
  assert.deepEqual(
    [0, 1, 2, 3].map((x) => pixel(view(o), x, 0)[0]),
    [0, 0, 255, 255],
  );
});

test('tiles of different sizes share a cell of the largest size; bad input is refused', () => {
  const r = gridRaster([constant(1, 3, 2), constant(1, 1, 4)], { normalize: 'none', pad: 1 });
  assert.equal(r.width, 2 * 4 + 3);
  assert.equal(r.height, 3 + 2);
  assert.throws(() => gridRaster([], { normalize: 'none' }), /Expected at least one tile/);
  assert.throws(
    () => gridRaster([{ channels: 3, height: 2, width: 2, data: new Float32Array(4) }], { normalize: 'none' }),
    /Expected 12 values \(3×2×2\) for tiles\[0\]\.data but received 4/,
  );
  assert.throws(() => gridRaster([constant(0)], { normalize: 'none', scale: 1.5 }), /for scale but received 1.5/);
});

test('jet runs blue → cyan → yellow → red', () => {
  assert.deepEqual(jet(0), [0, 0, 128]);
  assert.deepEqual(jet(0.5), [128, 255, 128]);
  assert.deepEqual(jet(1), [128, 0, 0]);
  assert.deepEqual(jet(NaN), jet(0));
  assert.deepEqual(jet(7), jet(1));
});

test('bilinear upsampling aligns pixel centres', () => {
  assert.deepEqual([...upsampleBilinear(Float32Array.from([0, 1]), 2, 1, 4, 1)], [0, 0.25, 0.75, 1]);
  const same = Float32Array.from([1, 2, 3, 4]);
  assert.deepEqual([...upsampleBilinear(same, 2, 2, 2, 2)], [...same]);
});

test('heat overlay: alpha blends the jet colours over the image', async () => {
  const w = 4;
  const h = 2;
  const image = new Uint8Array(w * h * 3).fill(100);
  const heat = Float32Array.from([5, 9]); // 2×1, normalised to 0 and 1
  const full = heatOverlayRaster(image, w, h, heat, 2, 1, 1);
  assert.deepEqual(pixel({ data: full, width: w }, 0, 0), jet(0));
  assert.deepEqual(pixel({ data: full, width: w }, 3, 1), jet(1));
  assert.deepEqual(pixel({ data: full, width: w }, 1, 0), jet(0.25));
  assert.deepEqual(heatOverlayRaster(image, w, h, heat, 2, 1, 0), image);
  const half = await decode(await heatOverlay(image, w, h, heat, 2, 1, 0.5));
  assert.deepEqual(pixel(half, 3, 0), [114, 50, 50]); // (100 + 128) / 2, 100 / 2, 100 / 2
  assert.throws(() => heatOverlayRaster(image, w, h, heat, 2, 1, 1.5), /for alpha but received 1.5/);
  assert.throws(() => heatOverlayRaster(image, w, h, heat, 3, 1, 0.5), /Expected 3 values \(1×3\) for heat but received 2/);
});

test('toPng and encodePngSync decode to the same pixels', async () => {
  const w = 5;
  const h = 3;
  const rgb = Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 37) % 256);
  for (const png of [await toPng(rgb, w, h), encodePngSync(rgb, w, h)]) {
    const img = await decode(png);
    assert.equal(img.width, w);
    assert.equal(img.height, h);
    assert.deepEqual([...img.data], [...rgb]);
  }
  // A view into a larger buffer is encoded from its own bytes only.
  const big = new Uint8Array(rgb.length + 6);
  big.set(rgb, 3);
  assert.deepEqual([...(await decode(await toPng(big.subarray(3, 3 + rgb.length), w, h))).data], [...rgb]);
  await assert.rejects(toPng(rgb, w, h + 1), /Expected 60 bytes/);
});
