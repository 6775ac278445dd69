/** The CLI's --data: one string to a dataset with train and val splits. */
import { promises as fs } from 'node:fs';
import { openCifar } from './cifar.js';
import { type DatasetSplits, openImageFolder } from './dataset.js';
import { DataError } from './errors.js';
import { openIdx } from './idx.js';
import { generateSynthetic, type SyntheticOptions } from './synthetic.js';

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
 * files; 'cifar:DIR' → CIFAR-10/100 binary batches; anything else → an ImageFolder directory.
 */
export async function openDataset(spec: string | undefined, opts: OpenOptions = {}): Promise<DatasetSplits> {
  const folderOpts = { ...(opts.valFraction !== undefined ? { valFraction: opts.valFraction } : {}), seed: opts.seed ?? 0, channels: opts.channels ?? 3 };
  if (spec === undefined || spec === 'synthetic') {
    const s = await generateSynthetic(opts.synthetic ?? {});
    const splits = await openImageFolder(s.dir, folderOpts);
    return { ...splits, source: `synthetic:${s.dir}` };
  }
  if (spec.startsWith('idx:')) return openIdx(nonEmpty(spec.slice(4), spec));
  if (spec.startsWith('cifar:')) return openCifar(nonEmpty(spec.slice(6), spec));
  const stat = await fs.stat(spec).catch(() => null);
  if (!stat) throw new DataError(`Expected --data to be 'synthetic', 'idx:DIR', 'cifar:DIR' or an ImageFolder directory but ${spec} does not exist`);
  return openImageFolder(spec, folderOpts);
}

function nonEmpty(p: string, spec: string): string {
  if (p.length === 0) throw new DataError(`Expected a directory after the prefix in --data but received '${spec}'`);
  return p;
}
