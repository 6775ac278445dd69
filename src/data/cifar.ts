/**
 * CIFAR-10/100 binary batches: records of <label byte(s)> + 3072 bytes (1024 R, 1024 G, 1024 B,
 * each 32×32 row-major). CIFAR-10 has one label byte; CIFAR-100 a coarse then a fine byte.
 * Rows are stored HWC after loading, like every in-memory dataset here.
 */
import { closeSync, promises as fs, openSync } from 'node:fs';
import path from 'node:path';
import { requireMemory } from '../util/budget.js';
import { UsageError } from '../util/errors.js';
import { readFully, readTextBounded } from '../util/read.js';
import { type DatasetSplits, exists, PixelDataset } from './dataset.js';

const SIDE = 32;
const PIXELS = SIDE * SIDE * 3;

export interface CifarRecords {
  labels: Uint8Array;
  /** HWC uint8, 32×32×3 per record. */
  images: Uint8Array;
}

/** Classes of each format: CIFAR-10's one label byte, CIFAR-100's fine label (its coarse one has 20). */
const CLASSES = { 1: 10, 2: 100 } as const;

/**
 * Records `bytes` (whole records) into `labels` and HWC `images` from record `k` on; a label out of
 * the format's range is refused, naming the file and the record.
 */
function unpack(bytes: Uint8Array, labelBytes: 1 | 2, file: string, first: number, out: CifarRecords, k: number): void {
  const rec = labelBytes + PIXELS;
  const n = bytes.length / rec;
  for (let i = 0; i < n; i++) {
    const base = i * rec;
    const label = bytes[base + labelBytes - 1] ?? 0; // the fine label for CIFAR-100
    if (label >= CLASSES[labelBytes] || (labelBytes === 2 && (bytes[base] ?? 0) >= 20)) {
      const what = labelBytes === 1 ? 'a label 0–9 (CIFAR-10)' : 'a coarse label 0–19 and a fine label 0–99 (CIFAR-100)';
      const has = labelBytes === 1 ? `${label}` : `${bytes[base] ?? 0} and ${label}`;
      throw new UsageError(`Expected ${what} in record ${first + i} of ${file} but it has ${has}`);
    }
    out.labels[k + i] = label;
    const src = base + labelBytes;
    const dst = (k + i) * PIXELS;
    for (let p = 0; p < SIDE * SIDE; p++) {
      out.images[dst + p * 3] = bytes[src + p] ?? 0;
      out.images[dst + p * 3 + 1] = bytes[src + 1024 + p] ?? 0;
      out.images[dst + p * 3 + 2] = bytes[src + 2048 + p] ?? 0;
    }
  }
}

function records(size: number, labelBytes: 1 | 2, file: string): number {
  const rec = labelBytes + PIXELS;
  if (size === 0 || size % rec !== 0) {
    throw new UsageError(`Expected CIFAR records of ${rec} bytes in ${file} but its size ${size} is not a multiple of that`);
  }
  return size / rec;
}

export function parseCifar(bytes: Uint8Array, labelBytes: 1 | 2, file: string): CifarRecords {
  const n = records(bytes.length, labelBytes, file);
  const out = { labels: new Uint8Array(n), images: new Uint8Array(n * PIXELS) };
  unpack(bytes, labelBytes, file, 0, out, 0);
  return out;
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

/** The optional class-name file: null when there is none (the classes are then numbered); a name given twice is refused. */
async function readNames(file: string): Promise<string[] | null> {
  if (!(await exists(file))) return null;
  const names = readTextBounded(file, 'the CIFAR class names')
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  const seen = new Map<string, number>();
  names.forEach((name, k) => {
    const before = seen.get(name);
    if (before !== undefined) {
      throw new UsageError(`Expected each class name once in ${file} but '${name}' names classes ${before} and ${k}`);
    }
    seen.set(name, k);
  });
  return names;
}

/** Records read per chunk: what a batch file is converted through, instead of the whole file. */
const CHUNK = 1024;

/**
 * The records of `files`, into shared memory (loader workers read it without a copy): every size is
 * checked first — whole records, and all of them within the memory budget — then each file is read
 * a chunk at a time straight into place.
 */
async function load(files: string[], labelBytes: 1 | 2): Promise<CifarRecords & { file: string }> {
  const rec = labelBytes + PIXELS;
  const counts: number[] = [];
  for (const f of files) counts.push(records((await fs.stat(f)).size, labelBytes, f));
  const n = counts.reduce((a, c) => a + c, 0);
  const big = counts.indexOf(Math.max(...counts));
  const which = files.length === 1 ? files[0] : `${files.length} files (${files[big]}: ${counts[big]} records)`;
  requireMemory(n * (PIXELS + 9), `the CIFAR records of ${which}`, `${n} records of ${rec} bytes`);
  const out = { labels: new Uint8Array(n), images: new Uint8Array(new SharedArrayBuffer(n * PIXELS)) };
  const chunk = Buffer.allocUnsafe(CHUNK * rec);
  let k = 0;
  for (const [j, f] of files.entries()) {
    const fd = openSync(f, 'r');
    try {
      for (let i = 0; i < (counts[j] ?? 0); i += CHUNK) {
        const m = Math.min(CHUNK, (counts[j] ?? 0) - i);
        const got = readFully(fd, chunk.subarray(0, m * rec), i * rec);
        if (got !== m * rec) {
          throw new UsageError(`Expected ${counts[j]} CIFAR records in ${f} but it ends at byte ${i * rec + got} (it changed while read)`);
        }
        unpack(chunk.subarray(0, m * rec), labelBytes, f, i, out, k + i);
      }
    } finally {
      closeSync(fd);
    }
    k += counts[j] ?? 0;
  }
  return { ...out, file: files[0] ?? '' };
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
    for (let i = 1; i <= 5; i++)
      if (await exists(path.join(dir, `data_batch_${i}.bin`))) batches.push(path.join(dir, `data_batch_${i}.bin`));
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
  if (over >= 0)
    throw new UsageError(
      `Expected labels 0–${maxLabel} (the training set's classes) in ${test.file} but record ${over} has ${test.labels[over]}`,
    );
  const classes = names && names.length > maxLabel ? names : Array.from({ length: maxLabel + 1 }, (_, i) => String(i));
  const make = (r: CifarRecords & { file: string }): PixelDataset =>
    new PixelDataset({
      data: r.images,
      width: SIDE,
      height: SIDE,
      channels: 3,
      rows: Int32Array.from({ length: r.labels.length }, (_, i) => i),
      labels: Int32Array.from(r.labels),
      name: r.file,
    });
  return { classes, train: make(train), val: make(test), channels: 3, source: `cifar:${dir}` };
}
