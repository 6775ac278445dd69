/**
 * IDX files (MNIST, Fashion-MNIST), gzip or raw: magic 0x0000 <type> <ndim>, then ndim big-endian
 * uint32 sizes, then the data. Images are type 0x08 (uint8); labels 0x08, or 0x0B (int16) and 0x0C
 * (int32), big-endian as the format defines, for sets of more than 256 classes.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { constants as bufferConstants } from 'node:buffer';
import { closeSync, openSync } from 'node:fs';
import { constants as zlibConstants, gunzipSync, gzipSync } from 'node:zlib';
import { formatBytes, requireMemory } from '../util/budget.js';
import { UsageError } from '../util/errors.js';
import { gunzipBounded, gunzipFile, openRegular, readFully } from '../util/read.js';
import { type DatasetSplits, exists, PixelDataset } from './dataset.js';

export interface IdxArray {
  dims: number[];
  /** The data's bytes as stored: big-endian elements of `type`'s size. */
  data: Uint8Array;
  /** The element type: 0x08 uint8 (the default), 0x0B int16 or 0x0C int32. */
  type?: IdxType;
}

/** The IDX element types read here, with their sizes in bytes. */
const IDX_TYPES = { 0x08: 1, 0x0b: 2, 0x0c: 4 } as const;
type IdxType = keyof typeof IDX_TYPES;
const TYPE_NAMES: Record<IdxType, string> = { 0x08: 'uint8', 0x0b: 'int16', 0x0c: 'int32' };

export const FASHION_MNIST_CLASSES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];

function isGzip(b: Uint8Array): boolean {
  return b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;
}

/** Deflate shrinks data at most about 1032:1; a gzip file cannot hold more than this many times its size. */
const MAX_INFLATE_RATIO = 1032;
/** Magic (4 bytes) and at most 255 dimension sizes. */
const MAX_HEADER = 4 + 4 * 255;
/** What is inflated to find a gzipped file's header. */
const GZIP_PREFIX = 4096;

interface IdxHeader {
  dims: number[];
  type: IdxType;
  /** Byte offset of the data. */
  start: number;
  /** Bytes of data the dims and type declare. */
  n: number;
}

function parseHeader(b: Uint8Array, file: string): IdxHeader {
  if (b.length < 4 || b[0] !== 0 || b[1] !== 0)
    throw new UsageError(`Expected an IDX file (magic 00 00 08 nd) in ${file} but the header is ${[...b.subarray(0, 4)].join(' ')}`);
  const type = b[2] ?? 0;
  if (!(type in IDX_TYPES)) {
    throw new UsageError(`Expected IDX type 0x08 (uint8), 0x0b (int16) or 0x0c (int32) in ${file} but received 0x${type.toString(16)}`);
  }
  const size = IDX_TYPES[type as IdxType];
  const nd = b[3] ?? 0;
  if (b.length < 4 + 4 * nd) throw new UsageError(`Expected ${nd} dimension sizes in ${file} but the file ends after ${b.length} bytes`);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const dims = Array.from({ length: nd }, (_, i) => v.getUint32(4 + 4 * i));
  return { dims, type: type as IdxType, start: 4 + 4 * nd, n: size * dims.reduce((a, x) => a * x, 1) };
}

/**
 * The header of a gzipped IDX file, from the start of its stream alone, and a check that the
 * declared size can be what `size` bytes of gzip hold. The body is then inflated with the declared
 * size as a hard limit, so a decompression bomb stops after that many bytes instead of filling memory.
 */
function gzipHeader(prefix: Uint8Array, size: number, file: string): IdxHeader {
  let head: Uint8Array;
  try {
    // Z_SYNC_FLUSH: inflate a prefix without complaining that the stream ends there.
    head = gunzipSync(prefix, { finishFlush: zlibConstants.Z_SYNC_FLUSH, maxOutputLength: prefix.length * MAX_INFLATE_RATIO + MAX_HEADER });
  } catch (e) {
    throw new UsageError(`Expected gzip data in ${file} but it does not inflate: ${(e as Error).message}`);
  }
  const h = parseHeader(head.subarray(0, MAX_HEADER), file);
  const total = h.start + h.n;
  const most = size * MAX_INFLATE_RATIO + MAX_HEADER;
  if (total > most || h.n > bufferConstants.MAX_LENGTH) {
    const dims = h.dims.join(', ');
    throw new UsageError(
      `Expected ${file}'s header [${dims}] to fit in what ${size} bytes of gzip can hold (at most ${most}) ` +
        `but it declares ${total} bytes`,
    );
  }
  return h;
}

