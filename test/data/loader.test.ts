// The loader: same seed ⇒ byte-identical batches whatever the worker count or concurrency;
// epochs reshuffle; last-batch policies; the raw uint8 layout matches the float one.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { generateSynthetic, Loader, openDataset, PixelDataset, Transforms } from '../../src/data/index.js';
import type { Dataset, Layout, LoaderOptions } from '../../src/data/index.js';

async function digest<L extends Layout>(ds: Dataset, tf: Transforms, o: LoaderOptions<L>, epoch = 0, recycle = false): Promise<string[]> {
  const l = new Loader<L>(ds, tf, o);
  const out: string[] = [];
  for await (const b of l.epoch(epoch)) {
    out.push(
      createHash('sha256')
        .update(new Uint8Array(b.x.buffer, b.x.byteOffset, b.x.byteLength))
        .update(new Uint8Array(b.labels.buffer))
        .digest('hex'),
    );
    if (recycle) l.recycle(b);
  }
  await l.close();
  return out;
}

const synthetic = async (): Promise<Awaited<ReturnType<typeof openDataset>>> =>
  openDataset('synthetic', { synthetic: { classes: 4, perClass: 40, size: 48, seed: 7 } });

describe('determinism', () => {
  it('files: same seed gives byte-identical batches with 0, 1 or 2 workers and any concurrency', async () => {
    const s = await synthetic();
    const tf = Transforms.train('googlenet', { size: 32, channels: 3 }).lighting();
    const base: LoaderOptions = { batchSize: 16, shuffle: true, seed: 11, dropLast: false, channels: 3 };
    const a = await digest(s.train, tf, { ...base, workers: 0, concurrency: 1 });
    const b = await digest(s.train, tf, { ...base, workers: 0, concurrency: 8 });
    const c = await digest(s.train, tf, { ...base, workers: 1 });
    const d = await digest(s.train, tf, { ...base, workers: 2, prefetch: 4 });
    assert.equal(a.length, Math.ceil(s.train.length / 16));
    assert.deepEqual(b, a);
    assert.deepEqual(c, a);
    assert.deepEqual(d, a);
    const e1 = await digest(s.train, tf, { ...base, workers: 0 }, 1);
    assert.notDeepEqual(e1, a, 'another epoch, another order and other augmentations');
    const other = await digest(s.train, tf, { ...base, seed: 12, workers: 0 });
    assert.notDeepEqual(other, a);
  });

  it('recycled batch memory gives the same batches (every byte is rewritten)', async () => {
    const s = await synthetic();
    const tf = Transforms.train('alexnet', { size: 32, channels: 3 });
    const base: LoaderOptions = { batchSize: 12, shuffle: true, seed: 3, dropLast: false, padLast: true, channels: 3 };
    for (const workers of [0, 2]) {
      const o = { ...base, workers };
      assert.deepEqual(await digest(s.train, tf, o, 0, true), await digest(s.train, tf, o), `workers ${workers}`);
    }
    const u8: LoaderOptions<'nhwc-u8'> = { ...base, workers: 0, layout: 'nhwc-u8' };
    assert.deepEqual(await digest(s.train, tf, u8, 0, true), await digest(s.train, tf, u8), 'nhwc-u8');
    // The memory really is reused: a recycled batch's buffer comes back as a later batch's.
    for (const workers of [0, 2]) {
      const l = new Loader(s.train, tf, { ...base, workers, prefetch: 0 });
      const first = await l.batch(0, 0);
      const buf = first.x.buffer;
      l.recycle(first);
      const again = await l.batch(0, 1);
      assert.equal(again.x.buffer, buf, `workers ${workers}`);
      await l.close();
    }
  });

  it('in-memory rows: identical across workers too', async () => {
    const n = 50;
    const data = new Uint8Array(new SharedArrayBuffer(n * 28 * 28));
    for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
    const ds = new PixelDataset({
      data,
      width: 28,
      height: 28,
      channels: 1,
      rows: Int32Array.from({ length: n }, (_, i) => i),
      labels: Int32Array.from({ length: n }, (_, i) => i % 10),
      name: 'mem',
    });
    const tf = Transforms.train('cifar', { size: 32, channels: 1 });
    const base: LoaderOptions = { batchSize: 8, shuffle: true, seed: 3, dropLast: true, channels: 1 };
    assert.deepEqual(await digest(ds, tf, { ...base, workers: 2 }), await digest(ds, tf, { ...base, workers: 0 }));
  });
});

