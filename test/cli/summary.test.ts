import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ModelSummary } from '../../src/cli/summary.js';
import { assertUsageError, ilsvrc } from './run.js';

describe('ilsvrc summary', { concurrency: true }, () => {
  test('--json: totals and per-layer rows (vgg16 is vgg-d)', async () => {
    const r = await ilsvrc(['summary', 'vgg16', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout) as ModelSummary;
    assert.equal(s.model, 'vgg-d');
    assert.deepEqual(s.input, [3, 224, 224]);
    assert.equal(s.params, 138_357_544);
    assert.ok(Math.abs(s.macs / 1e9 - 15.47) < 0.01);
    assert.equal(s.layers.length, 13 + 5 + 3);
    const conv53 = s.layers.find((l) => l.name === 'conv5_3');
    assert.deepEqual(conv53, {
      name: 'conv5_3',
      ops: ['Conv', 'Relu'],
      output: [512, 14, 14],
      params: 2_359_808,
      macs: 462_422_016,
      rf: 196,
      jump: 16,
      kernel: 3,
      stride: 1,
    });
    assert.equal(
      s.layers.reduce((n, l) => n + l.params, 0),
      s.params,
    );
  });

  test('table: thousands separators, RF and jump, totals', async () => {
    const r = await ilsvrc(['summary', 'vgg-d']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^layer\s+ops\s+output\s+k\/s\s+params\s+MACs\s+RF\s+jump$/m);
    assert.match(r.stdout, /^conv5_3\s+Conv\+Relu\s+512×14×14\s+3\/1\s+2,359,808\s+462,422,016\s+196\s+16$/m);
    assert.match(r.stdout, /^total: 138,357,544 params, 15,470,264,320 MACs \(15\.470 G\)$/m);
  });

  test('model options: small width, classes and input size', async () => {
    const r = await ilsvrc(['summary', 'alexnet', '--json', '--width', '0.125', '--classes', '10', '--input-size', '99']);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout) as ModelSummary;
    assert.deepEqual(s.input, [3, 99, 99]);
    assert.deepEqual(s.layers.find((l) => l.name === 'conv1')?.output, [12, 23, 23]);
    assert.deepEqual(s.layers.at(-1)?.output, [10]);
  });

  test('--detail splits inception blocks; --aux adds the auxiliary heads', async () => {
    const [detail, aux] = await Promise.all([
      ilsvrc(['summary', 'googlenet', '--detail', '--json']),
      ilsvrc(['summary', 'googlenet', '--aux', '--json']),
    ]);
    const d = JSON.parse(detail.stdout) as ModelSummary;
    const b5 = d.layers.find((l) => l.name === 'inception_3a/5x5');
    assert.deepEqual([b5?.output, b5?.params, b5?.rf], [[32, 28, 28], 12_832, 59]);
    assert.deepEqual(d.layers.find((l) => l.name === 'inception_3a')?.ops, ['Concat']);
    const a = JSON.parse(aux.stdout) as ModelSummary;
    assert.equal(a.params, 13_378_280);
    assert.ok(a.layers.some((l) => l.name === 'loss1') && a.layers.some((l) => l.name === 'loss2'));
  });

  test('--compare puts two designs side by side', async () => {
    const r = await ilsvrc(['summary', 'googlenet', '--compare', 'googlenet-naive']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^inception_3a\s+256×28×28\s+416×28×28\s+163,696\s+387,296\s/m);
    assert.match(r.stdout, /^total\s+6,998,552\s+97,526,008\s/m);
  });

  test('--compare lists the layers in network order: VGG-E extra convolutions stand inside their blocks', async () => {
    const r = await ilsvrc(['summary', 'vgg-d', '--compare', 'vgg-e', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const names = (JSON.parse(r.stdout) as { layers: { name: string }[] }).layers.map((l) => l.name);
    const block3 = names.slice(names.indexOf('conv3_1'), names.indexOf('pool3') + 1);
    assert.deepEqual(block3, ['conv3_1', 'conv3_2', 'conv3_3', 'conv3_4', 'pool3']);
    assert.equal(names.at(-1), 'fc8');
  });

  test('--compare --json is one object with the layers aligned', async () => {
    const r = await ilsvrc(['summary', 'googlenet', '--compare', 'googlenet-naive', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as {
      models: string[];
      layers: { name: string; output: (number[] | null)[]; params: (number | null)[] }[];
      total: { params: number[] };
      summaries: { model: string }[];
    };
    assert.deepEqual(j.models, ['googlenet', 'googlenet-naive']);
    const i3a = j.layers.find((l) => l.name === 'inception_3a')!;
    assert.deepEqual(i3a.output, [
      [256, 28, 28],
      [416, 28, 28],
    ]);
    assert.deepEqual(i3a.params, [163_696, 387_296]);
    assert.deepEqual(j.total.params, [6_998_552, 97_526_008]);
    assert.equal(j.summaries[1]!.model, 'googlenet-naive');
  });

  test('bad input: one line, exit 2, no stack trace', async () => {
    const cases: [string[], ...string[]][] = [
      [['summary', 'resnet50'], 'for model', '"resnet50"', 'alexnet'],
      [['summary', 'vgg16x'], 'received "vgg16x" (did you mean vgg16?)'],
      [['summary', 'alexnett'], '(did you mean alexnet?)'],
      [['summary', 'alexnet', '--input-size', '32'], '--input-size 32', 'pool2', '2×2'],
      [['summary', 'alexnet', '--width', '-1'], 'Expected a positive number for --width but received "-1"'],
      [['summary', 'alexnet', '--classes', '2.5'], 'Expected a positive integer for --classes but received "2.5"'],
      [['summary', 'alexnet', '--classes', '0'], 'for --classes'],
      [['summary', 'alexnet', '--dropout', '1.5'], 'Expected a rate in [0, 1) for --dropout'],
      [['summary', 'alexnet', '--init', 'he'], 'Expected one of paper, kaiming for --init'],
      [['summary', 'alexnet', '--frobnicate'], "unknown option '--frobnicate'"],
      [['summary'], "missing required argument 'model'"],
      [['summarise', 'alexnet'], "unknown command 'summarise'"],
    ];
    const runs = await Promise.all(cases.map(([args]) => ilsvrc(args)));
    runs.forEach((r, i) => {
      const [, ...parts] = cases[i] ?? [[]];
      assertUsageError(r, ...parts);
    });
  });
});
