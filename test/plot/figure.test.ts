/** The one layout of the visualize pictures: title, enlarged tiles, labels and colour bars, and nothing over a tile. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import sharp from 'sharp';
import { figure, MIN_TILE } from '../../src/plot/figure.js';
import { gridRaster, pngText, type Tile } from '../../src/plot/image.js';

const ramp = (n: number, channels: 1 | 3, k: number): Tile => ({
  data: Float32Array.from({ length: channels * n * n }, (_, i) => ((i * (k + 3)) % 17) / 16),
  channels,
  height: n,
  width: n,
});

test('a figure: title in pixels and in the PNG, tiles enlarged to the minimum and left untouched by the words', async () => {
  const tiles = [ramp(3, 3, 0), ramp(3, 3, 1), ramp(3, 3, 2), ramp(3, 3, 3), ramp(3, 3, 4)];
  const title = 'net · conv1 · filters · 5×3×3×3 — façade';
  const spec = {
    title,
    subtitle: 'each tile stretched to its own range',
    tiles,
    labels: ['0', '1', 'a label far longer than its tile is wide', '3', '4'],
    cols: 3,
    normalize: 'per-tile' as const,
    bars: [{ label: 'weight', min: -1.5, max: 2.25, colors: 'jet' as const }],
  };
  const { png, layout } = await figure(spec);
  const text = pngText(png);
  assert.equal(text['Title'], title);
  assert.deepEqual(JSON.parse(text['Layout']!), layout);
  assert.equal(text['Description'], spec.subtitle);
  assert.ok(layout.cell.width >= MIN_TILE && layout.cell.height >= MIN_TILE);
  assert.equal(layout.scale, Math.ceil(MIN_TILE / 3));

  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual([info.width, info.height, info.channels], [layout.width, layout.height, 3]);
  const at = (x: number, y: number): number[] => [...data.subarray((y * info.width + x) * 3, (y * info.width + x) * 3 + 3)];
  const dark = (x0: number, x1: number, y0: number, y1: number): number => {
    let n = 0;
    for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) if (at(x, y).reduce((a, b) => a + b, 0) < 3 * 128) n++;
    return n;
  };
  assert.ok(dark(0, info.width, 0, layout.titleHeight) > 200, 'the title strip is drawn');

  // The grid drawn alone, pixel for pixel: only a label's own strip under its own tile differs
  // (a long label is squeezed, never spilt into the gap beside it).
  const g = gridRaster(tiles, { normalize: 'per-tile', cols: 3, pad: 2, scale: layout.scale, below: layout.grid.labelHeight });
  const { left, top } = layout.grid;
  const rowH = layout.cell.height + g.below + g.pad;
  const colW = layout.cell.width + g.pad;
  const inLabel = (x: number, y: number): boolean =>
    (y - g.pad) % rowH >= layout.cell.height && (y - g.pad) % rowH < layout.cell.height + g.below && (x - g.pad) % colW < layout.cell.width;
  for (let y = 0; y < g.height; y++)
    for (let x = 0; x < g.width; x++) {
      if (inLabel(x, y)) continue;
      const o = (y * g.width + x) * 3;
      assert.deepEqual(at(left + x, top + y), [g.rgb[o], g.rgb[o + 1], g.rgb[o + 2]], `grid pixel ${x},${y}`);
    }
  // Each label is under its tile: ink in the first label strip, inside the cell's columns.
  const strip = top + g.pad + layout.cell.height;
  for (let c = 0; c < 3; c++) {
    const x0 = left + g.pad + c * (layout.cell.width + g.pad);
    assert.ok(dark(x0, x0 + layout.cell.width, strip, strip + layout.grid.labelHeight) > 3, `label ${c}`);
  }
  // The colour bar: jet's red at the top, blue at the bottom, right of the grid.
  const barX = left + g.width + 10 + 7;
  const [r1, , b1] = at(barX, top + g.pad + 2);
  const [r0, , b0] = at(barX, top + g.pad + Math.max(120, g.height - 2 * g.pad) - 2);
  assert.ok(r1! > 100 && b1! < 50 && b0! > 100 && r0! < 50, `bar ends ${r1},${b1} / ${r0},${b0}`);
});

test('a figure takes a larger tile when asked, never a smaller one', async () => {
  const t = [ramp(32, 1, 0)];
  assert.equal((await figure({ title: 't', tiles: t, normalize: 'none', minTile: 100 })).layout.cell.width, 128);
  assert.equal((await figure({ title: 't', tiles: t, normalize: 'none', minTile: 8 })).layout.cell.width, 64);
});
