// Augmentation geometry on a known gradient image: crops land where the plan says, flips mirror,
// 10-crop gives 10 distinct views, and the planner follows torchvision's parameter rules.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { Rng } from '../../src/util/rng.js';
import { FileDataset, IMAGENET_EIGVAL, Loader, pcaLighting, PixelDataset, rrcParams, Transforms } from '../../src/data/index.js';
import type { Batch } from '../../src/data/index.js';

const W = 64;
const H = 48;
/** R = 3x, G = 4y: a pixel's value says where it came from. */
const gradient = new Uint8Array(W * H * 3);
for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) gradient.set([3 * x, 4 * y, 0], (y * W + x) * 3);

let root: string;
let png: string;
before(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'ilsvrc-data-tf-'));
  png = path.join(root, 'gradient.png');
  await sharp(gradient, { raw: { width: W, height: H, channels: 3 } })
    .png()
    .toFile(png);
});
after(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

async function first(tf: Transforms, seed = 0, src: 'file' | 'memory' = 'file'): Promise<Batch> {
  const ds =
    src === 'file'
      ? new FileDataset([png], Int32Array.of(0))
      : new PixelDataset({
          data: gradient,
          width: W,
          height: H,
          channels: 3,
          rows: Int32Array.of(0),
          labels: Int32Array.of(0),
          name: 'gradient',
        });
  const l = new Loader(ds, tf, { batchSize: 1, shuffle: false, seed, dropLast: false, channels: 3 });
  for await (const b of l.epoch(0)) return b;
  throw new Error('no batch');
}

const at = (b: Batch, view: number, x: number, y: number, c: number): number => {
  const [, C, h, w] = b.shape;
  return b.x[view * C * h * w + c * h * w + y * w + x] ?? NaN;
};

describe('crop geometry', () => {
  for (const src of ['file', 'memory'] as const) {
    it(`center crop takes the middle (${src})`, async () => {
      const b = await first(Transforms.create(3).centerCrop(32), 0, src);
      assert.deepEqual(b.shape, [1, 3, 32, 32]);
      // Left edge at (64 - 32) / 2 = 16, top at (48 - 32) / 2 = 8.
      for (const [x, y] of [
        [0, 0],
        [31, 0],
        [0, 31],
        [17, 9],
      ] as const) {
        assert.equal(at(b, 0, x, y, 0), 3 * (16 + x));
        assert.equal(at(b, 0, x, y, 1), 4 * (8 + y));
      }
    });

    it(`random crop is a window of the source, and flip mirrors it (${src})`, async () => {
      for (const seed of [1, 2, 3]) {
        const b = await first(Transforms.create(3).randomCrop(20), seed, src);
        const x0 = at(b, 0, 0, 0, 0) / 3;
        const y0 = at(b, 0, 0, 0, 1) / 4;
        for (let y = 0; y < 20; y += 3)
          for (let x = 0; x < 20; x += 3) {
            assert.equal(at(b, 0, x, y, 0), 3 * (x0 + x));
            assert.equal(at(b, 0, x, y, 1), 4 * (y0 + y));
          }
        const f = await first(Transforms.create(3).randomCrop(20).hflip(1), seed, src);
        for (let x = 0; x < 20; x++) assert.equal(at(f, 0, x, 5, 0), at(b, 0, 19 - x, 5, 0));
      }
    });
  }

  it('random crop with padding pads with zeros', async () => {
    let sawPad = false;
    for (let seed = 0; seed < 20 && !sawPad; seed++) {
      const b = await first(Transforms.create(3).resize(W, H).randomCrop(40, { padding: 8 }), seed, 'memory');
      sawPad = at(b, 0, 0, 20, 1) === 0 && at(b, 0, 1, 20, 1) === 0 && at(b, 0, 39, 20, 0) > 0;
      sawPad ||= at(b, 0, 20, 0, 0) === 0 && at(b, 0, 20, 0, 1) === 0;
    }
    assert.ok(sawPad, 'some seed puts padding in the window');
  });

  it('random-resized crop lands where its plan says (a linear gradient resamples exactly)', async () => {
    const tf = Transforms.create(3).randomResizedCrop(24);
    for (const seed of [4, 5, 6]) {
      const b = await first(tf, seed);
      const v = tf.plan(new Rng(seed).fork('sample:0:0'), W, H).views[0];
      assert.ok(v);
      const kx = W / v.sw;
      const ky = H / v.sh;
      for (const [ox, oy] of [
        [12, 12],
        [6, 18],
        [18, 6],
      ] as const) {
        const sx = (v.left + ox + 0.5) * kx - 0.5;
        const sy = (v.top + oy + 0.5) * ky - 0.5;
        assert.ok(Math.abs(at(b, 0, ox, oy, 0) - 3 * sx) <= 2.5, `R at ${ox},${oy}: ${at(b, 0, ox, oy, 0)} vs ${3 * sx}`);
        assert.ok(Math.abs(at(b, 0, ox, oy, 1) - 4 * sy) <= 2.5, `G at ${ox},${oy}: ${at(b, 0, ox, oy, 1)} vs ${4 * sy}`);
      }
    }
  });

  it('resizeShorter scales the shorter side; VGG jitter draws S in [min, max]', () => {
    const p = Transforms.create(3).resizeShorter(24).plan(null, W, H).views[0];
    assert.deepEqual(p && [p.w, p.h], [32, 24]);
    const seen = new Set<number>();
    const tf = Transforms.create(3).resizeShorter([256, 512]).randomCrop(224);
    for (let s = 0; s < 200; s++) seen.add(tf.plan(new Rng(s), 500, 375).views[0]?.sh ?? 0);
    assert.ok(Math.min(...seen) >= 256 && Math.max(...seen) <= 512 && seen.size > 100);
  });

  it('random-resized crop parameters follow torchvision (area 8–100 %, aspect 3/4–4/3)', () => {
    const rng = new Rng(9);
    for (let i = 0; i < 500; i++) {
      const c = rrcParams(() => rng.next(), 500, 375, [0.08, 1], [3 / 4, 4 / 3]);
      const area = (c.w * c.h) / (500 * 375);
      assert.ok(area >= 0.075 && area <= 1.0, `area ${area}`);
      assert.ok(c.w / c.h >= 0.74 && c.w / c.h <= 1.35, `aspect ${c.w / c.h}`);
      assert.ok(c.x >= 0 && c.y >= 0 && c.x + c.w <= 500 && c.y + c.h <= 375);
    }
    // No fitting crop in 10 tries: the centre crop with the aspect clamped.
    assert.deepEqual(
      rrcParams(() => 0.99, 100, 10, [0.9, 1], [1, 1]),
      { x: 45, y: 0, w: 10, h: 10 },
    );
  });
});

describe('test-time views', () => {
  it('10-crop gives 10 distinct 32×32 crops; mirrored crops mirror the opposite corner', async () => {
    const tf = Transforms.create(3).tenCrop(32);
    assert.equal(tf.views, 10);
    const b = await first(tf);
    assert.deepEqual(b.shape, [10, 3, 32, 32]);
    assert.equal(b.views, 10);
    const size = 3 * 32 * 32;
    const views = Array.from({ length: 10 }, (_, k) => b.x.subarray(k * size, (k + 1) * size).join(','));
    assert.equal(new Set(views).size, 10);
    // Corners of the unflipped crops: tl (0,0), tr (32,0), bl (0,16), br (32,16), centre (16,8).
    const corners = [
      [0, 0],
      [32, 0],
      [0, 16],
      [32, 16],
      [16, 8],
    ];
    corners.forEach(([x, y], k) => {
      assert.equal(at(b, k, 0, 0, 0), 3 * (x ?? 0));
      assert.equal(at(b, k, 0, 0, 1), 4 * (y ?? 0));
    });
    // View 5 is the flipped image's top-left: the mirror of the original top-right.
    for (let x = 0; x < 32; x++) assert.equal(at(b, 5, x, 3, 0), at(b, 1, 31 - x, 3, 0));
  });

  it('center / ten / multiscale recipes', () => {
    assert.equal(Transforms.eval('center', { size: 224, channels: 3 }).views, 1);
    assert.equal(Transforms.eval('ten', { size: 224, channels: 3 }).views, 10);
    const ms = Transforms.eval('multiscale', { size: 224, channels: 3 });
    assert.equal(ms.views, 3);
    const p = ms.plan(null, 500, 375);
    assert.deepEqual(
      p.views.map((v) => v.sh),
      [256, 288, 320],
    );
    assert.ok(p.views.every((v) => v.w === 224 && v.h === 224));
    assert.equal(Transforms.create(3).multiScale([256, 384], 224, { ten: true }).views, 20);
  });
});

describe('pixel transforms', () => {
  it('normalises with mean/std and folds PCA lighting into a per-image offset', () => {
    const tf = Transforms.create(3).resize(8, 8).lighting(0.1).normalize([0.5, 0.5, 0.5], [0.25, 0.25, 0.25]);
    const p = tf.plan(new Rng(1), 8, 8);
    const off = p.offset;
    assert.ok(off.some((o) => o !== 0));
    // Lighting is along the ImageNet eigenvectors: |offset| is small (alpha ~ 0.1 × eigval 0.2).
    assert.ok(Math.hypot(...off) < 4 * 0.1 * (IMAGENET_EIGVAL[0] ?? 0));
    for (let c = 0; c < 3; c++) {
      // (255/255 + off - 0.5) / 0.25
      assert.ok(Math.abs(255 * (p.scale[c] ?? 0) + (p.bias[c] ?? 0) - (1 + (off[c] ?? 0) - 0.5) / 0.25) < 1e-9);
    }
  });

  it('computes PCA lighting from data: the first eigenvector of gray-ish pixels is the diagonal', () => {
    const rng = new Rng(2);
    const data = new Uint8Array(3000);
    for (let i = 0; i < 1000; i++) {
      const v = rng.int(200);
      data.set([v + rng.int(20), v + rng.int(20), v + rng.int(20)], i * 3);
    }
    const { eigval, eigvec } = pcaLighting([{ data, width: 1000, height: 1, channels: 3 }]);
    assert.ok((eigval[0] ?? 0) > 5 * (eigval[1] ?? 0));
    const v0 = [eigvec[0] ?? 0, eigvec[3] ?? 0, eigvec[6] ?? 0].map(Math.abs);
    for (const x of v0) assert.ok(Math.abs(x - 1 / Math.sqrt(3)) < 0.05, `eigvec ${v0}`);
  });

  it('validates options with the expected/received shape', () => {
    assert.throws(() => Transforms.create(3).randomCrop(0), /Expected a positive integer for randomCrop size but received 0/);
    assert.throws(() => Transforms.create(3).hflip(2), /Expected a probability in \[0, 1\] for hflip p but received 2/);
    assert.throws(() => Transforms.create(3).normalize([0.5], [0.5]), /Expected 3 values each/);
    assert.throws(() => Transforms.create(3).randomResizedCrop(224, { scale: [0.5, 0.1] }), /randomResizedCrop scale/);
    assert.throws(() => Transforms.create(3).tenCrop(10).hflip(), /no geometric step after tenCrop/);
    assert.throws(() => Transforms.train('resnet' as 'vgg', { size: 224, channels: 3 }), /'alexnet', 'vgg'/);
  });

  it('is immutable and serialisable', () => {
    const a = Transforms.train('googlenet', { size: 64, channels: 3 });
    const b = a.hflip(0);
    assert.notEqual(a.steps.length, b.steps.length);
    const c = Transforms.fromSpec(JSON.parse(JSON.stringify(a.toSpec())));
    assert.deepEqual(c.plan(new Rng(3), 100, 80), a.plan(new Rng(3), 100, 80));
  });
});
