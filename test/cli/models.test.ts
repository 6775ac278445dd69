import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MODELS } from '../../src/zoo/index.js';
import { formatModels, modelRow, type ModelRow } from '../../src/cli/models.js';
import { ilsvrc } from './run.js';

describe('ilsvrc models', { concurrency: true }, () => {
  test('--json: one entry per model, counted from the built graphs', async () => {
    const r = await ilsvrc(['models', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const rows = JSON.parse(r.stdout) as ModelRow[];
    assert.deepEqual(
      rows.map((m) => m.name),
      MODELS.map((m) => m.name),
    );
    for (const spec of MODELS) {
      const row = rows.find((m) => m.name === spec.name);
      assert.ok(row);
      if (spec.numParams) assert.equal(row.params, spec.numParams, spec.name);
      if (spec.gmacs) assert.ok(Math.abs(row.gmacs - spec.gmacs) / spec.gmacs < 0.01, spec.name);
      assert.equal(row.year, spec.year);
    }
    assert.deepEqual(rows.find((m) => m.name === 'vgg-d')?.aliases, ['vgg16']);
    assert.equal(rows.find((m) => m.name === 'vgg-d')?.source, undefined);
    assert.equal(rows.find((m) => m.name === 'googlenet-tv')?.source, 'torchvision 0.14 googlenet');
    assert.deepEqual(rows.find((m) => m.name === 'vgg-d')?.recipe, {
      optimizer: 'sgd',
      lr: 0.01,
      momentum: 0.9,
      weightDecay: 5e-4,
      batchSize: 256,
      augment: 'vgg',
    });
  });

  test('table: header, thousands separators, aliases', async () => {
    const r = await ilsvrc(['models']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0] ?? '', /^name\s+title\s+source\s+year\s+input\s+params\s+GMACs\s+paper's recipe \(train defaults\)\s+aliases$/);
    assert.equal(lines.length, 2 + MODELS.length);
    assert.match(r.stdout, /^vgg-d\s.*\s138,357,544\s+15\.470\s+sgd lr 0\.01 m 0\.9 wd 5e-4, batch 256, vgg aug\.\s+vgg16$/m);
    assert.match(
      r.stdout,
      /^alexnet-tv\s+AlexNet \(torchvision's one-tower form\)\s+torchvision 0\.14 alexnet\s+2014\s+224\s+61,100,840\s/m,
    );
    assert.match(r.stdout, /^alexnet\s.*\s60,965,224\s+0\.724\s+sgd lr 0\.01 m 0\.9 wd 5e-4, batch 128, alexnet aug\.$/m);
  });

  test('formatModels aligns numbers to the right', () => {
    const text = formatModels([modelRow(MODELS[0]!), modelRow(MODELS[3]!)]);
    const [, , a, b] = text.split('\n');
    const end = (line: string | undefined, n: string) => (line ?? '').indexOf(n) + n.length;
    assert.equal(end(a, '60,965,224'), end(b, '7,595,176'));
  });
});
