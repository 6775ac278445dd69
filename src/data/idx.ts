/**
 * IDX files (MNIST, Fashion-MNIST), gzip or raw: magic 0x0000 <type 0x08 = uint8> <ndim>, then
 * ndim big-endian uint32 sizes, then the data.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { UsageError } from '../util/errors.js';
import { type DatasetSplits, PixelDataset, toShared } from './dataset.js';

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

export const FASHION_MNIST_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

function isGzip(b: Uint8Array): boolean {
  return b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;
}

export function parseIdx(bytes: Uint8Array, file: string): IdxArray {
  const b = isGzip(bytes) ? new Uint8Array(gunzipSync(bytes)) : bytes;
  if (b.length < 4 || b[0] !== 0 || b[1] !== 0) throw new UsageError(`Expected an IDX file (magic 00 00 08 nd) in ${file} but the header is ${[...b.subarray(0, 4)].join(' ')}`);
  if (b[2] !== 0x08) throw new UsageError(`Expected IDX type 0x08 (uint8) in ${file} but received 0x${(b[2] ?? 0).toString(16)}`);
  const nd = b[3] ?? 0;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b.length < 4 + 4 * nd) throw new UsageError(`Expected ${nd} dimension sizes in ${file} but the file ends after ${b.length} bytes`);
  const dims = Array.from({ length: nd }, (_, i) => v.getUint32(4 + 4 * i));
  const n = dims.reduce((a, x) => a * x, 1);
  const start = 4 + 4 * nd;
  if (b.length - start !== n) throw new UsageError(`Expected ${n} bytes of data for dims [${dims.join(', ')}] in ${file} but found ${b.length - start}`);
  return { dims, data: b.subarray(start) };
}

export async function readIdx(file: string): Promise<IdxArray> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch {
    throw new UsageError(`Expected an IDX file at ${file} but it cannot be read`);
  }
  return parseIdx(bytes, file);
}

export function encodeIdx(a: IdxArray, gzip = false): Uint8Array {
  const head = new Uint8Array(4 + 4 * a.dims.length);
  head[2] = 0x08;
  head[3] = a.dims.length;
  const v = new DataView(head.buffer);
  a.dims.forEach((d, i) => v.setUint32(4 + 4 * i, d));
  const out = new Uint8Array(head.length + a.data.length);
  out.set(head);
  out.set(a.data, head.length);
  return gzip ? new Uint8Array(gzipSync(out)) : out;
}

export async function writeIdx(file: string, a: IdxArray, gzip = file.endsWith('.gz')): Promise<void> {
  await fs.writeFile(file, encodeIdx(a, gzip));
}

async function findFile(dir: string, stem: string): Promise<string> {
  for (const f of [stem, `${stem}.gz`]) {
    const p = path.join(dir, f);
    try {
      await fs.access(p);
      return p;
    } catch {
      /* try the next name */
    }
  }
  throw new UsageError(`Expected ${stem}[.gz] in ${dir} (an MNIST/Fashion-MNIST IDX folder) but it is missing`);
}

async function loadPair(dir: string, prefix: string): Promise<{ images: IdxArray; labels: IdxArray; file: string }> {
  const imgFile = await findFile(dir, `${prefix}-images-idx3-ubyte`);
  const images = await readIdx(imgFile);
  const labels = await readIdx(await findFile(dir, `${prefix}-labels-idx1-ubyte`));
  if (images.dims.length !== 3) throw new UsageError(`Expected 3 dimensions (N, H, W) in ${imgFile} but received [${images.dims.join(', ')}]`);
  if (labels.dims[0] !== images.dims[0]) throw new UsageError(`Expected ${images.dims[0]} labels for ${imgFile} but received ${labels.dims[0]}`);
  return { images, labels, file: imgFile };
}

/** train-* and t10k-* files of an MNIST-format folder; Fashion-MNIST names when the path says "fashion". */
export async function openIdx(dir: string): Promise<DatasetSplits> {
  const tr = await loadPair(dir, 'train');
  const te = await loadPair(dir, 't10k');
  const [, h, w] = tr.images.dims as [number, number, number];
  const maxLabel = Math.max(...tr.labels.data);
  const classes = /fashion/i.test(dir) && maxLabel < 10 ? FASHION_MNIST_CLASSES : Array.from({ length: maxLabel + 1 }, (_, i) => String(i));
  const make = (p: typeof tr): PixelDataset =>
    new PixelDataset({
      data: toShared(p.images.data),
      width: w,
      height: h,
      channels: 1,
      rows: Int32Array.from({ length: p.labels.data.length }, (_, i) => i),
      labels: Int32Array.from(p.labels.data),
      name: p.file,
    });
  return { classes, train: make(tr), val: make(te), channels: 1, source: `idx:${dir}` };
}
