/**
 * CIFAR-10/100 binary batches: records of <label byte(s)> + 3072 bytes (1024 R, 1024 G, 1024 B,
 * each 32×32 row-major). CIFAR-10 has one label byte; CIFAR-100 a coarse then a fine byte.
 * Rows are stored HWC after loading, like every in-memory dataset here.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { UsageError } from '../util/errors.js';
import { type DatasetSplits, exists, PixelDataset, toShared } from './dataset.js';

const SIDE = 32;
const PIXELS = SIDE * SIDE * 3;

export interface CifarRecords {
  labels: Uint8Array;
  /** HWC uint8, 32×32×3 per record. */
  images: Uint8Array;
}

export function parseCifar(bytes: Uint8Array, labelBytes: 1 | 2, file: string): CifarRecords {
  const rec = labelBytes + PIXELS;
  if (bytes.length === 0 || bytes.length % rec !== 0) {
    throw new UsageError(`Expected CIFAR records of ${rec} bytes in ${file} but its size ${bytes.length} is not a multiple of that`);
  }
  const n = bytes.length / rec;
  const labels = new Uint8Array(n);
  const images = new Uint8Array(n * PIXELS);
  for (let i = 0; i < n; i++) {
    const base = i * rec;
    labels[i] = bytes[base + labelBytes - 1] ?? 0; // the fine label for CIFAR-100
    const src = base + labelBytes;
    const dst = i * PIXELS;
    for (let p = 0; p < SIDE * SIDE; p++) {
      images[dst + p * 3] = bytes[src + p] ?? 0;
      images[dst + p * 3 + 1] = bytes[src + 1024 + p] ?? 0;
      images[dst + p * 3 + 2] = bytes[src + 2048 + p] ?? 0;
    }
  }
  return { labels, images };
}

/** Planar records as in the distributed files; for CIFAR-100 pass `coarse` to write two label bytes. */
export function encodeCifar(r: CifarRecords, coarse?: Uint8Array): Uint8Array {
  const lb = coarse ? 2 : 1;
  const n = r.labels.length;
  const out = new Uint8Array(n * (lb + PIXELS));
  for (let i = 0; i < n; i++) {
    const base = i * (lb + PIXELS);
    if (coarse) out[base] = coarse[i] ?? 0;
    out[base + lb - 1] = r.labels[i] ?? 0;
    for (let p = 0; p < SIDE * SIDE; p++) {
      for (let c = 0; c < 3; c++) out[base + lb + c * 1024 + p] = r.images[i * PIXELS + p * 3 + c] ?? 0;
    }
  }
  return out;
}

/** The optional class-name file: null when there is none (the classes are then numbered). */
async function readNames(file: string): Promise<string[] | null> {
  if (!(await exists(file))) return null;
  return (await fs.readFile(file, 'utf8')).split(/\r?\n/).map((s) => s.trim()).filter((s) => s.length > 0);
}

async function load(files: string[], labelBytes: 1 | 2): Promise<CifarRecords & { file: string }> {
  const parts: CifarRecords[] = [];
  for (const f of files) parts.push(parseCifar(await fs.readFile(f), labelBytes, f));
  const n = parts.reduce((a, p) => a + p.labels.length, 0);
  const labels = new Uint8Array(n);
  const images = new Uint8Array(n * PIXELS);
  let k = 0;
  for (const p of parts) {
    labels.set(p.labels, k);
    images.set(p.images, k * PIXELS);
    k += p.labels.length;
  }
  return { labels, images, file: files[0] ?? '' };
}

/** path.join(dir, name), which must exist: else one line naming it and what it holds. */
async function required(dir: string, name: string, what: string): Promise<string> {
  const p = path.join(dir, name);
  if (!(await exists(p))) throw new UsageError(`Expected ${name} (${what}) in ${dir} but it is missing`);
  return p;
}

/** CIFAR-10 (data_batch_1..5.bin + test_batch.bin) or CIFAR-100 (train.bin + test.bin) binary folder. */
export async function openCifar(dir: string): Promise<DatasetSplits> {
  if (!(await exists(dir))) throw new UsageError(`Expected a CIFAR binary folder for --data cifar:${dir} but ${dir} does not exist`);
  let train: CifarRecords & { file: string };
  let test: CifarRecords & { file: string };
  let names: string[] | null;
  if (await exists(path.join(dir, 'data_batch_1.bin'))) {
    const batches: string[] = [];
    for (let i = 1; i <= 5; i++) if (await exists(path.join(dir, `data_batch_${i}.bin`))) batches.push(path.join(dir, `data_batch_${i}.bin`));
    const testFile = await required(dir, 'test_batch.bin', "CIFAR-10's test split");
    train = await load(batches, 1);
    test = await load([testFile], 1);
    names = await readNames(path.join(dir, 'batches.meta.txt'));
  } else if (await exists(path.join(dir, 'train.bin'))) {
    const testFile = await required(dir, 'test.bin', "CIFAR-100's test split");
    train = await load([path.join(dir, 'train.bin')], 2);
    test = await load([testFile], 2);
    names = await readNames(path.join(dir, 'fine_label_names.txt'));
  } else {
    throw new UsageError(`Expected CIFAR binary batches (data_batch_1.bin… or train.bin) in ${dir} but found neither`);
  }
  const maxLabel = train.labels.reduce((a, v) => Math.max(a, v), 0);
  const over = test.labels.findIndex((v) => v > maxLabel);
  if (over >= 0) throw new UsageError(`Expected labels 0–${maxLabel} (the training set's classes) in ${test.file} but record ${over} has ${test.labels[over]}`);
  const classes = names && names.length > maxLabel ? names : Array.from({ length: maxLabel + 1 }, (_, i) => String(i));
  const make = (r: CifarRecords & { file: string }): PixelDataset =>
    new PixelDataset({
      data: toShared(r.images),
      width: SIDE,
      height: SIDE,
      channels: 3,
      rows: Int32Array.from({ length: r.labels.length }, (_, i) => i),
      labels: Int32Array.from(r.labels),
      name: r.file,
    });
  return { classes, train: make(train), val: make(test), channels: 3, source: `cifar:${dir}` };
}
