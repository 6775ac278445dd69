/** The top classes of image files, from a checkpoint or an ONNX model exported by ilsvrc. */
import { existsSync } from 'node:fs';
import { FileDataset, Loader } from '../data/index.js';
import { UsageError } from '../util/errors.js';
import { NEVER, Stopped, type StopSignal } from '../util/stop.js';
import { scoreViews, topK } from '../train/score.js';
import { openInference } from './inference.js';
import { evalTransforms, type InputFlags } from './input.js';

export interface Prediction {
  image: string;
  top: { class: string; index: number; probability: number }[];
}

export interface PredictOptions {
  /** Classes per image. */
  top: number;
  /** center, ten (softmax averaged) or full (the whole image resized); absent: the view it was trained with. */
  crop?: 'center' | 'ten' | 'full' | undefined;
  /** Called after each batch with the images done so far. */
  onProgress?: ((done: number, total: number) => void) | undefined;
  /** How an ONNX model from elsewhere is fed, where its graph cannot say. */
  input?: InputFlags | undefined;
  /** Class names, one per line, for a model that carries none. */
  labels?: string | undefined;
}

/** Predictions in the order of `images`; after a `stop`, those of the images done before it (stop.requested says so). */
export async function predict(file: string, images: readonly string[], o: PredictOptions, stop: StopSignal = NEVER): Promise<Prediction[]> {
  for (const img of images) if (!existsSync(img)) throw new UsageError(`Expected an image file but ${img} does not exist`);
  const m = await openInference(file, { ...(o.input ? { input: o.input } : {}), labels: o.labels });
  try {
    const channels = m.input.channels;
    const ds = new FileDataset([...images], new Int32Array(images.length));
    const tf = evalTransforms(m.input, o.crop === undefined ? m.view : o.crop === 'full' ? 'none' : o.crop);
    const loader = new Loader(ds, tf, { batchSize: 16, shuffle: false, seed: 0, dropLast: false, channels });
    const out: Prediction[] = [];
    const C = m.options.classes;
    try {
      for await (const b of stop.each(loader.epoch(0), 'predict')) {
        const rows = b.labels.length * b.views;
        const probs = scoreViews(await m.logits(b.x, rows), rows, C, b.views);
        for (let i = 0; i < b.n; i++) {
          const row = probs.subarray(i * C, (i + 1) * C);
          out.push({
            image: ds.name(b.indices[i]!),
            top: topK(row, Math.min(o.top, C)).map((c) => ({ class: m.classes?.[c] ?? String(c), index: c, probability: row[c]! })),
          });
        }
        o.onProgress?.(out.length, images.length);
      }
    } catch (e) {
      if (!(e instanceof Stopped)) throw e;
    } finally {
      await loader.close();
    }
    // The loader stands in a readable image for a broken one; for predictions that would be a lie.
    const done = new Set(out.map((p) => p.image));
    const bad = loader.skipped().filter((s) => done.has(s.path));
    if (bad.length) throw new UsageError(`Expected readable images but ${bad[0]!.path} is not (${bad[0]!.reason})`);
    return out;
  } finally {
    await m.release();
  }
}
