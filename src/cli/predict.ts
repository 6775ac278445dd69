/** `ilsvrc predict <ckpt|onnx> <images…>`: the top classes of each image, with probabilities. */
import { existsSync } from 'node:fs';
import { Command, Option } from 'commander';
import { FileDataset, Loader, Transforms } from '../data/index.js';
import { scoreViews, topK } from '../train/evaluate.js';
import { openInference } from '../train/inference.js';
import { UsageError } from '../util/errors.js';
import { choice, positiveInt } from './options.js';

interface PredictFlags {
  top: number;
  crop?: 'center' | 'ten' | 'full';
  json?: boolean;
}

export interface Prediction {
  image: string;
  top: { class: string; index: number; probability: number }[];
}

export async function predict(file: string, images: readonly string[], o: { top: number; crop?: 'center' | 'ten' | 'full' | undefined }): Promise<Prediction[]> {
  for (const img of images) if (!existsSync(img)) throw new UsageError(`Expected an image file but ${img} does not exist`);
  const m = await openInference(file);
  try {
    const channels = m.options.channels === 1 ? 1 : 3;
    const ds = new FileDataset([...images], new Int32Array(images.length));
    const loader = new Loader(ds, Transforms.eval(o.crop === undefined ? m.view : o.crop === 'full' ? 'none' : o.crop, { size: m.options.inputSize, channels }), { batchSize: 16, shuffle: false, seed: 0, dropLast: false, channels });
    const out: Prediction[] = [];
    const C = m.options.classes;
    for await (const b of loader.epoch(0)) {
      const rows = b.labels.length * b.views;
      const probs = scoreViews(await m.logits(b.x, rows), rows, C, b.views);
      for (let i = 0; i < b.n; i++) {
        const row = probs.subarray(i * C, (i + 1) * C);
        out.push({
          image: ds.name(b.indices[i]!),
          top: topK(row, Math.min(o.top, C)).map((c) => ({ class: m.classes?.[c] ?? String(c), index: c, probability: row[c]! })),
        });
      }
    }
    await loader.close();
    // The loader stands in a readable image for a broken one; for predictions that would be a lie.
    const bad = loader.skipped();
    if (bad.length) throw new UsageError(`Expected readable images but ${bad[0]!.path} is not (${bad[0]!.reason})`);
    return out;
  } finally {
    await m.release();
  }
}

export function makePredictCommand(): Command {
  return new Command('predict')
    .description('top classes of images, from a checkpoint or an exported ONNX model')
    .argument('<model>', 'a training checkpoint (.safetensors) or an .onnx file exported by ilsvrc')
    .argument('<images...>', 'image files')
    .addOption(new Option('--top <k>', 'classes to show per image').argParser(positiveInt).default(5))
    .addOption(new Option('--crop <mode>', 'center | ten (softmax averaged) | full; default: as trained').argParser(choice(['center', 'ten', 'full'] as const)))
    .option('--json', 'one JSON array of {image, top: [{class, index, probability}]}')
    .action(async (file: string, images: string[], f: PredictFlags) => {
      const preds = await predict(file, images, f);
      if (f.json) {
        process.stdout.write(JSON.stringify(preds) + '\n');
        return;
      }
      for (const p of preds) {
        process.stdout.write(`${p.image}\n${p.top.map((t) => `  ${(100 * t.probability).toFixed(2).padStart(6)}%  ${t.class}`).join('\n')}\n`);
      }
    });
}
