/** The CLI's --data: one string to a dataset with train and val splits. */
import { promises as fs } from 'node:fs';
import { openCifar } from './cifar.js';
import sharp from 'sharp';
import { type Dataset, type DatasetSplits, openImageFolder, PixelDataset } from './dataset.js';
import { UsageError } from '../util/errors.js';
import { openIdx } from './idx.js';
import { openIlsvrc } from './ilsvrc.js';
import { generateSynthetic, type SyntheticOptions } from './synthetic.js';

/**
 * Which data a model learned from, as a checkpoint or model file records it: the --data spec
 * (absent: the built-in synthetic set) and the synthetic set's options when it is that.
 */
export interface DataIdentity {
  spec?: string;
  synthetic?: SyntheticOptions;
}

/**
 * The data a command opens for a model: the --data flag when given, else what the model's file
 * records it learned from (the same synthetic set, the same folder), else the default.
 */
export function openModelData(
  flag: string | undefined,
  recorded: DataIdentity | undefined,
  opts: OpenOptions = {},
): Promise<DatasetSplits> {
  if (flag !== undefined || recorded === undefined) return openDataset(flag, opts);
  return openDataset(recorded.spec, { ...opts, ...(recorded.synthetic ? { synthetic: recorded.synthetic } : {}) });
}

export interface OpenOptions {
  /** Seed of the train/val split when a folder has no train/ and val/ (default 0). */
  seed?: number;
  /** Share held out for validation in that case (default 0.1). */
  valFraction?: number;
  /** Decode image files as 1 (gray) or 3 channels (default 3). */
  channels?: 1 | 3;
  /** Options of the built-in synthetic set (its folder defaults to a cache under the OS temp dir). */
  synthetic?: SyntheticOptions;
}

/**
 * `undefined` or 'synthetic' → the built-in synthetic set; 'idx:DIR' → MNIST/Fashion-MNIST IDX
 * files; 'cifar:DIR' → CIFAR-10/100 binary batches; 'ilsvrc:DIR' → ILSVRC-2012 as distributed
 * (ilsvrc.ts); anything else → an ImageFolder directory.
 */
export async function openDataset(spec: string | undefined, opts: OpenOptions = {}): Promise<DatasetSplits> {
  const folderOpts = {
    ...(opts.valFraction !== undefined ? { valFraction: opts.valFraction } : {}),
    seed: opts.seed ?? 0,
    channels: opts.channels ?? 3,
  };
  if (spec === undefined || spec === 'synthetic') {
    const s = await generateSynthetic(opts.synthetic ?? {});
    const splits = await openImageFolder(s.dir, folderOpts);
    // The images are small and all one size: decode them once, so epochs take the in-memory path.
    const size = opts.synthetic?.size ?? 64;
    const [train, val] = await Promise.all([inMemory(splits.train, size, 'synthetic/train'), inMemory(splits.val, size, 'synthetic/val')]);
    return { ...splits, train, val, source: `synthetic:${s.dir}` };
  }
  if (spec.startsWith('idx:')) return openIdx(nonEmpty(spec.slice(4), spec));
  if (spec.startsWith('cifar:')) return openCifar(nonEmpty(spec.slice(6), spec));
  if (spec.startsWith('ilsvrc:')) return openIlsvrc(nonEmpty(spec.slice(7), spec), folderOpts);
  // Only a missing path is "does not exist"; permissions and the like are the file-system error's to word.
  const stat = await fs.stat(spec).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return null;
    throw e;
  });
  if (!stat)
    throw new UsageError(
      `Expected --data to be 'synthetic', 'idx:DIR', 'cifar:DIR', 'ilsvrc:DIR' or an ImageFolder directory but ${spec} does not exist`,
    );
  return openImageFolder(spec, folderOpts);
}

/** Decodes a file dataset of same-size RGB images into one buffer (rows of HWC uint8). */
async function inMemory(ds: Dataset, size: number, name: string): Promise<Dataset> {
  const d = ds.descriptor;
  if (d.kind !== 'files') return ds;
  const n = size * size * 3;
  // Shared, so loader worker threads read the rows without a copy each.
  const data = new Uint8Array(new SharedArrayBuffer(d.paths.length * n));
  await Promise.all(
    d.paths.map(async (file, i) => {
      const { data: px, info } = await sharp(file).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
      if (info.width !== size || info.height !== size || info.channels !== 3) {
        throw new UsageError(
          `Expected ${size}×${size} RGB images in the synthetic set but ${file} is ${info.width}×${info.height}×${info.channels}`,
        );
      }
      data.set(px, i * n);
    }),
  );
  return new PixelDataset({
    data,
    width: size,
    height: size,
    channels: 3,
    rows: Int32Array.from(d.paths, (_, i) => i),
    labels: d.labels,
    name,
  });
}

function nonEmpty(p: string, spec: string): string {
  if (p.length === 0) throw new UsageError(`Expected a directory after the prefix in --data but received '${spec}'`);
  return p;
}
