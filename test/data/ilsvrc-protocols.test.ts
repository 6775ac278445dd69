/**
 * The geometry of GoogLeNet's 144 test crops (Szegedy et al. 2014, Sec. 7) as planned for one
 * image: 4 scales × 3 squares × (4 corners + centre + the square resized) × 2 mirrors, every window
 * inside its resized image; and the views of VGG's dense evaluation (the whole image and its mirror).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Transforms } from '../../src/data/index.js';

test('googlenet: 144 views of 224 px from a landscape and a portrait image, squares across the longer side', () => {
  const tf = Transforms.eval('googlenet', { size: 224, channels: 3 });
  assert.equal(tf.views, 144);
  for (const [W, H] of [
    [500, 375],
    [300, 400],
  ] as const) {
    const views = tf.plan(null, W, H).views;
    assert.equal(views.length, 144);
    assert.equal(views.filter((v) => v.flip).length, 72);
    for (const v of views) {
      assert.deepEqual([v.w, v.h], [224, 224]);
      assert.ok(v.left >= 0 && v.top >= 0 && v.left + v.w <= v.sw && v.top + v.h <= v.sh, JSON.stringify(v));
    }
    const landscape = W > H;
    // Crops of the resized image: shorter side S ∈ {256, 288, 320, 352}; the squares resized to 224
    // all come from one resize (shorter side 224), whatever S.
    const sizes = [...new Set(views.map((v) => `${v.sw}x${v.sh}`))].sort();
    const expected = [256, 288, 320, 352, 224]
      .map((S) => (landscape ? `${Math.round((W * S) / H)}x${S}` : `${S}x${Math.round((H * S) / W)}`))
      .sort();
    assert.deepEqual(sizes, expected);
    // At S = 256 (landscape 500×375 → 341×256): squares at x 0, 43, 85; in each, crops at 0, 16, 32.
    const at256 = views.filter((v) => Math.min(v.sw, v.sh) === 256 && !v.flip);
    assert.equal(at256.length, 15);
    const along = (v: (typeof views)[number]): number => (landscape ? v.left : v.top);
    const across = (v: (typeof views)[number]): number => (landscape ? v.top : v.left);
    const span = Math.round((Math.max(W, H) * 256) / Math.min(W, H)) - 256;
    const squares = [0, Math.round(span / 2), span];
    assert.deepEqual(
      [...new Set(at256.map(along))].sort((a, b) => a - b),
      [...new Set(squares.flatMap((o) => [o, o + 16, o + 32]))].sort((a, b) => a - b),
    );
    assert.deepEqual(
      [...new Set(at256.map(across))].sort((a, b) => a - b),
      [0, 16, 32],
    );
    // The square resized: 224 × 224 of the shorter-side-224 image, at the squares' scaled offsets.
    const whole = views.filter((v) => Math.min(v.sw, v.sh) === 224 && !v.flip);
    assert.equal(whole.length, 12);
    assert.ok(whole.every((v) => across(v) === 0));
  }
});

test('ten: AlexNet’s corners are those of the central 256 × 256 square, not of the whole image', () => {
  const views = Transforms.eval('ten', { size: 224, channels: 3 }).plan(null, 500, 375).views;
  assert.equal(views.length, 10);
  // 500×375 → 341×256; the square starts at x = round((341.3 − 256) / 2) = 43.
  assert.deepEqual(
    [...new Set(views.map((v) => v.left))].sort((a, b) => a - b),
    [43, 59, 75],
  );
  assert.deepEqual(
    [...new Set(views.map((v) => v.top))].sort((a, b) => a - b),
    [0, 16, 32],
  );
  assert.ok(views.every((v) => v.sw === 341 && v.sh === 256 && v.w === 224));
});

test('dense: the whole image at shorter side Q and its mirror, any aspect ratio', () => {
  const tf = Transforms.dense(256, { channels: 3 });
  assert.equal(tf.views, 2);
  const p = tf.plan(null, 500, 375);
  assert.deepEqual(p.views, [
    { sw: 341, sh: 256, left: 0, top: 0, w: 341, h: 256, flip: false },
    { sw: 341, sh: 256, left: 0, top: 0, w: 341, h: 256, flip: true },
  ]);
  assert.deepEqual(tf.outputSize(300, 400), [341, 256]);
  assert.throws(
    () => Transforms.dense(256, { channels: 3 }).centerCrop(224),
    /Expected no geometric step after tenCrop\/multiScale\/withMirror\/googlenetCrops/,
  );
  assert.throws(
    () => Transforms.create(3).googlenetCrops([200], 224),
    /Expected scales of at least the crop size 224 for googlenetCrops scales but received \[200\]/,
  );
});
