/**
 * `ilsvrc evaluate <ckpt|onnx> --data …`: top-1/top-5 error, per-class accuracy, confusion matrix,
 * under one of the papers' test protocols: a centre crop, AlexNet's ten crops, multi-scale crops,
 * or VGG's dense evaluation of the whole image (fully convolutional, flips averaged).
 */
import { dirname, join } from 'node:path';
import { Command, Option } from 'commander';
import { Loader, openModelData, Transforms, type EvalRecipe } from '../data/index.js';
import { writeHeatmapPng } from '../plot/chart.js';
import { type DenseOptions, evaluateDense, evaluateLoader, type EvalResult } from '../train/evaluate.js';
import { openInference } from '../train/inference.js';
import { expected, UsageError } from '../util/errors.js';
import { ensureDir, writeFileAtomic } from '../util/fsx.js';
import { choice, count } from './options.js';
import { requireBatchMemory, requireThreads } from '../util/limits.js';
import { requireMemory } from '../util/budget.js';
import { findModel, buildModel } from '../zoo/index.js';
import { outputFloats } from '../train/steps-per-run.js';
import { StopSignal, stopOnSignals, Stopped } from '../util/stop.js';
import { Progress } from './progress.js';

interface EvaluateFlags {
  data?: string;
  crop?: 'center' | 'ten' | 'multiscale' | 'googlenet' | 'full' | 'dense';
  scales?: number[];
  batchSize?: number;
  split: 'val' | 'train';
  out?: string;
  threads?: number;
  json?: boolean;
}

