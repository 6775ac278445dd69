import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { alexnetVsZfnet, gapVsFc, inceptionReduction, stacking, TOPICS } from '../../src/cli/explain.js';
import { assertUsageError, ilsvrc } from './run.js';

describe('explain: the numbers, measured on built graphs', () => {
  test('gap-vs-fc: 7·7·1024·1024 FC weights vs none', () => {
    const f = gapVsFc();
    assert.equal(f.fc.weights, 7 * 7 * 1024 * 1024); // 51,380,224: the notes' "51.3 M"
    assert.equal(f.fc.biases, 1024);
    assert.equal(f.gap.params, 0);
    assert.deepEqual(f.gap.output, [1024, 1, 1]);
    const vgg = f.zoo.find((z) => z.model === 'vgg-d');
    // fc6 25088·4096 + fc7 4096·4096 + fc8 4096·1000, with biases.
    assert.equal(vgg?.fcParams, 102_764_544 + 16_781_312 + 4_097_000);
  });

  test('stacking: same receptive field, 27C² vs 49C², three ReLUs vs one', () => {
    const [two, three] = stacking(32, 20).pairs;
    assert.deepEqual([two?.stacked.rf, two?.single.rf, two?.stacked.perC2, two?.single.perC2], [5, 5, 18, 25]);
    assert.deepEqual([three?.stacked.rf, three?.single.rf], [7, 7]);
    assert.deepEqual([three?.stacked.perC2, three?.single.perC2], [27, 49]);
    assert.deepEqual([three?.stacked.relus, three?.single.relus], [3, 1]);
    assert.deepEqual(three?.stacked.output, [32, 20, 20]);
  });

  test('inception 3a: naive vs reduced', () => {
    const f = inceptionReduction();
    assert.deepEqual([f.naive.params, f.reduced.params], [387_296, 163_696]);
    assert.deepEqual([(f.naive.macs / 1e9).toFixed(3), (f.reduced.macs / 1e9).toFixed(3)], ['0.303', '0.128']);
    assert.deepEqual([f.naive.channels, f.reduced.channels], [416, 256]);
    assert.equal(f.reduced.branches.find((b) => b.name === '5x5_reduce')?.params, 192 * 16 + 16);
  });

  test('alexnet-vs-zfnet: conv1 11×11/4 → 7×7/2, conv2 stride 1 → 2', () => {
    const f = alexnetVsZfnet();
    const row = (m: 'alexnet' | 'zfnet', n: string) => {
      const l = f[m].layers.find((x) => x.name === n);
      return [l?.kernel, l?.stride, l?.output.slice(1).join('×')];
    };
    assert.deepEqual(row('alexnet', 'conv1'), [11, 4, '55×55']);
    assert.deepEqual(row('zfnet', 'conv1'), [7, 2, '110×110']);
    assert.deepEqual(row('alexnet', 'conv2'), [5, 1, '27×27']);
    assert.deepEqual(row('zfnet', 'conv2'), [5, 2, '26×26']);
  });
});

describe('ilsvrc explain', { concurrency: true }, () => {
  test('every topic prints text with its numbers, and JSON with --json', async () => {
    const names = Object.keys(TOPICS);
    const runs = await Promise.all(names.flatMap((t) => [ilsvrc(['explain', t]), ilsvrc(['explain', t, '--json'])]));
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    const text = (t: string) => runs[2 * names.indexOf(t)]?.stdout ?? '';
    assert.match(text('gap-vs-fc'), /51,380,224 weights/);
    assert.match(text('stacking'), /^3 × 3×3\s+7\s+27C²/m);
    assert.match(text('stacking'), /^1 × 7×7\s+7\s+49C²/m);
    assert.match(text('inception'), /387,296 params, 0\.303 GMACs, 416 channels/);
    assert.match(text('inception'), /163,696 params, 0\.128 GMACs, 256 channels/);
    assert.match(text('alexnet-vs-zfnet'), /^conv1\s+11×11\/4\s+96×55×55\s+11\/4\s+7×7\/2\s+96×110×110\s+7\/2$/m);
    const json = JSON.parse(runs[2 * names.indexOf('inception') + 1]?.stdout ?? '') as ReturnType<typeof inceptionReduction>;
    assert.equal(json.naive.params, 387_296);
  });

  test('an unknown topic is a usage error listing the topics', async () => {
    assertUsageError(
      await ilsvrc(['explain', 'resnets']),
      'Expected one of gap-vs-fc, stacking, inception, alexnet-vs-zfnet for topic but received "resnets"',
    );
  });
});
