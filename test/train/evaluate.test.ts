/**
 * Evaluation math, and `ilsvrc evaluate --crop ten` against an answer computed by hand: a "model"
 * whose logits are the mean of each input channel (GlobalAveragePool), on 16×16 images, so each of
 * the ten 14×14 crops' logits are window means, and a flip does not change them.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { IMAGENET_MEAN, IMAGENET_STD } from '../../src/data/index.js';
import { scoreViews, Tally, topK } from '../../src/train/score.js';
import { Rng } from '../../src/util/rng.js';
import { assertUsageError, ilsvrc } from '../cli/run.js';
import { channelMeanModel } from '../cli/plain-onnx.js';

test('scoreViews averages the softmax over each sample’s views', () => {
  const logits = Float32Array.from([0, 0, Math.log(3), 0, 5, 5]);
  const p = scoreViews(logits, 3, 2, 1);
  assert.ok(Math.abs(p[2]! - 0.75) < 1e-6);
  const two = scoreViews(Float32Array.from([0, Math.log(3), Math.log(3), 0]), 2, 2, 2);
  assert.ok(Math.abs(two[0]! - 0.5) < 1e-6 && Math.abs(two[1]! - 0.5) < 1e-6);
  assert.deepEqual(topK([0.1, 0.5, 0.5, 0.2], 3), [1, 2, 3]);
});

test('Tally: hits, per-class accuracy, confusion', () => {
  const t = new Tally(3);
  t.add(Float32Array.from([0.7, 0.2, 0.1, 0.1, 0.3, 0.6, 0.2, 0.5, 0.3]), [0, 1, 1], 3);
  const r = t.result();
  assert.equal(r.top1, 2 / 3);
  assert.equal(r.top5, 1);
  assert.deepEqual(
    [...r.confusion.rows()].map((row) => [...row]),
    [
      [1, 0, 0],
      [0, 1, 1],
      [0, 0, 0],
    ],
  );
  assert.deepEqual(r.perClass.slice(0, 2), [1, 0.5]);
});

test('Tally at 50 and 1 000 classes (dense and sparse confusion) agrees with sorting every class, ties included', () => {
  const rng = new Rng(3);
  for (const C of [50, 1000]) {
    const n = 300;
    // Few distinct values: many ties, which rank the lower class first.
    const probs = Float32Array.from({ length: n * C }, () => rng.int(6) / 8);
    const labels = Int32Array.from({ length: n }, (_, i) => (i % 17 === 0 ? -1 : rng.int(C)));
    const t = new Tally(C);
    t.add(probs, labels.subarray(0, 150), 150);
    t.add(probs.subarray(150 * C), labels.subarray(150), n - 150);
    const r = t.result();

    const cells = new Map<string, number>();
    const images = new Array<number>(C).fill(0);
    const hits1 = new Array<number>(C).fill(0);
    let top1 = 0;
    let top5 = 0;
    let loss = 0;
    let scored = 0;
    for (let i = 0; i < n; i++) {
      const y = labels[i]!;
      if (y < 0) continue;
      const row = probs.subarray(i * C, (i + 1) * C);
      const order = Array.from({ length: C }, (_, c) => c).sort((a, b) => row[b]! - row[a]! || a - b);
      scored++;
      images[y]!++;
      loss += -Math.log(Math.max(row[y]!, 1e-12));
      if (order[0] === y) (top1++, hits1[y]!++);
      if (order.slice(0, 5).includes(y)) top5++;
      cells.set(`${y},${order[0]}`, (cells.get(`${y},${order[0]}`) ?? 0) + 1);
    }
    assert.equal(r.n, scored);
    assert.equal(r.top1, top1 / scored);
    assert.equal(r.top5, top5 / scored);
    assert.ok(Math.abs(r.loss - loss / scored) < 1e-12);
    assert.deepEqual([...r.classCounts.images], images);
    assert.deepEqual([...r.classCounts.top1], hits1);
    assert.deepEqual(new Map(r.confusion.cells().map(([a, b, v]) => [`${a},${b}`, v])), cells);
    for (const [key, v] of cells) assert.equal(r.confusion.get(...(key.split(',').map(Number) as [number, number])), v);
    const first = Array.from({ length: C }, (_, c) => c).sort((a, b) => probs[b]! - probs[a]! || a - b);
    assert.deepEqual(topK(probs.subarray(0, C), 7), first.slice(0, 7));
  }
});

test('Tally.addLogits counts what add counts of the softmax, ties included, with the loss to 1e-6', () => {
  const rng = new Rng(5);
  for (const C of [10, 300, 2000]) {
    const n = 200;
    // Few distinct logits: ties, which the softmax keeps as ties and ranks the lower class first.
    const logits = Float32Array.from({ length: n * C }, () => rng.int(9) - 4);
    const labels = Int32Array.from({ length: n }, (_, i) => (i % 13 === 0 ? -1 : rng.int(C)));
    const a = new Tally(C);
    a.add(scoreViews(logits, n, C, 1), labels, n);
    const b = new Tally(C);
    b.addLogits(logits, labels, n);
    const [ra, rb] = [a.result(), b.result()];
    assert.deepEqual([rb.n, rb.top1, rb.top5], [ra.n, ra.top1, ra.top5], `${C} classes`);
    assert.ok(Math.abs(rb.loss - ra.loss) < 1e-6, `${rb.loss} vs ${ra.loss}`);
    assert.deepEqual([...rb.classCounts.top5], [...ra.classCounts.top5]);
    assert.deepEqual(rb.confusion.cells(), ra.confusion.cells());
  }
});

test('evaluate --crop ten equals the hand-computed average of ten softmaxes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ilsvrc-eval-'));
  try {
    const S = 14; // eval resizes the shorter side to round(14·256/224) = 16: our images already are
    const N = 16;
    const classes = ['a', 'b', 'c'];
    const images: { label: number; px: Uint8Array }[] = [];
    for (let k = 0; k < 3; k++) {
      const px = new Uint8Array(N * N * 3);
      for (let y = 0; y < N; y++)
        for (let x = 0; x < N; x++)
          for (let ch = 0; ch < 3; ch++) px[(y * N + x) * 3 + ch] = (37 * k + 11 * x * (ch + 1) + 7 * y * (2 - ch) + 40 * ch) % 256;
      images.push({ label: k, px });
      for (const split of ['train', 'val']) {
        mkdirSync(join(dir, 'data', split, classes[k]!), { recursive: true });
        await sharp(Buffer.from(px), { raw: { width: N, height: N, channels: 3 } })
          .png()
          .toFile(join(dir, 'data', split, classes[k]!, `${k}.png`));
      }
    }
    writeFileSync(join(dir, 'm.onnx'), channelMeanModel(S));
    const r = await ilsvrc(['evaluate', join(dir, 'm.onnx'), '--data', join(dir, 'data'), '--crop', 'ten', '--json', '--out', dir]);
    assert.equal(r.code, 0, r.stderr);
    const got = JSON.parse(r.stdout.trim().split('\n').pop()!) as { top1: number; loss: number; n: number };

    // By hand: windows at the four corners and the center ((16 − 14) / 2 = 1), each twice (mirrored).
    const offsets = [
      [0, 0],
      [2, 0],
      [0, 2],
      [2, 2],
      [1, 1],
    ] as const;
    let loss = 0;
    let hits = 0;
    for (const { label, px } of images) {
      const avg = [0, 0, 0];
      for (const [ox, oy] of offsets) {
        const logit = [0, 1, 2].map((ch) => {
          let s = 0;
          for (let y = oy; y < oy + S; y++)
            for (let x = ox; x < ox + S; x++) s += (px[(y * N + x) * 3 + ch]! / 255 - IMAGENET_MEAN[ch]!) / IMAGENET_STD[ch]!;
          return s / (S * S);
        });
        const m = Math.max(...logit);
        const e = logit.map((v) => Math.exp(v - m));
        const z = e.reduce((a, b) => a + b, 0);
        e.forEach((v, c) => (avg[c]! += (2 * v) / z / 10));
      }
      loss += -Math.log(avg[label]!) / images.length;
      if (topK(avg, 1)[0] === label) hits++;
    }
    assert.equal(got.n, 3);
    assert.equal(got.top1, hits / 3);
    assert.ok(Math.abs(got.loss - loss) < 1e-5, `loss ${got.loss} vs hand-computed ${loss}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('evaluate skips an unreadable image (never scores another in its place), reports it, and n counts only scored images; all unreadable is one line, exit 2', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ilsvrc-eval-bad-'));
  try {
    const N = 16;
    const classes = ['a', 'b', 'c'];
    for (const root of ['clean', 'dirty']) {
      for (let k = 0; k < 3; k++) {
        for (let j = 0; j < 2; j++) {
          const px = Buffer.alloc(N * N * 3);
          for (let i = 0; i < px.length; i++) px[i] = (31 * k + 17 * j + 5 * i) % 256;
          for (const split of ['train', 'val']) {
            mkdirSync(join(dir, root, split, classes[k]!), { recursive: true });
            await sharp(px, { raw: { width: N, height: N, channels: 3 } })
              .png()
              .toFile(join(dir, root, split, classes[k]!, `${j}.png`));
          }
        }
      }
    }
    // Sorted first in its class folder, and of class 'a': a replacement would be class b's image.
    const broken = join(dir, 'dirty', 'val', 'c', '0-broken.png');
    writeFileSync(broken, 'not a png');
    writeFileSync(join(dir, 'm.onnx'), channelMeanModel(N));
    const run = (root: string, json = true) =>
      ilsvrc([
        'evaluate',
        join(dir, 'm.onnx'),
        '--data',
        join(dir, root),
        '--crop',
        'full',
        '--batch-size',
        '4',
        '--out',
        dir,
        ...(json ? ['--json'] : []),
      ]);
    const clean = await run('clean');
    const dirty = await run('dirty');
    assert.equal(clean.code, 0, clean.stderr);
    assert.equal(dirty.code, 0, dirty.stderr);
    type Out = {
      n: number;
      top1: number;
      top5: number;
      loss: number;
      per_class: Record<string, number>;
      skipped: number;
      skipped_first: string[];
    };
    const c = JSON.parse(clean.stdout) as Out;
    const d = JSON.parse(dirty.stdout) as Out;
    assert.equal(c.n, 6);
    assert.equal(d.n, 6, 'the unreadable image is not counted');
    assert.deepEqual(
      [d.top1, d.top5, d.loss, d.per_class],
      [c.top1, c.top5, c.loss, c.per_class],
      'the same images scored: the same result',
    );
    assert.equal(c.skipped, 0);
    assert.equal(d.skipped, 1);
    assert.match(d.skipped_first[0] ?? '', /0-broken\.png: /);
    const text = await run('dirty', false);
    assert.match(text.stdout, /\(val, 6 images, full crop\)/);
    assert.match(text.stdout, /skipped 1 unreadable image \(not scored\): .*0-broken\.png/);

    const bad = join(dir, 'bad');
    for (const k of classes) {
      for (const split of ['train', 'val']) {
        mkdirSync(join(bad, split, k), { recursive: true });
        writeFileSync(join(bad, split, k, 'x.png'), 'nope');
      }
    }
    const r = await run('bad');
    assertUsageError(r, 'at least one readable image', 'x.png');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
