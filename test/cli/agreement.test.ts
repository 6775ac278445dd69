/**
 * A model file and its checkpoint answer the same by default: for a model trained with
 * --augment none (viewed whole), flip (whole) and a paper preset (vgg: centre crop), and for a
 * batch-normalised one (its running statistics in both), `export`
 * then `evaluate`, `predict` and `visualize occlusion` on the ONNX file give what they give on the
 * checkpoint — the same data (the one recorded in the file), the same view, the same class names,
 * probabilities within 1e-6. And evaluate on the demo's checkpoint with no --data scores the
 * training run's own validation set: the same top-1 as its best epoch.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { generateSynthetic } from '../../src/data/index.js';
import { trained } from './fixtures.js';
import { ilsvrc, TINY } from './run.js';

const root = mkdtempSync(join(tmpdir(), 'ilsvrc-agree-'));
after(() => rmSync(root, { recursive: true, force: true }));

function lastJson<T>(stdout: string): T {
  return JSON.parse(stdout.trim().split('\n').pop() ?? 'null') as T;
}

interface Prediction {
  image: string;
  top: { class: string; index: number; probability: number }[];
}

describe('an exported ONNX file answers as its checkpoint', { concurrency: true }, () => {
  // vgg-a-bn: the file's BatchNormalization nodes carry the checkpoint's running statistics.
  for (const [augment, model] of [
    ['none', 'vgg-a'],
    ['flip', 'vgg-a'],
    ['vgg', 'vgg-a'],
    ['none', 'vgg-a-bn'],
  ] as const) {
    test(`--augment ${augment}${model === 'vgg-a' ? '' : `, ${model}`}: evaluate, predict and visualize agree`, async () => {
      const out = join(root, `${augment}-${model}`);
      mkdirSync(out);
      const args = TINY.map((a) => (a === 'vgg-a' ? model : a));
      const ckpt = join(await trained([...args, '--augment', augment, '--max-steps', '9']), 'last.safetensors');
      const onnx = join(out, 'model.onnx');
      const x = await ilsvrc(['export', model, '--checkpoint', ckpt, '-o', onnx]);
      assert.equal(x.code, 0, x.stderr);

      const [a, b] = await Promise.all([
        ilsvrc(['evaluate', ckpt, '--json', '--out', join(out, 'ea')]),
        ilsvrc(['evaluate', onnx, '--json', '--out', join(out, 'eb')]),
      ]);
      assert.equal(a.code, 0, a.stderr);
      assert.equal(b.code, 0, b.stderr);
      const ea = lastJson<{ n: number; top1: number; top5: number; loss: number; crop: string }>(a.stdout);
      const eb = lastJson<typeof ea>(b.stdout);
      assert.equal(ea.crop, augment === 'vgg' ? 'center' : 'full', 'the view that matches the training augmentation');
      assert.deepEqual([eb.n, eb.top1, eb.top5, eb.crop], [ea.n, ea.top1, ea.top5, ea.crop]);
      assert.ok(Math.abs(eb.loss - ea.loss) < 1e-6, `loss ${ea.loss} vs ${eb.loss}`);
      assert.equal(ea.n, 480, 'the synthetic set the run trained on (480 validation images), not another');

      const syn = await generateSynthetic();
      const images = [join(syn.dir, 'val', 'circle', '00000.jpg'), join(syn.dir, 'val', 'stripes', '00001.png')];
      const [pa, pb] = await Promise.all([ilsvrc(['predict', ckpt, ...images, '--json']), ilsvrc(['predict', onnx, ...images, '--json'])]);
      assert.equal(pa.code, 0, pa.stderr);
      assert.equal(pb.code, 0, pb.stderr);
      const qa = lastJson<Prediction[]>(pa.stdout);
      const qb = lastJson<Prediction[]>(pb.stdout);
      assert.equal(qa.length, images.length);
      for (const [i, p] of qa.entries()) {
        const q = qb[i]!;
        assert.deepEqual(
          q.top.map((c) => c.class),
          p.top.map((c) => c.class),
          'the same top-5, named',
        );
        for (const [j, c] of p.top.entries())
          assert.ok(Math.abs(q.top[j]!.probability - c.probability) < 1e-6, `${c.class}: ${c.probability} vs ${q.top[j]!.probability}`);
      }
      assert.ok(qa[0]!.top[0]!.class !== String(qa[0]!.top[0]!.index), 'class names, not indices');

      const [va, vb] = await Promise.all([
        ilsvrc(['visualize', 'occlusion', ckpt, images[0]!, '--json', '-o', join(out, 'oa.png')]),
        ilsvrc(['visualize', 'occlusion', onnx, images[0]!, '--json', '-o', join(out, 'ob.png')]),
      ]);
      assert.equal(va.code, 0, va.stderr);
      assert.equal(vb.code, 0, vb.stderr);
      const oa = lastJson<{ class: { index: number; name: string }; clean: number; probability: number[] }>(va.stdout);
      const ob = lastJson<typeof oa>(vb.stdout);
      assert.deepEqual(ob.class, oa.class);
      assert.ok(Math.abs(ob.clean - oa.clean) < 1e-6, `clean probability ${oa.clean} vs ${ob.clean}`);
      assert.ok(
        oa.probability.every((p, i) => Math.abs(p - ob.probability[i]!) < 1e-6),
        'the occlusion map',
      );
    });
  }
});

test("evaluate on the demo's checkpoint with no --data scores its own validation set: the best epoch's top-1", async () => {
  const out = join(root, 'demo');
  const t = await ilsvrc(['train', '--epochs', '1', '--max-steps', '60', '--out', out, '--json']);
  assert.equal(t.code, 0, t.stderr);
  const best = lastJson<{ best_top1: number }>(t.stdout).best_top1;
  const e = await ilsvrc(['evaluate', join(out, 'best.safetensors'), '--json']);
  assert.equal(e.code, 0, e.stderr);
  const r = lastJson<{ top1: number; n: number }>(e.stdout);
  assert.equal(r.n, 1600, "the demo's 1 600 validation images (its 32 px set of 1 000 per class)");
  assert.equal(r.top1, best);
});