function wrongSize(h: IdxHeader, file: string, found: number | string): UsageError {
  const what = typeof found === 'number' ? `found ${found}` : found;
  return new UsageError(`Expected ${h.n} bytes of data for dims [${h.dims.join(', ')}] in ${file} but ${what}`);
}

export function parseIdx(bytes: Uint8Array, file: string): IdxArray {
  if (isGzip(bytes)) {
    const h = gzipHeader(bytes.subarray(0, GZIP_PREFIX), bytes.length, file);
    try {
      bytes = gunzipBounded(bytes, file, h.start + h.n, 'the IDX file');
    } catch (e) {
      throw e instanceof UsageError && /inflates to more/.test(e.message) ? wrongSize(h, file, 'it inflates to more; refused') : e;
    }
  }
  const h = parseHeader(bytes, file);
  if (bytes.length - h.start !== h.n) throw wrongSize(h, file, bytes.length - h.start);
  return { dims: h.dims, data: bytes.subarray(h.start), type: h.type };
}

/** An IDX file's header, read before its data: what it declares, checked against what the file can hold. */
interface IdxFile extends IdxHeader {
  file: string;
  gzip: boolean;
}

function readHeader(file: string): IdxFile {
  const { fd, size } = openRegular(file, 'an IDX file');
  try {
    const head = new Uint8Array(Math.min(size, GZIP_PREFIX));
    readFully(fd, head, 0);
    if (isGzip(head)) return { ...gzipHeader(head, size, file), file, gzip: true };
    const h = parseHeader(head.subarray(0, MAX_HEADER), file);
    if (size - h.start !== h.n) throw wrongSize(h, file, size - h.start);
    return { ...h, file, gzip: false };
  } finally {
    closeSync(fd);
  }
}

/**
 * An IDX file's data, read or inflated straight into shared memory of the size its header declares
 * (loader workers read it without a copy), never past it.
 */
async function readBody(h: IdxFile): Promise<Uint8Array> {
  const data = new Uint8Array(new SharedArrayBuffer(h.n));
  if (!h.gzip) {
    const fd = openSync(h.file, 'r');
    try {
      const got = readFully(fd, data, h.start);
      if (got !== h.n) throw wrongSize(h, h.file, got);
    } finally {
      closeSync(fd);
    }
    return data;
  }
  let total: number;
  try {
    total = await gunzipFile(h.file, h.start + h.n, 'the IDX file', (chunk, at) => {
      if (at + chunk.length > h.start) data.set(chunk.subarray(Math.max(0, h.start - at)), Math.max(0, at - h.start));
    });
  } catch (e) {
    throw e instanceof UsageError && /inflates to more/.test(e.message) ? wrongSize(h, h.file, 'it inflates to more; refused') : e;
  }
  if (total !== h.start + h.n) throw wrongSize(h, h.file, Math.max(0, total - h.start));
  return data;
}

/**
 * Reads an IDX file (gzip or raw) into shared memory. Its header is read first: a raw file whose
 * size is not what it declares, or a declared size over the memory budget, is refused before the data is read.
 */
export async function readIdx(file: string): Promise<IdxArray> {
  const h = readHeader(file);
  requireMemory(h.n, `the data of ${file}`, `its header declares [${h.dims.join(', ')}] (${formatBytes(h.n)})`);
  return { dims: h.dims, data: await readBody(h), type: h.type };
}

/** Labels as an IDX array of the smallest type that holds them (uint8 up to 255, else int16 or int32). */
export function idxLabels(labels: ArrayLike<number>): IdxArray {
  let max = 0;
  for (let i = 0; i < labels.length; i++) max = Math.max(max, labels[i]!);
  const type: IdxType = max < 256 ? 0x08 : max < 32768 ? 0x0b : 0x0c;
  const size = IDX_TYPES[type];
  const data = new Uint8Array(labels.length * size);
  const v = new DataView(data.buffer);
  for (let i = 0; i < labels.length; i++) {
    if (size === 1) data[i] = labels[i]!;
    else if (size === 2) v.setInt16(2 * i, labels[i]!);
    else v.setInt32(4 * i, labels[i]!);
  }
  return { dims: [labels.length], data, type };
}

