/**
 * Image files into the network: decoded with the eval transform (the network's view — a centre crop
 * or the whole image — at its input size, normalised). Back to RGB bytes and tiles: tiles.ts.
 */
import { existsSync } from 'node:fs';
import { FileDataset, Loader, Transforms, type Dataset } from '../data/index.js';
import { UsageError } from '../util/errors.js';
import type { Network } from './layers.js';

interface Loaded {
  /** Normalised C×H×W tensors, as the network sees them. */
  x: Float32Array[];
  labels: number[];
  names: string[];
}

/** Decodes `ds` (all of it, or the given indices' order) with the eval transform, in batches. */
export async function loadDataset(ds: Dataset, net: Network, onBatch?: (b: Loaded) => Promise<void>): Promise<Loaded> {
  const channels = net.channels === 1 ? 1 : 3;
  const size = net.inputSize;
  const tf = Transforms.eval(net.view, { size, channels });
  const loader = new Loader(ds, tf, { batchSize: 16, shuffle: false, seed: 0, dropLast: false, channels });
  const all: Loaded = { x: [], labels: [], names: [] };
  const plane = channels * size * size;
  try {
    for await (const b of loader.epoch(0)) {
      const part: Loaded = { x: [], labels: [], names: [] };
      for (let i = 0; i < b.n; i++) {
        part.x.push(b.x.slice(i * plane, (i + 1) * plane));
        part.labels.push(b.labels[i]!);
        part.names.push(ds.name(b.indices[i]!));
      }
      // With a callback, batches are handed over and dropped: memory stays one batch.
      if (onBatch) await onBatch(part);
      else for (const k of ['x', 'labels', 'names'] as const) (all[k] as unknown[]).push(...part[k]);
    }
  } finally {
    await loader.close();
  }
  const bad = loader.skipped();
  if (bad.length) throw new UsageError(`Expected readable images but ${bad[0]!.path} is not (${bad[0]!.reason})`);
  return all;
}

/** One image file as the network's input. */
export async function loadImage(file: string, net: Network): Promise<Float32Array> {
  if (!existsSync(file)) throw new UsageError(`Expected an image file but ${file} does not exist`);
  const got = await loadDataset(new FileDataset([file], new Int32Array(1)), net);
  return got.x[0]!;
}