export function makeEvaluateCommand(): Command {
  return new Command('evaluate')
    .description('accuracy of a checkpoint or exported ONNX model on a dataset (softmax averaged over the crops)')
    .argument('<model>', 'a training checkpoint (.safetensors) or an .onnx file exported by ilsvrc')
    .option('--data <spec>', "default: the data the model learned from, when its file records it (else 'synthetic'); idx:DIR, cifar:DIR, ilsvrc:DIR (ILSVRC-2012 as distributed) or an ImageFolder DIR")
    .addOption(
      new Option('--crop <mode>', 'center | ten (AlexNet) | multiscale | googlenet (144 crops) | dense (VGG: whole image, fully convolutional, + flip) | full (whole image resized); default: as trained').argParser(
        choice(['center', 'ten', 'multiscale', 'googlenet', 'full', 'dense'] as const),
      ),
    )
    .addOption(new Option('--scales <list>', 'shorter sides for multiscale, googlenet and dense, e.g. 256,384,512 (default at 224 px: dense 256; multiscale 256,288,320; googlenet 256,288,320,352)').argParser(positiveInts))
    .addOption(new Option('--split <s>', 'val | train').argParser(choice(['val', 'train'] as const)).default('val'))
    .addOption(new Option('--batch-size <n>', 'images per run (default 32; 2 for googlenet, whose 144 views per image make a large batch)').argParser(count))
    .option('--out <dir>', 'where confusion.csv/png go (default: beside the model)')
    .addOption(new Option('--threads <n>', 'ORT intra-op threads').argParser(count))
    .option('--json', 'print the result as one JSON object')
    .action(async (file: string, f: EvaluateFlags) => {
      if (f.threads !== undefined) requireThreads('--threads', f.threads);
      // The folder is made first, so that a file in its way is found before the evaluation, not after.
      const out = f.out ?? dirname(file);
      ensureDir(out, '--out');
      const dense = f.crop === 'dense';
      const m = await openInference(file, { ...(f.threads !== undefined ? { threads: f.threads } : {}), dense });
      // A stop ends the pass within a batch; partial numbers are not the model's: nothing is written.
      const stop = new StopSignal();
      const disarm = stopOnSignals(stop);
      let done = 0;
      try {
        const data = await openModelData(f.data, m.data, { channels: m.options.channels === 1 ? 1 : 3 });
        if (data.classes.length !== m.options.classes) throw new UsageError(`Expected --data with ${m.options.classes} classes (as ${file}) but it has ${data.classes.length}`);
        const channels = m.options.channels === 1 ? 1 : 3;
        const size = m.options.inputSize;
        const ds = f.split === 'val' ? data.val : data.train;
        if (ds.length === 0) throw new UsageError(`Expected images in the ${f.split} split of ${data.source} but it has none`);
        const view: EvalRecipe = f.crop === undefined || f.crop === 'dense' ? m.view : f.crop === 'full' ? 'none' : f.crop;
        const scales = f.scales ?? (dense ? [Math.round((size * 256) / 224)] : undefined);
        const scaled = dense || view === 'multiscale' || view === 'googlenet';
        if (f.scales && !scaled) throw new UsageError(`Expected --crop multiscale, googlenet or dense with --scales but received --crop ${f.crop ?? view}`);
        const crop: string = dense ? 'dense' : view === 'none' ? 'full' : view;
        if (f.scales?.some((q) => q < size)) throw expected(`scales of at least the model's input size ${size}`, '--scales', f.scales.join(','));
        // A scale is the shorter side an image is resized to (at least square); dense runs the whole of it through the network.
        const outputs = isZoo(m.model) ? outputFloats(buildModel(m.model, { ...m.options, aux: false }).graph) : 0;
        const q = Math.max(0, ...(scales ?? []));
        if (q > 0) {
          const what = `--scales ${q} (an image resized to ${q} px${dense ? ' through the whole network' : ''})`;
          requireMemory(4 * q * q * (channels + (dense ? outputs / (size * size) : 0)), what, 'smaller --scales');
        }
        const tf = dense ? undefined : Transforms.eval(view, { size, channels, ...(scales ? { scales } : {}) });
        const step = tf?.steps.find((x) => x.op === 'multiScale' || x.op === 'googlenetCrops');
        const shown = step && 'scales' in step ? step.scales : scales;
        const protocol = dense ? `dense, Q ${scales?.join('/')}, flip` : scaled ? `${crop} ${shown?.join('/')}, ${tf?.views} views` : crop;
        const bar = new Progress({ total: ds.length, label: `evaluate ${crop}`, unit: 'img' });
        const progress = (n: number, _t: number, t: { result(): EvalResult }): void => {
          done = n;
          bar.update(n, { top1: `${(100 * t.result().top1).toFixed(1)}%` });
        };
        const t0 = Date.now();
        let r: EvalResult;
        let skipped: { path: string; reason: string }[];
        if (dense) {
          const o: DenseOptions = { scales: scales ?? [], channels, minSide: size };
          const d = await evaluateDense(ds, data.classes.length, (x, rows, h, w) => m.logits(x, rows, h, w), o, progress, stop);
          r = d;
          skipped = d.skipped;
        } else {
          const t = tf ?? Transforms.eval(view, { size, channels });
          const batchSize = f.batchSize ?? (t.views >= 100 ? 2 : 32);
          // Each view: the loader's three batches and the feed, and the network's outputs (a zoo model's;
          // ONNX files from elsewhere count the input only). A batch never holds more images than the split has.
          const perImage = t.views * 4 * (4 * channels * size * size + outputs);
          const what = `images per run, ${t.views} view${t.views === 1 ? '' : 's'} each`;
          requireBatchMemory('--batch-size', Math.min(batchSize, ds.length), perImage, what);
          const loader = new Loader(ds, t, { batchSize, shuffle: false, seed: 0, dropLast: false, channels });
          try {
            r = await evaluateLoader(loader, data.classes.length, (x, rows) => m.logits(x, rows), progress, stop);
          } finally {
            await loader.close();
          }
          skipped = r.skipped;
        }
        const secs = (Date.now() - t0) / 1000;
        bar.finish();
        const names = data.classes;
        const csv = [['true\\predicted', ...names].join(','), ...r.confusion.map((row, i) => [names[i], ...row].join(','))].join('\n') + '\n';
        writeFileAtomic(join(out, 'confusion.csv'), new TextEncoder().encode(csv));
        await writeHeatmapPng(join(out, 'confusion.png'), { title: `Confusion (${m.model}, ${crop})`, rowLabels: names, colLabels: names, values: r.confusion });
        const perClass = Object.fromEntries(names.map((n, i) => [n, r.perClass[i] ?? null]));
        const skippedFirst = skipped.slice(0, 3).map((s) => `${s.path}: ${s.reason}`);
        // The papers' form: top-1/top-5 error in per cent, as in their tables.
        const paper = { top1: round2(100 * (1 - r.top1)), top5: round2(100 * (1 - r.top5)) };
        if (f.json) {
          process.stdout.write(
            JSON.stringify({
              model: m.model,
              crop: crop,
              protocol,
              ...(shown && scaled ? { scales: shown } : {}),
              n: r.n,
              top1: r.top1,
              top5: r.top5,
              top1_error: 1 - r.top1,
              top5_error: 1 - r.top5,
              top1_error_pct: paper.top1,
              top5_error_pct: paper.top5,
              loss: r.loss,
              skipped: skipped.length,
              skipped_first: skippedFirst,
              per_class: perClass,
              img_per_s: r.n / secs,
              confusion: join(out, 'confusion.csv'),
            }) + '\n',
          );
        } else {
          const w = Math.max(...names.map((n) => n.length));
          process.stdout.write(
            `${m.model} on ${data.source} (${f.split}, ${r.n} images, ${scaled ? protocol : `${crop} crop`}): top-1 error ${pct(1 - r.top1)}, top-5 error ${pct(1 - r.top5)} (top-1 ${pct(r.top1)}), loss ${r.loss.toFixed(4)}, ${(r.n / secs).toFixed(1)} img/s\n` +
              (skipped.length > 0 ? `  skipped ${skipped.length} unreadable image${skipped.length === 1 ? '' : 's'} (not scored): ${skippedFirst.join('; ')}${skipped.length > 3 ? '; …' : ''}\n` : '') +
              names.map((n, i) => `  ${n.padEnd(w)}  ${pct(r.perClass[i] ?? NaN)}`).join('\n') +
              `\n  confusion matrix: ${join(out, 'confusion.csv')}, ${join(out, 'confusion.png')}\n`,
          );
        }
      } catch (e) {
        if (e instanceof Stopped) throw new Stopped(`evaluate stopped by ${stop.reason} after ${done} images; nothing written`);
        throw e;
      } finally {
        disarm();
        await m.release();
      }
    });
}

/** "256,384,512" → [256, 384, 512]. */
function positiveInts(value: string): number[] {
  return value.split(',').map((v) => count(v.trim()));
}

function isZoo(name: string): boolean {
  try {
    findModel(name);
    return true;
  } catch {
    return false;
  }
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

function pct(x: number): string {
  return Number.isFinite(x) ? `${(100 * x).toFixed(2)}%` : '-';
}
