// IDX and CIFAR readers on files the test writes, and on Debian's Fashion-MNIST when installed.
import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  encodeCifar,
  FASHION_MNIST_CLASSES,
  Loader,
  openDataset,
  parseIdx,
  encodeIdx,
  Transforms,
  writeIdx,
} from '../../src/data/index.js';
import { idxLabels } from '../../src/data/idx.js';
import type { PixelDataset } from '../../src/data/index.js';

let root: string;
before(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'ilsvrc-data-fmt-'));
});
after(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

describe('IDX', () => {
  it('round-trips raw and gzip files and opens a folder as train/t10k', async () => {
    const dir = path.join(root, 'mnist');
    await fs.mkdir(dir);
    const img = (n: number, k: number): Uint8Array => Uint8Array.from({ length: n * 28 * 28 }, (_, i) => (i * 7 + k) & 0xff);
    await writeIdx(path.join(dir, 'train-images-idx3-ubyte.gz'), { dims: [5, 28, 28], data: img(5, 1) });
    await writeIdx(path.join(dir, 'train-labels-idx1-ubyte.gz'), { dims: [5], data: Uint8Array.of(0, 1, 2, 9, 9) });
    await writeIdx(path.join(dir, 't10k-images-idx3-ubyte'), { dims: [2, 28, 28], data: img(2, 3) });
    await writeIdx(path.join(dir, 't10k-labels-idx1-ubyte'), { dims: [2], data: Uint8Array.of(4, 5) });
    const s = await openDataset(`idx:${dir}`);
    assert.equal(s.channels, 1);
    assert.deepEqual(s.classes, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    assert.equal(s.train.length, 5);
    assert.equal(s.val.length, 2);
    assert.equal(s.train.label(3), 9);
    assert.deepEqual([...(s.val as PixelDataset).pixels(1).subarray(0, 4)], [...img(2, 3).subarray(784, 788)]);
    // Through the loader at 28 px with no resize: exact values.
    const l = new Loader(s.val, Transforms.create(1).resize(28, 28), {
      batchSize: 2,
      shuffle: false,
      seed: 0,
      dropLast: false,
      channels: 1,
    });
    for await (const b of l.epoch(0)) {
      assert.deepEqual(b.shape, [2, 1, 28, 28]);
      assert.deepEqual([...b.x.subarray(784, 790)], [...img(2, 3).subarray(784, 790)]);
    }
  });

  it('reads int16 and int32 label files (IDX types 0x0b, 0x0c, big-endian) for more than 256 classes', async () => {
    const dir = path.join(root, 'wide');
    await fs.mkdir(dir);
    // Written byte by byte as the format defines, not by our encoder.
    const labelFile = (type: number, values: number[]): Buffer => {
      const size = type === 0x0b ? 2 : 4;
      const b = Buffer.alloc(8 + size * values.length);
      b.writeUInt8(type, 2);
      b.writeUInt8(1, 3);
      b.writeUInt32BE(values.length, 4);
      values.forEach((v, i) => (size === 2 ? b.writeInt16BE(v, 8 + 2 * i) : b.writeInt32BE(v, 8 + 4 * i)));
      return b;
    };
    const pixels = (n: number) => ({ dims: [n, 4, 4], data: new Uint8Array(n * 16).fill(9) });
    await writeIdx(path.join(dir, 'train-images-idx3-ubyte'), pixels(3));
    await fs.writeFile(path.join(dir, 'train-labels-idx1-ubyte'), labelFile(0x0c, [0, 70000, 9999]));
    await writeIdx(path.join(dir, 't10k-images-idx3-ubyte'), pixels(2));
    await fs.writeFile(path.join(dir, 't10k-labels-idx1-ubyte'), labelFile(0x0b, [300, 1]));
    const s = await openDataset(`idx:${dir}`);
    assert.equal(s.classes.length, 70001);
    assert.deepEqual(
      [0, 1, 2].map((i) => s.train.label(i)),
      [0, 70000, 9999],
    );
    assert.deepEqual(
      [0, 1].map((i) => s.val.label(i)),
      [300, 1],
    );
    // Our encoder picks the smallest type and writes the same bytes.
    assert.ok(Buffer.from(encodeIdx(idxLabels([0, 70000, 9999]))).equals(labelFile(0x0c, [0, 70000, 9999])));
    assert.ok(Buffer.from(encodeIdx(idxLabels([300, 1]))).equals(labelFile(0x0b, [300, 1])));
    await fs.writeFile(path.join(dir, 't10k-labels-idx1-ubyte'), labelFile(0x0b, [-2, 1]));
    await assert.rejects(openDataset(`idx:${dir}`), /Expected labels of 0 or more in .*t10k-labels-idx1-ubyte but label 0 is -2/);
    await fs.writeFile(path.join(dir, 't10k-images-idx3-ubyte'), labelFile(0x0c, [1, 2]));
    await assert.rejects(openDataset(`idx:${dir}`), /Expected 3 dimensions|Expected IDX type 0x08 \(uint8 pixels\)/);
  });

  it('reports a bad header and a wrong length', () => {
    assert.throws(() => parseIdx(Uint8Array.of(1, 2, 3, 4), 'x.idx'), /Expected an IDX file .* in x.idx/);
    const good = encodeIdx({ dims: [2, 2], data: Uint8Array.of(1, 2, 3, 4) });
    assert.throws(() => parseIdx(good.subarray(0, good.length - 1), 'y.idx'), /Expected 4 bytes of data .* but found 3/);
  });
});

describe('CIFAR', () => {
  it('reads CIFAR-10 planar records into HWC pixels with class names', async () => {
    const dir = path.join(root, 'cifar10');
    await fs.mkdir(dir);
    const n = 3;
    const images = new Uint8Array(n * 3072);
    for (let i = 0; i < images.length; i++) images[i] = (i * 13) & 0xff;
    const labels = Uint8Array.of(3, 0, 7);
    await fs.writeFile(path.join(dir, 'data_batch_1.bin'), encodeCifar({ labels, images }));
    await fs.writeFile(path.join(dir, 'test_batch.bin'), encodeCifar({ labels: labels.subarray(0, 1), images: images.subarray(0, 3072) }));
    const names = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
    await fs.writeFile(path.join(dir, 'batches.meta.txt'), names.join('\n') + '\n');
    // The file itself is planar: record 0, R of pixel 5 at byte 1 + 5, G at 1 + 1024 + 5.
    const bytes = await fs.readFile(path.join(dir, 'data_batch_1.bin'));
    assert.equal(bytes[0], 3);
    assert.equal(bytes[1 + 1024 + 5], images[5 * 3 + 1]);
    const s = await openDataset(`cifar:${dir}`);
    assert.deepEqual(s.classes, names);
    assert.equal(s.train.length, 3);
    assert.equal(s.val.length, 1);
    assert.deepEqual(
      [0, 1, 2].map((i) => s.train.label(i)),
      [3, 0, 7],
    );
    assert.deepEqual([...(s.train as PixelDataset).pixels(2)], [...images.subarray(2 * 3072, 3 * 3072)]);
  });

  it('reads CIFAR-100 (coarse + fine label bytes) with the fine label', async () => {
    const dir = path.join(root, 'cifar100');
    await fs.mkdir(dir);
    const rec = { labels: Uint8Array.of(42, 99), images: new Uint8Array(2 * 3072).fill(9) };
    await fs.writeFile(path.join(dir, 'train.bin'), encodeCifar(rec, Uint8Array.of(1, 2)));
    await fs.writeFile(path.join(dir, 'test.bin'), encodeCifar(rec, Uint8Array.of(1, 2)));
    const s = await openDataset(`cifar:${dir}`);
    assert.equal(s.classes.length, 100);
    assert.deepEqual([s.train.label(0), s.train.label(1)], [42, 99]);
  });
});

const FASHION = '/usr/share/datasets/fashion-mnist';
describe('Debian Fashion-MNIST', () => {
  const present = existsSync(path.join(FASHION, 'train-images-idx3-ubyte.gz'));
  it(
    'has 60,000 / 10,000 images, 6,000 / 1,000 per class',
    { skip: present ? false : `not installed at ${FASHION} (apt-get install dataset-fashion-mnist)` },
    async () => {
      const s = await openDataset(`idx:${FASHION}`);
      assert.deepEqual(s.classes, FASHION_MNIST_CLASSES);
      assert.equal(s.train.length, 60000);
      assert.equal(s.val.length, 10000);
      const hist = (d: typeof s.train): number[] => {
        const h = new Array<number>(10).fill(0);
        for (let i = 0; i < d.length; i++) h[d.label(i)] = (h[d.label(i)] ?? 0) + 1;
        return h;
      };
      assert.deepEqual(hist(s.train), new Array<number>(10).fill(6000));
      assert.deepEqual(hist(s.val), new Array<number>(10).fill(1000));
      const d = (s.train as PixelDataset).descriptor;
      assert.deepEqual([d.width, d.height, d.channels], [28, 28, 1]);
      // Through the CIFAR-style augmentation at 32 px, as 3 channels: thousands of images per second.
      const l = new Loader(s.train, Transforms.train('cifar', { size: 32, channels: 1 }), {
        batchSize: 256,
        shuffle: true,
        seed: 1,
        dropLast: true,
        channels: 1,
      });
      const t0 = performance.now();
      let n = 0;
      for await (const b of l.epoch(0)) {
        n += b.n;
        if (n >= 5120) break;
      }
      const rate = n / ((performance.now() - t0) / 1000);
      assert.ok(rate > 2000, `${rate.toFixed(0)} img/s`);
    },
  );
});
