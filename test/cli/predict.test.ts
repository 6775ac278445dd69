/** `ilsvrc predict`: named top-5 with probabilities; a checkpoint and its ONNX export agree. */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { generateSynthetic } from '../../src/data/index.js';
import { trained } from './fixtures.js';
import { assertUsageError, ilsvrc, TINY } from './run.js';

const root = mkdtempSync(join(tmpdir(), 'ilsvrc-predict-'));
after(() => rmSync(root, { recursive: true, force: true }));

interface Pred {
  image: string;
  top: { class: string; index: number; probability: number }[];
}

test('predict on a checkpoint and on its exported ONNX gives the same answers', async () => {
  const ckpt = join(await trained([...TINY, '--augment', 'none', '--max-steps', '9']), 'last.safetensors');
  const onnx = join(root, 'model.onnx');
  const e = await ilsvrc(['export', 'vgg-a', '--checkpoint', ckpt, '-o', onnx]);
  assert.equal(e.code, 0, e.stderr);
  const syn = await generateSynthetic();
  const imgs = ['circle', 'ring', 'dots'].map((c) => join(syn.dir, 'val', c, readdirSync(join(syn.dir, 'val', c))[0]!));
  const a = await ilsvrc(['predict', ckpt, ...imgs, '--json']);
  const b = await ilsvrc(['predict', onnx, ...imgs, '--json']);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.code, 0, b.stderr);
  const pa = JSON.parse(a.stdout) as Pred[];
  const pb = JSON.parse(b.stdout) as Pred[];
  assert.equal(pa.length, 3);
  assert.equal(pa[0]!.top.length, 5);
  // Names from the checkpoint (and from the ONNX file's own metadata: no classes.json is beside it).
  assert.ok(pa[0]!.top.every((x) => ['circle', 'square', 'triangle', 'ring', 'cross', 'stripes', 'checker', 'dots'].includes(x.class)));
  for (let i = 0; i < 3; i++) {
    assert.deepEqual(
      pb[i]!.top.map((x) => x.class),
      pa[i]!.top.map((x) => x.class),
    );
    pa[i]!.top.forEach((x, k) => assert.ok(Math.abs(x.probability - pb[i]!.top[k]!.probability) < 1e-6));
  }
  const text = await ilsvrc(['predict', ckpt, imgs[0]!]);
  assert.match(text.stdout, /^\s+\d+\.\d\d%  \w+$/m);

  const ev = await ilsvrc(['evaluate', ckpt, '--json', '--out', root]);
  assert.equal(ev.code, 0, ev.stderr);
  const r = JSON.parse(ev.stdout) as { n: number; top1: number; per_class: Record<string, number> };
  assert.equal(r.n, 480);
  assert.equal(Object.keys(r.per_class).length, 8);

  assertUsageError(await ilsvrc(['predict', ckpt, join(root, 'missing.png')]), 'missing.png');
  assertUsageError(await ilsvrc(['evaluate', join(root, 'nope.onnx')]), 'nope.onnx');
});
