/** `ilsvrc evaluate <ckpt|onnx> --data …`: top-1/top-5 error, per-class accuracy, confusion matrix. */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Command, Option } from 'commander';
import { Loader, openDataset, Transforms, type EvalRecipe } from '../data/index.js';
import { writeHeatmapPng } from '../plot/chart.js';
import { evaluateLoader } from '../train/evaluate.js';
import { openInference } from '../train/inference.js';
import { UsageError } from '../util/errors.js';
import { ensureDir } from '../util/fsx.js';
import { choice, positiveInt } from './options.js';
import { Progress } from './progress.js';

interface EvaluateFlags {
  data?: string;
  crop?: 'center' | 'ten' | 'multiscale' | 'full';
  batchSize: number;
  split: 'val' | 'train';
  out?: string;
  threads?: number;
  json?: boolean;
}

export function makeEvaluateCommand(): Command {
  return new Command('evaluate')
    .description('accuracy of a checkpoint or exported ONNX model on a dataset (softmax averaged over the crops)')
    .argument('<model>', 'a training checkpoint (.safetensors) or an .onnx file exported by ilsvrc')
    .option('--data <spec>', "'synthetic' (default), idx:DIR, cifar:DIR or an ImageFolder DIR")
    .addOption(new Option('--crop <mode>', 'center | ten | multiscale | full (whole image resized); default: as trained').argParser(choice(['center', 'ten', 'multiscale', 'full'] as const)))
    .addOption(new Option('--split <s>', 'val | train').argParser(choice(['val', 'train'] as const)).default('val'))
    .addOption(new Option('--batch-size <n>', 'images per run').argParser(positiveInt).default(32))
    .option('--out <dir>', 'where confusion.csv/png go (default: beside the model)')
    .addOption(new Option('--threads <n>', 'ORT intra-op threads').argParser(positiveInt))
    .option('--json', 'print the result as one JSON object')
    .action(async (file: string, f: EvaluateFlags) => {
      // The folder is made first, so that a file in its way is found before the evaluation, not after.
      const out = f.out ?? dirname(file);
      ensureDir(out, '--out');
      const m = await openInference(file, f.threads !== undefined ? { threads: f.threads } : {});
      try {
        const data = await openDataset(f.data, { channels: m.options.channels === 1 ? 1 : 3 });
        if (data.classes.length !== m.options.classes) throw new UsageError(`Expected --data with ${m.options.classes} classes (as ${file}) but it has ${data.classes.length}`);
        const channels = m.options.channels === 1 ? 1 : 3;
        const view: EvalRecipe = f.crop === undefined ? m.view : f.crop === 'full' ? 'none' : f.crop;
        const crop: string = view === 'none' ? 'full' : view;
        const ds = f.split === 'val' ? data.val : data.train;
        const loader = new Loader(ds, Transforms.eval(view, { size: m.options.inputSize, channels }), { batchSize: f.batchSize, shuffle: false, seed: 0, dropLast: false, channels });
        const bar = new Progress({ total: ds.length, label: `evaluate ${crop}`, unit: 'img' });
        const t0 = Date.now();
        const r = await evaluateLoader(loader, data.classes.length, (x, rows) => m.logits(x, rows), (done, _t, t) => bar.update(done, { top1: `${(100 * t.result().top1).toFixed(1)}%` }));
        const secs = (Date.now() - t0) / 1000;
        bar.finish();
        await loader.close();
        const names = data.classes;
        const csv = [['true\\predicted', ...names].join(','), ...r.confusion.map((row, i) => [names[i], ...row].join(','))].join('\n') + '\n';
        writeFileSync(join(out, 'confusion.csv'), csv);
        await writeHeatmapPng(join(out, 'confusion.png'), { title: `Confusion (${m.model}, ${crop})`, rowLabels: names, colLabels: names, values: r.confusion });
        const perClass = Object.fromEntries(names.map((n, i) => [n, r.perClass[i] ?? null]));
        const skipped = r.skipped.slice(0, 3).map((s) => `${s.path}: ${s.reason}`);
        if (f.json) {
          process.stdout.write(
            JSON.stringify({ model: m.model, crop: crop, n: r.n, top1: r.top1, top5: r.top5, top1_error: 1 - r.top1, top5_error: 1 - r.top5, loss: r.loss, per_class: perClass, img_per_s: r.n / secs, confusion: join(out, 'confusion.csv'), skipped: r.skipped.length, skipped_first: skipped }) + '\n',
          );
        } else {
          const w = Math.max(...names.map((n) => n.length));
          process.stdout.write(
            `${m.model} on ${data.source} (${f.split}, ${r.n} images, ${crop} crop): top-1 error ${pct(1 - r.top1)}, top-5 error ${pct(1 - r.top5)} (top-1 ${pct(r.top1)}), loss ${r.loss.toFixed(4)}, ${(r.n / secs).toFixed(1)} img/s\n` +
              (r.skipped.length > 0 ? `  skipped ${r.skipped.length} unreadable image${r.skipped.length === 1 ? '' : 's'} (not scored): ${skipped.join('; ')}${r.skipped.length > 3 ? '; …' : ''}\n` : '') +
              names.map((n, i) => `  ${n.padEnd(w)}  ${pct(r.perClass[i] ?? NaN)}`).join('\n') +
              `\n  confusion matrix: ${join(out, 'confusion.csv')}, ${join(out, 'confusion.png')}\n`,
          );
        }
      } finally {
        await m.release();
      }
    });
}

function pct(x: number): string {
  return Number.isFinite(x) ? `${(100 * x).toFixed(2)}%` : '-';
}
