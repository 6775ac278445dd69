// Decoding real files the test writes: known pixel values through the whole loader, awkward
// formats (gray, CMYK, EXIF-rotated), and bad files that must be skipped and reported.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import {
  UsageError,
  Loader,
  openDataset,
  openImageFolder,
  readClassIndex,
  Transforms,
  writeClassIndex,
  probeImage,
} from '../../src/data/index.js';
import type { Dataset } from '../../src/data/index.js';
import { FileDataset } from '../../src/data/index.js';

let root: string;

function rgb(
  width: number,
  height: number,
  f: (x: number, y: number) => [number, number, number],
): { data: Buffer; info: { width: number; height: number; channels: 3 } } {
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.set(f(x, y), (y * width + x) * 3);
  return { data, info: { width, height, channels: 3 } };
}

const raw = (r: ReturnType<typeof rgb>): ReturnType<typeof sharp> => sharp(r.data, { raw: r.info });

/** Decodes one file through a Loader with a 0–255, 3-channel (or 1) identity-sized transform. */
async function decode(file: string, w: number, h: number, channels: 1 | 3 = 3): Promise<Float32Array> {
  const ds = new FileDataset([file], Int32Array.of(0));
  const l = new Loader(ds, Transforms.create(channels).resize(w, h), { batchSize: 1, shuffle: false, seed: 0, dropLast: false, channels });
  for await (const b of l.epoch(0)) return b.x;
  throw new Error('no batch');
}

/** Pixel (x, y) channel c of a single NCHW image. */
const px = (x: Float32Array, w: number, h: number, xx: number, yy: number, c: number): number => x[c * w * h + yy * w + xx] ?? NaN;

