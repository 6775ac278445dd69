/**
 * IDX files (MNIST, Fashion-MNIST), gzip or raw: magic 0x0000 <type 0x08 = uint8> <ndim>, then
 * ndim big-endian uint32 sizes, then the data.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { constants as bufferConstants } from 'node:buffer';
import { constants as zlibConstants, gunzipSync, gzipSync } from 'node:zlib';
import { UsageError } from '../util/errors.js';
import { type DatasetSplits, exists, PixelDataset, toShared } from './dataset.js';

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

export const FASHION_MNIST_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

function isGzip(b: Uint8Array): boolean {
  return b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;
}

/** Deflate shrinks data at most about 1032:1; a gzip file cannot hold more than this many times its size. */
const MAX_INFLATE_RATIO = 1032;
/** Magic (4 bytes) and at most 255 dimension sizes. */
const MAX_HEADER = 4 + 4 * 255;

interface IdxHeader {
  dims: number[];
  /** Byte offset of the data. */
  start: number;
  /** Bytes of data the dims declare. */
  n: number;
}

function parseHeader(b: Uint8Array, file: string): IdxHeader {
  if (b.length < 4 || b[0] !== 0 || b[1] !== 0) throw new UsageError(`Expected an IDX file (magic 00 00 08 nd) in ${file} but the header is ${[...b.subarray(0, 4)].join(' ')}`);
  if (b[2] !== 0x08) throw new UsageError(`Expected IDX type 0x08 (uint8) in ${file} but received 0x${(b[2] ?? 0).toString(16)}`);
  const nd = b[3] ?? 0;
  if (b.length < 4 + 4 * nd) throw new UsageError(`Expected ${nd} dimension sizes in ${file} but the file ends after ${b.length} bytes`);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const dims = Array.from({ length: nd }, (_, i) => v.getUint32(4 + 4 * i));
  return { dims, start: 4 + 4 * nd, n: dims.reduce((a, x) => a * x, 1) };
}

/**
 * The header of a gzipped IDX file, from the start of the stream alone, and a check that the
 * declared size can be what the file holds. The body is then inflated with the declared size as a
 * hard limit, so a decompression bomb stops after that many bytes instead of filling memory.
 */
function inflateIdx(bytes: Uint8Array, file: string): Uint8Array {
  // Z_SYNC_FLUSH: inflate a prefix without complaining that the stream ends there.
  const prefix = bytes.subarray(0, Math.min(bytes.length, 4096));
  let head: Uint8Array;
  try {
    head = gunzipSync(prefix, { finishFlush: zlibConstants.Z_SYNC_FLUSH, maxOutputLength: prefix.length * MAX_INFLATE_RATIO + MAX_HEADER });
  } catch (e) {
    throw new UsageError(`Expected gzip data in ${file} but it does not inflate: ${(e as Error).message}`);
  }
  const h = parseHeader(head.subarray(0, MAX_HEADER), file);
  const total = h.start + h.n;
  const most = bytes.length * MAX_INFLATE_RATIO + MAX_HEADER;
  if (total > most || total > bufferConstants.MAX_LENGTH) {
    throw new UsageError(`Expected ${file}'s header [${h.dims.join(', ')}] to fit in what ${bytes.length} bytes of gzip can hold (at most ${most}) but it declares ${total} bytes`);
  }
  try {
    // One byte more than declared is enough to know the file holds too much.
    return new Uint8Array(gunzipSync(bytes, { maxOutputLength: total + 1 }));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new UsageError(`Expected ${h.n} bytes of data for dims [${h.dims.join(', ')}] in ${file} but it inflates to more; refused`);
    }
    throw new UsageError(`Expected gzip data in ${file} but it does not inflate: ${(e as Error).message}`);
  }
}

export function parseIdx(bytes: Uint8Array, file: string): IdxArray {
  const b = isGzip(bytes) ? inflateIdx(bytes, file) : bytes;
  const { dims, start, n } = parseHeader(b, file);
  if (b.length - start !== n) throw new UsageError(`Expected ${n} bytes of data for dims [${dims.join(', ')}] in ${file} but found ${b.length - start}`);
  return { dims, data: b.subarray(start) };
}

/** Reads an IDX file (gzip or raw); a raw file whose size is not what its header declares is refused before it is read. */
export async function readIdx(file: string): Promise<IdxArray> {
  const f = await fs.open(file, 'r');
  try {
    const size = (await f.stat()).size;
    const head = new Uint8Array(Math.min(size, MAX_HEADER));
    await f.read(head, 0, head.length, 0);
    if (!isGzip(head)) {
      const { dims, start, n } = parseHeader(head, file);
      if (size - start !== n) throw new UsageError(`Expected ${n} bytes of data for dims [${dims.join(', ')}] in ${file} but found ${size - start}`);
    }
    return parseIdx(await f.readFile(), file);
  } finally {
    await f.close();
  }
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
    if (await exists(p)) return p;
  }
  throw new UsageError(`Expected ${stem}[.gz] in ${dir} (an MNIST/Fashion-MNIST IDX folder) but it is missing`);
}

async function loadPair(dir: string, prefix: string): Promise<{ images: IdxArray; labels: IdxArray; file: string; labelFile: string }> {
  const imgFile = await findFile(dir, `${prefix}-images-idx3-ubyte`);
  const images = await readIdx(imgFile);
  const labelFile = await findFile(dir, `${prefix}-labels-idx1-ubyte`);
  const labels = await readIdx(labelFile);
  if (images.dims.length !== 3) throw new UsageError(`Expected 3 dimensions (N, H, W) in ${imgFile} but received [${images.dims.join(', ')}]`);
  if (labels.dims.length !== 1) throw new UsageError(`Expected 1 dimension (N) in ${labelFile} but received [${labels.dims.join(', ')}]`);
  if (labels.dims[0] !== images.dims[0]) throw new UsageError(`Expected ${images.dims[0]} labels for ${imgFile} but received ${labels.dims[0]}`);
  return { images, labels, file: imgFile, labelFile };
}

/** train-* and t10k-* files of an MNIST-format folder; Fashion-MNIST names when the path says "fashion". */
export async function openIdx(dir: string): Promise<DatasetSplits> {
  const tr = await loadPair(dir, 'train');
  const te = await loadPair(dir, 't10k');
  const [, h, w] = tr.images.dims as [number, number, number];
  const [, th, tw] = te.images.dims as [number, number, number];
  if (th !== h || tw !== w) throw new UsageError(`Expected ${h}×${w} images in ${te.file} (as in ${tr.file}) but they are ${th}×${tw}`);
  const maxLabel = tr.labels.data.reduce((a, v) => Math.max(a, v), 0);
  const over = te.labels.data.findIndex((v) => v > maxLabel);
  if (over >= 0) throw new UsageError(`Expected labels 0–${maxLabel} (the training set's classes) in ${te.labelFile} but label ${over} is ${te.labels.data[over]}`);
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