describe('batches', () => {
  const n = 10;
  const data = new Uint8Array(n * 4 * 4 * 3).map((_, i) => i & 0xff);
  const ds = new PixelDataset({
    data,
    width: 4,
    height: 4,
    channels: 3,
    rows: Int32Array.from({ length: n }, (_, i) => i),
    labels: Int32Array.from({ length: n }, (_, i) => i),
    name: 'mem',
  });
  const tf = Transforms.create(3).resize(4, 4).normalize([0.5, 0.4, 0.3], [0.2, 0.25, 0.3]);

  it('shuffles every sample exactly once per epoch; drops, keeps or pads the last batch', async () => {
    const seen: number[] = [];
    const keep = new Loader(ds, tf, { batchSize: 4, shuffle: true, seed: 1, dropLast: false, channels: 3 });
    assert.equal(keep.batchesPerEpoch, 3);
    for await (const b of keep.epoch(0)) seen.push(...b.labels.subarray(0, b.n));
    assert.deepEqual(
      [...seen].sort((a, b) => a - b),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    assert.notDeepEqual(seen, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const drop = new Loader(ds, tf, { batchSize: 4, shuffle: false, seed: 1, dropLast: true, channels: 3 });
    assert.equal(drop.batchesPerEpoch, 2);
    const pad = new Loader(ds, tf, { batchSize: 4, shuffle: false, seed: 1, dropLast: false, padLast: true, channels: 3 });
    const last = await pad.batch(0, 2);
    assert.equal(last.n, 2);
    assert.deepEqual(last.shape, [4, 3, 4, 4]);
    assert.deepEqual([...last.labels], [8, 9, 0, 1]);
  });

  it('nhwc-u8 batches carry the same image as the normalised float ones', async () => {
    const f = await new Loader(ds, tf, { batchSize: 5, shuffle: true, seed: 2, dropLast: false, channels: 3 }).batch(0, 0);
    const u = await new Loader(ds, tf, { batchSize: 5, shuffle: true, seed: 2, dropLast: false, channels: 3, layout: 'nhwc-u8' }).batch(
      0,
      0,
    );
    assert.equal(u.layout, 'nhwc-u8');
    assert.deepEqual(u.shape, [5, 4, 4, 3]);
    assert.deepEqual([...u.labels], [...f.labels]);
    for (let i = 0; i < 5 * 16; i += 7) {
      for (let c = 0; c < 3; c++) {
        const model = ((u.x[i * 3 + c] ?? 0) / 255 + (u.offset[Math.floor(i / 16) * 3 + c] ?? 0) - (u.mean[c] ?? 0)) / (u.std[c] ?? 1);
        const img = Math.floor(i / 16);
        const p = i % 16;
        assert.ok(Math.abs(model - (f.x[img * 48 + c * 16 + p] ?? NaN)) < 1e-5);
      }
    }
  });

  it('validates options', () => {
    assert.throws(
      () => new Loader(ds, tf, { batchSize: 0, shuffle: false, seed: 0, dropLast: false, channels: 3 }),
      /Expected an integer >= 1 for batchSize but received 0/,
    );
    assert.throws(
      () => new Loader(ds, tf, { batchSize: 1, shuffle: false, seed: 0, dropLast: false, channels: 1 }),
      /a transform for 1 channel/,
    );
  });
});

describe('synthetic dataset', () => {
  it('is deterministic, split into train/val, and reused when complete', async () => {
    const o = { classes: 3, perClass: 10, size: 32, seed: 1 };
    const a = await generateSynthetic(o);
    const b = await generateSynthetic(o);
    assert.equal(b.generated, false);
    assert.equal(a.dir, b.dir);
    const s = await openDataset('synthetic', { synthetic: o });
    assert.deepEqual(s.classes, ['circle', 'square', 'triangle']);
    assert.equal(s.train.length + s.val.length, 30);
    assert.equal(s.val.length, 6);
    assert.match(s.source, /^synthetic:/);
  });

  it('renders once under concurrent runs: the first complete folder is kept, not replaced under its reader', async () => {
    const dir = path.join(os.tmpdir(), `ilsvrc-synthetic-race-${process.pid}`);
    rmSync(dir, { recursive: true, force: true });
    try {
      const o = { classes: 2, perClass: 30, size: 16, seed: 3, dir };
      let firstInode: number | undefined;
      await Promise.all(
        [0, 1, 2].map(async () => {
          await generateSynthetic(o);
          firstInode ??= statSync(dir).ino; // the folder a run would now be reading
        }),
      );
      assert.equal(statSync(dir).ino, firstInode);
      assert.equal(readdirSync(path.join(dir, 'train', 'circle')).length + readdirSync(path.join(dir, 'val', 'circle')).length, 30);
      assert.deepEqual(
        readdirSync(path.dirname(dir)).filter((f) => f.startsWith(`${path.basename(dir)}.`)),
        [],
        'no partial or stale folder left',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is not solvable by mean colour (nearest class-mean colour is near chance)', async () => {
    const s = await synthetic();
    const tf = Transforms.create(3).resize(16, 16);
    const meanColour = async (ds: Dataset): Promise<{ m: number[][]; y: number[] }> => {
      const l = new Loader(ds, tf, { batchSize: 32, shuffle: false, seed: 0, dropLast: false, channels: 3 });
      const m: number[][] = [];
      const y: number[] = [];
      for await (const b of l.epoch(0)) {
        for (let i = 0; i < b.n; i++) {
          m.push([0, 1, 2].map((c) => b.x.subarray(i * 768 + c * 256, i * 768 + (c + 1) * 256).reduce((a, v) => a + v, 0) / 256));
          y.push(b.labels[i] ?? 0);
        }
      }
      return { m, y };
    };
    const tr = await meanColour(s.train);
    const va = await meanColour(s.val);
    const k = s.classes.length;
    const centroid = Array.from({ length: k }, (_, c) =>
      [0, 1, 2].map((j) => {
        const rows = tr.m.filter((_, i) => tr.y[i] === c);
        return rows.reduce((a, r) => a + (r[j] ?? 0), 0) / rows.length;
      }),
    );
    let right = 0;
    va.m.forEach((r, i) => {
      const d = centroid.map((cm) => cm.reduce((a, v, j) => a + (v - (r[j] ?? 0)) ** 2, 0));
      if (d.indexOf(Math.min(...d)) === va.y[i]) right++;
    });
    assert.ok(right / va.m.length < 0.5, `mean-colour accuracy ${right}/${va.m.length}`);
  });
});

describe('worker threads hand out memory the session can use', () => {
  it('every dataset kind: batches with 2 workers are byte-identical to 0 workers and backed by plain ArrayBuffers (ONNX Runtime rejects shared memory)', async () => {
    const { mkdtemp, mkdir, rm, writeFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const sharp = (await import('sharp')).default;
    const { encodeCifar, writeIdx } = await import('../../src/data/index.js');
    const dir = await mkdtemp(join(tmpdir(), 'ilsvrc-loader-kinds-'));
    try {
      const n = 24;
      const px = (k: number, size: number, ch: number): Uint8Array =>
        Uint8Array.from({ length: size * size * ch }, (_, i) => (k * 53 + i * 7) & 0xff);
      // IDX (gzip) and CIFAR-10 binary batches.
      const idxDir = join(dir, 'idx');
      await mkdir(idxDir);
      for (const [p, m] of [
        ['train', n],
        ['t10k', 8],
      ] as const) {
        const imgs = new Uint8Array(m * 28 * 28);
        for (let k = 0; k < m; k++) imgs.set(px(k, 28, 1), k * 784);
        await writeIdx(join(idxDir, `${p}-images-idx3-ubyte.gz`), { dims: [m, 28, 28], data: imgs });
        await writeIdx(join(idxDir, `${p}-labels-idx1-ubyte.gz`), { dims: [m], data: Uint8Array.from({ length: m }, (_, k) => k % 10) });
      }
      const cifarDir = join(dir, 'cifar');
      await mkdir(cifarDir);
      const rec = (m: number) => {
        const images = new Uint8Array(m * 3072);
        for (let k = 0; k < m; k++) images.set(px(k, 32, 3), k * 3072);
        return encodeCifar({ labels: Uint8Array.from({ length: m }, (_, k) => k % 10), images });
      };
      await writeFile(join(cifarDir, 'data_batch_1.bin'), rec(n));
      await writeFile(join(cifarDir, 'test_batch.bin'), rec(8));
      // An ImageFolder of JPEG and PNG files.
      const folder = join(dir, 'folder');
      for (let k = 0; k < n; k++) {
        const cls = join(folder, `c${k % 3}`);
        await mkdir(cls, { recursive: true });
        const img = sharp(Buffer.from(px(k, 40, 3)), { raw: { width: 40, height: 40, channels: 3 } });
        await (k % 2 ? img.png().toFile(join(cls, `${k}.png`)) : img.jpeg().toFile(join(cls, `${k}.jpg`)));
      }
      const kinds: [string, Dataset, 1 | 3][] = [
        [
          'synthetic (in-memory pixels)',
          (await openDataset('synthetic', { synthetic: { classes: 3, perClass: 10, size: 32, seed: 7 } })).train,
          3,
        ],
        ['idx', (await openDataset(`idx:${idxDir}`)).train, 1],
        ['cifar', (await openDataset(`cifar:${cifarDir}`)).train, 3],
        ['image folder', (await openDataset(folder, { valFraction: 0.2 })).train, 3],
      ];
      for (const [name, ds, channels] of kinds) {
        const tf = Transforms.train('googlenet', { size: 24, channels });
        const base: LoaderOptions = { batchSize: 8, shuffle: true, seed: 4, dropLast: false, padLast: true, channels };
        const l = new Loader(ds, tf, { ...base, workers: 2 });
        const got: string[] = [];
        for await (const b of l.epoch(0)) {
          assert.ok(b.x.buffer instanceof ArrayBuffer && !(b.x.buffer instanceof SharedArrayBuffer), `${name}: a plain ArrayBuffer`);
          got.push(
            createHash('sha256')
              .update(new Uint8Array(b.x.buffer, b.x.byteOffset, b.x.byteLength))
              .update(new Uint8Array(b.labels.buffer))
              .digest('hex'),
          );
          l.recycle(b);
        }
        await l.close();
        assert.deepEqual(got, await digest(ds, tf, { ...base, workers: 0 }), name);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