before(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'ilsvrc-data-files-'));
});
after(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

describe('decoding files', () => {
  it('reads exact PNG pixel values', async () => {
    const img = rgb(4, 3, (x, y) => [x * 60, y * 100, 7]);
    const f = path.join(root, 'exact.png');
    await raw(img).png().toFile(f);
    const x = await decode(f, 4, 3);
    for (let y = 0; y < 3; y++) {
      for (let xx = 0; xx < 4; xx++) {
        assert.equal(px(x, 4, 3, xx, y, 0), xx * 60);
        assert.equal(px(x, 4, 3, xx, y, 1), y * 100);
        assert.equal(px(x, 4, 3, xx, y, 2), 7);
      }
    }
  });

  it('reads a flat JPEG within JPEG error', async () => {
    const f = path.join(root, 'flat.jpg');
    await raw(rgb(16, 16, () => [200, 100, 50]))
      .jpeg({ quality: 95 })
      .toFile(f);
    const x = await decode(f, 16, 16);
    for (const [c, v] of [200, 100, 50].entries())
      assert.ok(Math.abs(px(x, 16, 16, 8, 8, c) - v) <= 3, `channel ${c}: ${px(x, 16, 16, 8, 8, c)}`);
  });

  it('feeds a grayscale PNG as 1 channel exactly and as 3 replicated channels', async () => {
    const f = path.join(root, 'gray.png');
    const g = Buffer.from([0, 50, 100, 150, 200, 250]);
    await sharp(g, { raw: { width: 3, height: 2, channels: 1 } })
      .png()
      .toFile(f);
    const one = await decode(f, 3, 2, 1);
    assert.deepEqual([...one], [0, 50, 100, 150, 200, 250]);
    const three = await decode(f, 3, 2, 3);
    assert.deepEqual([...three], [...g, ...g, ...g]);
  });

  it('turns an RGB image into luma for 1 channel', async () => {
    const f = path.join(root, 'red.png');
    await raw(rgb(2, 2, () => [255, 0, 0]))
      .png()
      .toFile(f);
    const x = await decode(f, 2, 2, 1);
    assert.ok(Math.abs((x[0] ?? 0) - 76) <= 2, `luma of red ${x[0]}`);
  });

  it('converts a CMYK JPEG to RGB', async () => {
    const f = path.join(root, 'cmyk.jpg');
    await raw(rgb(8, 8, (xx) => (xx < 4 ? [255, 0, 0] : [0, 0, 255])))
      .toColourspace('cmyk')
      .jpeg({ quality: 95 })
      .toFile(f);
    assert.equal((await sharp(f).metadata()).space, 'cmyk');
    const x = await decode(f, 8, 8);
    assert.ok(px(x, 8, 8, 1, 4, 0) > 180 && px(x, 8, 8, 1, 4, 2) < 60, 'left is red');
    // Pure blue is outside the CMYK gamut; it comes back a dull blue.
    const b = [0, 1, 2].map((c) => px(x, 8, 8, 6, 4, c));
    assert.ok((b[2] ?? 0) > (b[0] ?? 0) + 80 && (b[2] ?? 0) > (b[1] ?? 0) + 50, `right is blue: ${b}`);
  });

  it('applies the EXIF orientation (probe and decode agree)', async () => {
    const f = path.join(root, 'rotated.jpg');
    // Stored 16×8, left red / right blue; orientation 6 displays it rotated 90° clockwise: 8×16, red on top.
    await raw(rgb(16, 8, (xx) => (xx < 8 ? [255, 0, 0] : [0, 0, 255])))
      .jpeg({ quality: 95 })
      .withMetadata({ orientation: 6 })
      .toFile(f);
    const head = probeImage(await fs.readFile(f));
    assert.deepEqual(head && [head.width, head.height, head.orientation], [8, 16, 6]);
    const x = await decode(f, 8, 16);
    assert.ok(px(x, 8, 16, 4, 2, 0) > 200 && px(x, 8, 16, 4, 2, 2) < 50, 'top is red');
    assert.ok(px(x, 8, 16, 4, 13, 2) > 200 && px(x, 8, 16, 4, 13, 0) < 50, 'bottom is blue');
  });
});

describe('bad data', () => {
  let dir: string;
  before(async () => {
    dir = path.join(root, 'bad');
    const good = path.join(dir, 'good');
    const bad = path.join(dir, 'mixed');
    await fs.mkdir(good, { recursive: true });
    await fs.mkdir(bad, { recursive: true });
    for (let i = 0; i < 4; i++)
      await raw(rgb(20, 20, () => [i * 50, 0, 0]))
        .jpeg()
        .toFile(path.join(good, `${i}.jpg`));
    const jpeg = await raw(rgb(64, 64, (x, y) => [x * 4, y * 4, (x * y) % 256]))
      .jpeg()
      .toBuffer();
    await fs.writeFile(path.join(bad, 'ok.jpg'), jpeg);
    await fs.writeFile(path.join(bad, 'truncated.jpg'), jpeg.subarray(0, jpeg.length >> 1));
    const corrupt = Buffer.from(jpeg);
    for (let i = 2; i < 40; i++) corrupt[i] = (i * 37) & 0xff;
    await fs.writeFile(path.join(bad, 'corrupt.jpg'), corrupt);
    await fs.writeFile(path.join(bad, 'zero.jpg'), Buffer.alloc(0));
    await fs.writeFile(path.join(bad, 'text.jpg'), 'this is not an image\n');
    // A PNG header claiming 100000×100000 pixels: refused before anything is decoded.
    const bomb = await raw(rgb(2, 2, () => [0, 0, 0]))
      .png()
      .toBuffer();
    bomb.writeUInt32BE(100000, 16);
    bomb.writeUInt32BE(100000, 20);
    await fs.writeFile(path.join(bad, 'bomb.png'), bomb);
    await fs.writeFile(path.join(bad, 'notes.txt'), 'ignored: not an image extension');
  });

  it('skips (never replaces) every bad file: label -1, zero pixels; counts and reports it, and continues', async () => {
    const s = await openImageFolder(dir, { valFraction: 0.2, seed: 1 });
    const paths = [...(s.train.descriptor as { paths: string[] }).paths, ...(s.val.descriptor as { paths: string[] }).paths];
    const all = new FileDataset(
      paths,
      Int32Array.from(paths, (_, i) => i),
    );
    assert.equal(all.length, 10, 'notes.txt is not listed');
    for (const workers of [0, 2]) {
      const l = new Loader(all, Transforms.create(3).resize(8, 8), {
        batchSize: 4,
        shuffle: true,
        seed: 3,
        dropLast: false,
        channels: 3,
        workers,
      });
      const rows: { label: number; index: number; zero: boolean }[] = [];
      let unreadable = 0;
      for await (const b of l.epoch(0)) {
        assert.equal(b.shape[0], b.n);
        unreadable += b.unreadable;
        for (let i = 0; i < b.n; i++)
          rows.push({ label: b.labels[i]!, index: b.indices[i]!, zero: b.x.subarray(i * 192, (i + 1) * 192).every((v) => v === 0) });
      }
      await l.close();
      assert.equal(rows.length, 10, 'every item has its row, once');
      assert.deepEqual(
        rows.map((r) => r.index).sort((a, b) => a - b),
        [...Array(10).keys()],
      );
      const bad = rows.filter((r) => r.label === -1);
      assert.equal(bad.length, 5, `workers ${workers}`);
      assert.equal(unreadable, 5);
      assert.ok(
        bad.every((r) => r.zero),
        'an unreadable row has zero pixels',
      );
      // A readable row carries its own image's label: nothing was put in a bad item's place.
      assert.ok(
        rows
          .filter((r) => r.label !== -1)
          .every((r) => r.label === r.index && !/(bomb|corrupt|text|truncated|zero)\./.test(paths[r.index]!)),
      );
      assert.deepEqual(bad.map((r) => path.basename(paths[r.index]!)).sort(), [
        'bomb.png',
        'corrupt.jpg',
        'text.jpg',
        'truncated.jpg',
        'zero.jpg',
      ]);
      assert.equal(l.skipped(0).length, 5);
    }
    const l = new Loader(all, Transforms.create(3).resize(8, 8), { batchSize: 4, shuffle: true, seed: 3, dropLast: false, channels: 3 });
    for await (const b of l.epoch(0)) void b;
    const skipped = l.skipped();
    assert.deepEqual(skipped.map((s) => path.basename(s.path)).sort(), [
      'bomb.png',
      'corrupt.jpg',
      'text.jpg',
      'truncated.jpg',
      'zero.jpg',
    ]);
    const reason = (name: string): string => skipped.find((s) => path.basename(s.path) === name)?.reason ?? '';
    assert.match(reason('zero.jpg'), /empty/);
    assert.match(reason('bomb.png'), /too many pixels/);
    // libvips' message is per thread and sometimes lost under concurrency ("Unknown error"); the skip is what matters.
    assert.match(reason('truncated.jpg'), /premature end|truncated|cannot decode/i);
  });

  it('limitInputPixels skips large real images too', async () => {
    const f = path.join(root, 'big.png');
    await raw(rgb(300, 200, () => [1, 2, 3]))
      .png()
      .toFile(f);
    const ok = path.join(root, 'small.png');
    await raw(rgb(10, 10, () => [1, 2, 3]))
      .png()
      .toFile(ok);
    const l = new Loader(new FileDataset([f, ok], Int32Array.of(0, 1)), Transforms.create(3).resize(8, 8), {
      batchSize: 2,
      shuffle: false,
      seed: 0,
      dropLast: false,
      channels: 3,
      limitInputPixels: 10000,
    });
    for await (const b of l.epoch(0)) assert.deepEqual([...b.labels], [-1, 1]);
    assert.equal(l.skipped().length, 1);
  });

  it('fails clearly when every image is bad', async () => {
    const f = path.join(root, 'only-text.jpg');
    await fs.writeFile(f, 'hello');
    const l = new Loader(new FileDataset([f], Int32Array.of(0)), Transforms.create(3).resize(8, 8), {
      batchSize: 1,
      shuffle: false,
      seed: 0,
      dropLast: false,
      channels: 3,
    });
    await assert.rejects(async () => {
      for await (const b of l.epoch(0)) void b;
    }, /at least one readable image/);
  });

  it('rejects an empty class folder, a folder without classes, and a missing path', async () => {
    const empty = path.join(root, 'empty-class');
    await fs.mkdir(path.join(empty, 'a'), { recursive: true });
    await fs.mkdir(path.join(empty, 'b'), { recursive: true });
    await raw(rgb(4, 4, () => [0, 0, 0]))
      .png()
      .toFile(path.join(empty, 'a', 'x.png'));
    await assert.rejects(openDataset(empty), (e: unknown) => e instanceof UsageError && /class folder .*b but found none/.test(e.message));
    const none = path.join(root, 'no-classes');
    await fs.mkdir(none, { recursive: true });
    await assert.rejects(openDataset(none), /one sub-folder per class .* but found no class folders/);
    await assert.rejects(openDataset(path.join(root, 'missing')), /does not exist/);
  });

  it('rejects an empty dataset in the loader', () => {
    const empty: Dataset = new FileDataset([], new Int32Array(0));
    assert.throws(
      () => new Loader(empty, Transforms.create(3).resize(4, 4), { batchSize: 1, shuffle: false, seed: 0, dropLast: false, channels: 3 }),
      /at least one image/,
    );
  });
});

describe('ImageFolder layout', () => {
  it('uses train/ and val/ when present and round-trips the class index', async () => {
    const d = path.join(root, 'tv');
    for (const split of ['train', 'val']) {
      for (const c of ['cat', 'dog']) {
        await fs.mkdir(path.join(d, split, c), { recursive: true });
        await raw(rgb(4, 4, () => [0, 0, 0]))
          .png()
          .toFile(path.join(d, split, c, '1.png'));
      }
    }
    await raw(rgb(4, 4, () => [0, 0, 0]))
      .png()
      .toFile(path.join(d, 'train', 'dog', '2.png'));
    const s = await openDataset(d);
    assert.deepEqual(s.classes, ['cat', 'dog']);
    assert.equal(s.train.length, 3);
    assert.equal(s.val.length, 2);
    assert.deepEqual(
      [0, 1, 2].map((i) => s.train.label(i)),
      [0, 1, 1],
    );
    const idx = path.join(root, 'ckpt', 'classes.json');
    await writeClassIndex(idx, s.classes);
    assert.deepEqual(await readClassIndex(idx), ['cat', 'dog']);
  });

  it('splits a flat folder per class with a seed', async () => {
    const d = path.join(root, 'flat');
    for (const c of ['a', 'b']) {
      await fs.mkdir(path.join(d, c), { recursive: true });
      for (let i = 0; i < 10; i++)
        await raw(rgb(4, 4, () => [i, 0, 0]))
          .png()
          .toFile(path.join(d, c, `${i}.png`));
    }
    const s1 = await openDataset(d, { valFraction: 0.2, seed: 5 });
    const s2 = await openDataset(d, { valFraction: 0.2, seed: 5 });
    assert.equal(s1.val.length, 4);
    assert.equal(s1.train.length, 16);
    assert.deepEqual(
      [0, 1, 2, 3].map((i) => s1.val.name(i)),
      [0, 1, 2, 3].map((i) => s2.val.name(i)),
    );
    assert.deepEqual(
      [0, 1, 2, 3].map((i) => s1.val.label(i)),
      [0, 0, 1, 1],
    );
  });
});