/** An IDX array's elements as numbers (big-endian, as stored). */
function elements(a: IdxArray): Int32Array {
  const size = IDX_TYPES[a.type ?? 0x08];
  const out = new Int32Array(a.data.length / size);
  const v = new DataView(a.data.buffer, a.data.byteOffset, a.data.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = size === 1 ? a.data[i]! : size === 2 ? v.getInt16(2 * i) : v.getInt32(4 * i);
  return out;
}

export function encodeIdx(a: IdxArray, gzip = false): Uint8Array {
  const head = new Uint8Array(4 + 4 * a.dims.length);
  head[2] = a.type ?? 0x08;
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

interface IdxPair {
  images: IdxFile;
  labels: IdxFile;
}

/** The headers of a split's two files, checked against each other before either's data is read. */
async function pairHeaders(dir: string, prefix: string): Promise<IdxPair> {
  const images = readHeader(await findFile(dir, `${prefix}-images-idx3-ubyte`));
  const labels = readHeader(await findFile(dir, `${prefix}-labels-idx1-ubyte`));
  if (images.dims.length !== 3) {
    throw new UsageError(`Expected 3 dimensions (N, H, W) in ${images.file} but received [${images.dims.join(', ')}]`);
  }
  if (images.type !== 0x08)
    throw new UsageError(`Expected IDX type 0x08 (uint8 pixels) in ${images.file} but received ${TYPE_NAMES[images.type]}`);
  if (labels.dims.length !== 1) throw new UsageError(`Expected 1 dimension (N) in ${labels.file} but received [${labels.dims.join(', ')}]`);
  if (labels.dims[0] !== images.dims[0]) {
    throw new UsageError(`Expected ${images.dims[0]} labels for ${images.file} but ${labels.file} holds ${labels.dims[0]}`);
  }
  return { images, labels };
}

/** Bytes a split takes once loaded: the pixels, the label bytes, and the labels and rows as Int32Arrays. */
const splitBytes = (p: IdxPair): number => p.images.n + p.labels.n + 8 * (p.labels.dims[0] ?? 0);

/** train-* and t10k-* files of an MNIST-format folder; Fashion-MNIST names when the path says "fashion". */
export async function openIdx(dir: string): Promise<DatasetSplits> {
  const trh = await pairHeaders(dir, 'train');
  const teh = await pairHeaders(dir, 't10k');
  const [, h, w] = trh.images.dims as [number, number, number];
  const [, th, tw] = teh.images.dims as [number, number, number];
  if (th !== h || tw !== w) {
    throw new UsageError(`Expected ${h}×${w} images in ${teh.images.file} (as in ${trh.images.file}) but they are ${th}×${tw}`);
  }
  const big = [trh, teh].sort((a, b) => b.images.n - a.images.n)[0] ?? trh;
  requireMemory(
    splitBytes(trh) + splitBytes(teh),
    `the IDX data of idx:${dir}`,
    `${big.images.file} declares ${big.images.dims[0]} images of ${h}×${w} (${formatBytes(big.images.n)}); ` +
      'use a smaller set, or set ILSVRC_MEMORY_BUDGET if the memory is there',
  );
  const load = async (p: IdxPair) => {
    const labels = elements({ dims: p.labels.dims, data: await readBody(p.labels), type: p.labels.type });
    const negative = labels.findIndex((v) => v < 0);
    if (negative >= 0)
      throw new UsageError(`Expected labels of 0 or more in ${p.labels.file} but label ${negative} is ${labels[negative]}`);
    return { images: { dims: p.images.dims, data: await readBody(p.images) }, labels, file: p.images.file, labelFile: p.labels.file };
  };
  const tr = await load(trh);
  const te = await load(teh);
  const maxLabel = tr.labels.reduce((a, v) => Math.max(a, v), 0);
  const over = te.labels.findIndex((v) => v > maxLabel);
  if (over >= 0)
    throw new UsageError(
      `Expected labels 0–${maxLabel} (the training set's classes) in ${te.labelFile} but label ${over} is ${te.labels[over]}`,
    );
  const classes = /fashion/i.test(dir) && maxLabel < 10 ? FASHION_MNIST_CLASSES : Array.from({ length: maxLabel + 1 }, (_, i) => String(i));
  const make = (p: typeof tr): PixelDataset =>
    new PixelDataset({
      data: p.images.data,
      width: w,
      height: h,
      channels: 1,
      rows: Int32Array.from({ length: p.labels.length }, (_, i) => i),
      labels: p.labels,
      name: p.file,
    });
  return { classes, train: make(tr), val: make(te), channels: 1, source: `idx:${dir}` };
}
