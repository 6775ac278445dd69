import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import sharp from 'sharp';
import { blues, escapeXml, heatmap, lineChart, logAxis, niceAxis, svgToPng, writeChartPng, writeHeatmapPng } from '../../src/plot/chart.js';

const dir = mkdtempSync(join(tmpdir(), 'ilsvrc-chart-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function render(svg: string): Promise<{ data: Buffer; width: number; height: number; channels: number }> {
  const { data, info } = await sharp(await svgToPng(svg))
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

function pixel(img: { data: Buffer; width: number; channels: number }, x: number, y: number): number[] {
  const o = (Math.round(y) * img.width + Math.round(x)) * img.channels;
  return [...img.data.subarray(o, o + 3)];
}

test('nice ticks: round steps, widened to whole ticks, no float noise', () => {
  assert.deepEqual(niceAxis(0, 2.3).ticks, [0, 0.5, 1, 1.5, 2, 2.5]);
  const a = niceAxis(0.1, 0.3);
  assert.deepEqual(a.ticks, [0.1, 0.15, 0.2, 0.25, 0.3]);
  assert.deepEqual(a.ticks.map(a.format), ['0.10', '0.15', '0.20', '0.25', '0.30']);
  const b = niceAxis(-7, 93);
  assert.equal(b.min, -20);
  assert.equal(b.max, 100);
  assert.deepEqual(niceAxis(0, 90000, 6).ticks, [0, 20000, 40000, 60000, 80000, 100000]);
  // Degenerate and invalid ranges still give a usable axis.
  const c = niceAxis(5, 5);
  assert.ok(c.min < 5 && c.max > 5);
  assert.deepEqual(niceAxis(0, 0).ticks.includes(0), true);
  assert.deepEqual(niceAxis(NaN, 3).ticks, niceAxis(0, 1).ticks);
  assert.equal(niceAxis(1e-7, 3e-7).format(2e-7), '2.0e-7');
});

test('log ticks at decades, with 2 and 5 on short spans', () => {
  const a = logAxis(2e-5, 0.009);
  assert.equal(a.min, 1e-5);
  assert.equal(a.max, 0.01);
  assert.deepEqual(a.ticks, [1e-5, 1e-4, 1e-3, 1e-2]);
  assert.deepEqual(a.ticks.map(a.format), ['1e-5', '1e-4', '0.001', '0.01']);
  assert.deepEqual(logAxis(0.3, 3).ticks, [0.1, 0.2, 0.5, 1, 2, 5, 10]);
  assert.deepEqual(logAxis(1, 1).ticks, [1, 2, 5, 10]);
  assert.equal(logAxis(1e-12, 1).ticks.length, 7);
});

test('labels are XML-escaped', () => {
  assert.equal(escapeXml(`a<b>&"c'`), 'a&#60;b&#62;&#38;&#34;c&#39;');
  const svg = lineChart({
    title: 'loss <train> & "val"',
    xLabel: 'x&y',
    yLabel: '<y>',
    series: [
      {
        name: 'a<b',
        points: [
          [0, 1],
          [1, 2],
        ],
      },
    ],
  });
  assert.ok(!svg.includes('<train>'));
  assert.ok(svg.includes('loss &#60;train&#62; &#38; &#34;val&#34;'));
  assert.ok(svg.includes('a&#60;b'));
});

/** A 400×300 chart of the series. */
const chart400 = (series: Parameters<typeof lineChart>[0]['series']): string =>
  lineChart({ title: 't', xLabel: 'x', yLabel: 'y', width: 400, height: 300, series });

test('a line lands where the scales put it', async () => {
  const svg = chart400([
    {
      name: '',
      color: '#ff0000',
      points: [
        [0, 0],
        [10, 10],
      ],
    },
  ]);
  const img = await render(svg);
  assert.equal(img.width, 400);
  assert.equal(img.height, 300);
  assert.equal(img.channels, 3);
  // Plot area: left 72, right 20, top 40, bottom 52 → (5, 5) is its centre.
  const [r, g, b] = pixel(img, 72 + (400 - 92) / 2, 40 + (300 - 92) / 2);
  assert.ok((r ?? 0) > 200 && (g ?? 255) < 80 && (b ?? 255) < 80, `expected red, got ${r},${g},${b}`);
  assert.deepEqual(pixel(img, 3, 3), [255, 255, 255]);
});

test('NaN gaps, lone points, empty series and log axes render', async () => {
  const svg = lineChart({
    title: 'mixed',
    xLabel: 'step',
    yLabel: 'loss',
    logY: true,
    series: [
      {
        name: 'gappy',
        points: [
          [0, 1],
          [1, NaN],
          [2, 0.5],
          [3, 0.25],
          [4, -1],
          [5, Infinity],
        ],
      },
      { name: 'one', points: [[2, 0.1]] },
      { name: 'none', points: [] },
    ],
  });
  assert.ok(!/NaN|Infinity/.test(svg), 'no NaN coordinates');
  assert.equal((svg.match(/<circle/g) ?? []).length, 2); // the lone point, and (0, 1) cut off by the NaN
  assert.equal((svg.match(/<path/g) ?? []).length, 1);
  await render(svg);
  const empty = lineChart({ title: 'e', xLabel: 'x', yLabel: 'y', series: [] });
  assert.ok(empty.includes('no data'));
  await render(empty);
  await render(lineChart({ title: 'e', xLabel: 'x', yLabel: 'y', series: [{ name: 'z', points: [[NaN, NaN]] }], logY: true }));
});

test('writeChartPng writes a PNG of the requested size', async () => {
  const p = join(dir, 'loss.png');
  await writeChartPng(p, {
    title: 'loss',
    xLabel: 'epoch',
    yLabel: 'loss',
    width: 320,
    height: 200,
    series: [
      {
        name: 'train',
        points: [
          [1, 2],
          [2, 1],
        ],
      },
    ],
  });
  const meta = await sharp(p).metadata();
  assert.equal(meta.format, 'png');
  assert.equal(meta.width, 320);
  assert.equal(meta.height, 200);
});

test('heatmap cells take the colour scale; NaN cells are grey', async () => {
  const svg = heatmap({
    title: 'cm',
    rowLabels: ['a', 'b'],
    colLabels: ['a', 'b'],
    values: [
      [0, 10],
      [5, NaN],
    ],
    annotate: false,
    cellSize: 30,
  });
  const m = /<image x="(\d+)" y="(\d+)" width="60" height="60"/.exec(svg);
  assert.ok(m, 'cells are one raster of 2×30 px');
  const x0 = Number(m[1]);
  const y0 = Number(m[2]);
  const img = await render(svg);
  assert.deepEqual(pixel(img, x0 + 15, y0 + 15), blues(0));
  assert.deepEqual(pixel(img, x0 + 45, y0 + 15), blues(1));
  assert.deepEqual(pixel(img, x0 + 15, y0 + 45), blues(0.5));
  assert.deepEqual(pixel(img, x0 + 45, y0 + 45), [217, 217, 217]);
  assert.deepEqual(blues(0), [247, 251, 255]);
  assert.deepEqual(blues(1), [8, 48, 107]);
});

test('heatmap annotates small matrices, not large ones, and checks its shape', async () => {
  const small = heatmap({
    title: 'cm',
    rowLabels: ['x', 'y'],
    colLabels: ['x', 'y'],
    values: [
      [12, 3],
      [0, 7],
    ],
  });
  for (const n of ['12', '3', '0', '7']) assert.ok(small.includes(`>${n}</text>`), n);
  const n = 100;
  const labels = Array.from({ length: n }, (_, i) => `class ${i}`);
  const big = heatmap({
    title: 'big',
    rowLabels: labels,
    colLabels: labels,
    values: labels.map((_, r) => labels.map((_, c) => (r === c ? 50 : 1))),
  });
  assert.equal((big.match(/>50<\/text>/g) ?? []).length, 1); // the colour bar's maximum only
  const p = join(dir, 'cm.png');
  await writeHeatmapPng(p, { title: 'big', rowLabels: labels, colLabels: labels, values: labels.map(() => labels.map(() => 0.5)) });
  assert.equal((await sharp(p).metadata()).format, 'png');
  assert.throws(
    () => heatmap({ title: 'bad', rowLabels: ['a', 'b'], colLabels: ['a', 'b'], values: [[1, 2], [3]] }),
    /Expected a 2×2 matrix .* but received 2 rows of length 2\/1/,
  );
  await render(heatmap({ title: 'empty', rowLabels: [], colLabels: [], values: [] }));
});

test('the legend sits beside the plot: every point of a curve under its corner stays visible', async () => {
  const svg = chart400([
    {
      name: 'train top-1',
      color: '#ff0000',
      points: [
        [0, 0.9],
        [10, 0.9],
      ],
    },
    {
      name: 'val top-1',
      color: '#0000ff',
      points: [
        [0, 0],
        [10, 0],
      ],
    },
  ]);
  const frame = /<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)" fill="none" stroke="#333"\/>/.exec(svg);
  assert.ok(frame, 'the plot frame');
  const [left, top, w, h] = frame.slice(1).map(Number) as [number, number, number, number];
  const img = await render(svg);
  // y = 0.9 on a 0..1 axis: a tenth of the way down, where a legend in the corner would sit.
  for (let x = left + 4; x < left + w - 4; x += 4) {
    const [r, g, b] = pixel(img, x, top + 0.1 * h);
    assert.ok((r ?? 0) > 200 && (g ?? 255) < 80 && (b ?? 255) < 80, `red at x ${x}, got ${r},${g},${b}`);
  }
  // The legend is drawn, right of the frame.
  assert.match(svg, />train top-1</);
  const legend = /<rect x="([\d.]+)" y="[\d.]+" width="[\d.]+" height="[\d.]+" fill="#ffffff" fill-opacity/.exec(svg);
  assert.ok(legend && Number(legend[1]) >= left + w, 'legend right of the plot');
});
