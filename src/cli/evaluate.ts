/**
 * `ilsvrc evaluate <ckpt|onnx> --data …`: top-1/top-5 error, per-class accuracy, confusion matrix,
 * under one of the papers' test protocols: a centre crop, AlexNet's ten crops, multi-scale crops,
 * or VGG's dense evaluation of the whole image (fully convolutional, flips averaged).
 */
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Command, Option } from 'commander';
import { EVAL_RECIPES, EVAL_VIEWS, Loader, openModelData, viewOfCrop, type CropName, type EvalRecipe } from '../data/index.js';
import { HEATMAP_MAX, writeHeatmapPng } from '../plot/chart.js';
import { Confusion, evaluateLoader, type EvalResult, type Tally } from '../train/score.js';
import { confusionTable, type DenseOptions, evaluateDense, PER_CLASS_COLUMNS, perClassRecords, rankClasses } from '../trained/evaluate.js';
import { shownNames } from '../trained/class-names.js';
import { openInference } from '../trained/inference.js';
import { evalTransforms, type InputFlags } from '../trained/input.js';
import { expected, orList, UsageError } from '../util/errors.js';
import { writeCsv } from '../util/csv.js';
import { ensureDir } from '../util/fsx.js';
import { addInputOptions, choice, count, inputFlagsFrom, requireCounts } from './options.js';
import { requireBatchMemory, requireThreads } from '../util/limits.js';
import { requireMemory } from '../util/budget.js';
import { findModel, buildModel } from '../zoo/index.js';
import { outputFloats } from '../train/steps-per-run.js';
import { StopSignal, stopOnSignals, Stopped } from '../util/stop.js';
import { Progress } from './progress.js';

interface EvaluateFlags extends InputFlags {
  data?: string;
  crop?: CropName | 'dense';
  scales?: readonly number[];
  batchSize?: number;
  split: 'val' | 'train';
  out?: string;
  threads?: number;
  json?: boolean;
  confusion: 'auto' | 'full' | 'sparse';
  labels?: string;
}

/** --crop's modes and their notes: the views, then dense, which runs the fully convolutional form instead. */
const EVALUATE_CROPS = new Map<CropName | 'dense', string>([
  ...EVAL_RECIPES.map((v) => [EVAL_VIEWS[v].crop, EVAL_VIEWS[v].note] as const),
  ['dense', 'VGG: whole image, fully convolutional, + flip'],
]);

const SCALED_CROPS = [...EVAL_RECIPES.filter((v) => EVAL_VIEWS[v].scaled).map((v) => EVAL_VIEWS[v].crop), 'dense'];

/** Up to this many classes the text report lists every class; beyond, the worst and best SUMMARY_K and the files. */
const TABLE_MAX = 20;
const SUMMARY_K = 10;

export function makeEvaluateCommand(): Command {
  const cmd = new Command('evaluate')
    .description('accuracy of a checkpoint or exported ONNX model on a dataset (softmax averaged over the crops)')
    .argument(
      '<model>',
      'a training checkpoint (.safetensors), an .onnx file exported by ilsvrc, or an ONNX image classifier from elsewhere',
    )
    .option(
      '--data <spec>',
      "default: the data the model learned from, when its file records it (else 'synthetic'); idx:DIR, cifar:DIR, ilsvrc:DIR (ILSVRC-2012 as distributed) or an ImageFolder DIR",
    )
    .addOption(
      new Option(
        '--crop <mode>',
        `${[...EVALUATE_CROPS].map(([c, n]) => (n ? `${c} (${n})` : c)).join(' | ')}; default: as trained`,
      ).argParser(choice([...EVALUATE_CROPS.keys()])),
    )
    .addOption(
      new Option(
        '--scales <list>',
        'shorter sides for multiscale, googlenet and dense, e.g. 256,384,512 (default at 224 px: dense 256; multiscale 256,288,320; googlenet 256,288,320,352)',
      ).argParser(positiveInts),
    )
    .addOption(new Option('--split <s>', 'val | train').argParser(choice(['val', 'train'] as const)).default('val'))
    .addOption(
      new Option(
        '--batch-size <n>',
        'images per run (default 32; 2 for googlenet, whose 144 views per image make a large batch)',
      ).argParser(count),
    )
    .option('--out <dir>', 'where per_class.csv and confusion.csv/png go (default: beside the model)')
    .addOption(
      new Option(
        '--confusion <form>',
        `confusion.csv: auto (the matrix up to ${Confusion.DENSE_MAX} classes, else sparse) | full (the matrix) | ` +
          'sparse (true,predicted,count)',
      )
        .argParser(choice(['auto', 'full', 'sparse'] as const))
        .default('auto'),
    )
    .addOption(new Option('--threads <n>', 'ORT intra-op threads').argParser(count))
    .option('--json', 'print the result as one JSON object')
    .option('--labels <file>', 'class names, one per line, for a model that carries none')
    .action(async (file: string, f: EvaluateFlags) => {
      // A stop ends the pass within a batch; partial numbers are not the model's: nothing is written.
      const stop = new StopSignal();
      let bar: Progress | undefined;
      const hooks: EvaluateHooks = {
        stop,
        arm: () => stopOnSignals(stop),
        begin: (total, crop) => (bar = new Progress({ total, label: `evaluate ${crop}`, unit: 'img' })),
        progress: (n, t) => bar?.update(n, { top1: `${(100 * t.top1).toFixed(1)}%` }),
        end: () => bar?.finish(),
      };
      const { json: printJson, ...o } = f;
      const e = await runEvaluation(file, o, hooks);
      if (printJson) process.stdout.write(JSON.stringify(e.report) + '\n');
      else process.stdout.write(textReport(e).join('\n') + '\n');
    });
  return addInputOptions(cmd);
}

/** What `evaluate` takes: the flags of `ilsvrc evaluate`, with the same defaults (layout and scaling: an ONNX model from elsewhere). */
export interface EvaluateOptions extends InputFlags {
  /**
   * The dataset: idx:DIR, cifar:DIR, ilsvrc:DIR or an ImageFolder DIR (default: the data the model
   * learned from, when its file records it, else 'synthetic').
   */
  data?: string;
  /** The test protocol (default: the model's own view); 'dense' runs the fully convolutional form. */
  crop?: CropName | 'dense';
  /** Shorter sides for multiscale, googlenet and dense. */
  scales?: readonly number[];
  /** Images per run (default 32; 2 for googlenet's 144 views). */
  batchSize?: number;
  split?: 'val' | 'train';
  /** Where per_class.csv and confusion.csv/png go (default: beside the model). */
  out?: string;
  /** ORT intra-op threads. */
  threads?: number;
  /** confusion.csv: the matrix up to Confusion.DENSE_MAX classes, else the nonzero cells (auto, the default). */
  confusion?: 'auto' | 'full' | 'sparse';
  /** Class names, one per line, for a model that carries none. */
  labels?: string;
  /** Called after each batch: images scored so far, of `total`, and the running top-1 accuracy. */
  onProgress?: (done: number, total: number, top1: number) => void;
}

interface ClassScore {
  class: string | undefined;
  images: number | undefined;
  top1: number | undefined;
}

/**
 * The result of `evaluate`: the object `ilsvrc evaluate --json` prints. Accuracies and errors are
 * fractions; the `_pct` errors are per cent, as the papers give them.
 */
export interface Evaluation {
  model: string;
  crop: string;
  protocol: string;
  scales?: readonly number[];
  n: number;
  top1: number;
  top5: number;
  top1_error: number;
  top5_error: number;
  top1_error_pct: number;
  top5_error_pct: number;
  loss: number;
  /** Images that could not be read (not scored), and the first three as "path: reason". */
  skipped: number;
  skipped_first: string[];
  per_class: Record<string, number | null>;
  worst: ClassScore[];
  best: ClassScore[];
  most_confused: { true: string | undefined; predicted: string | undefined; count: number }[];
  img_per_s: number;
  per_class_csv: string;
  confusion: string;
  confusion_form: 'full' | 'sparse';
  confusion_png: string | null;
}

/**
 * `ilsvrc evaluate` from code: top-1/top-5 accuracy of a checkpoint or .onnx file on a dataset,
 * per_class.csv and confusion.csv/png written to `out`, the numbers returned.
 */
export async function evaluate(file: string, options: EvaluateOptions = {}): Promise<Evaluation> {
  const { onProgress, ...o } = options;
  let total = 0;
  const hooks: EvaluateHooks = {
    begin: (n) => (total = n),
    ...(onProgress ? { progress: (n: number, t: Tally) => onProgress(n, total, t.top1) } : {}),
  };
  return (await runEvaluation(file, o, hooks)).report;
}

/** What the command adds to a run: stopping on signals and a progress bar. */
interface EvaluateHooks {
  stop?: StopSignal;
  /** Starts listening for a stop once the model is open; returns the function that stops listening. */
  arm?: () => () => void;
  begin?: (total: number, crop: string) => void;
  progress?: (done: number, t: Tally) => void;
  /** The pass is over; the reports are written next. */
  end?: () => void;
}

/** One evaluation, with what the text report needs besides the JSON numbers. */
interface EvaluationRun {
  report: Evaluation;
  r: EvalResult;
  names: readonly string[];
  source: string;
  split: 'val' | 'train';
  scaled: boolean;
  secs: number;
  skipped: { path: string; reason: string }[];
  worst: number[];
  best: number[];
  confused: [number, number, number][];
  note: string;
}

async function runEvaluation(file: string, f: Omit<EvaluateOptions, 'onProgress'>, hooks: EvaluateHooks): Promise<EvaluationRun> {
  const split = f.split ?? 'val';
  requireCounts({ '--batch-size': f.batchSize, '--scales': f.scales, '--threads': f.threads });
  if (f.threads !== undefined) requireThreads('--threads', f.threads);
  // The folder is made first, so that a file in its way is found before the evaluation, not after.
  const out = f.out ?? dirname(file);
  ensureDir(out, '--out');
  const dense = f.crop === 'dense';
  const m = await openInference(file, {
    ...(f.threads !== undefined ? { threads: f.threads } : {}),
    dense,
    input: inputFlagsFrom(f),
    labels: f.labels,
  });
  const stop = hooks.stop ?? new StopSignal();
  const disarm = hooks.arm?.();
  let done = 0;
  try {
    const data = await openModelData(f.data, m.data, { channels: m.options.channels === 1 ? 1 : 3 });
    if (data.classes.length !== m.options.classes)
      throw new UsageError(`Expected --data with ${m.options.classes} classes (as ${file}) but it has ${data.classes.length}`);
    const channels = m.input.channels;
    const size = m.options.inputSize;
    const pixels = m.input.height * m.input.width;
    const ds = split === 'val' ? data.val : data.train;
    if (ds.length === 0) throw new UsageError(`Expected images in the ${split} split of ${data.source} but it has none`);
    const view: EvalRecipe = f.crop === undefined || f.crop === 'dense' ? m.view : viewOfCrop(f.crop);
    const scales = f.scales ?? (dense ? [Math.round((size * 256) / 224)] : undefined);
    const scaled = dense || EVAL_VIEWS[view].scaled;
    if (f.scales && !scaled) {
      throw new UsageError(`Expected --crop ${orList(SCALED_CROPS)} with --scales but received --crop ${f.crop ?? view}`);
    }
    const crop: string = dense ? 'dense' : EVAL_VIEWS[view].crop;
    if (f.scales?.some((q) => q < size))
      throw expected(`scales of at least the model's input size ${size}`, '--scales', f.scales.join(','));
    // A scale is the shorter side an image is resized to (at least square); dense runs the whole of it through the network.
    const outputs = isZoo(m.model) ? outputFloats(buildModel(m.model, { ...m.options, aux: false }).graph) : 0;
    const q = Math.max(0, ...(scales ?? []));
    if (q > 0) {
      const what = `--scales ${q} (an image resized to ${q} px${dense ? ' through the whole network' : ''})`;
      requireMemory(4 * q * q * (channels + (dense ? outputs / (size * size) : 0)), what, 'smaller --scales');
    }
    const tf = dense ? undefined : evalTransforms(m.input, view, scales);
    const step = tf?.steps.find((x) => x.op === 'multiScale' || x.op === 'googlenetCrops');
    const shown = step && 'scales' in step ? step.scales : scales;
    const protocol = dense ? `dense, Q ${scales?.join('/')}, flip` : scaled ? `${crop} ${shown?.join('/')}, ${tf?.views} views` : crop;
    hooks.begin?.(ds.length, crop);
    const progress = (n: number, _t: number, t: Tally): void => {
      done = n;
      hooks.progress?.(n, t);
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
      const t = tf ?? evalTransforms(m.input, view);
      const batchSize = f.batchSize ?? (t.views >= 100 ? 2 : 32);
      // Each view: the loader's three batches and the feed, and the network's outputs (a zoo model's;
      // ONNX files from elsewhere count the input only). A batch never holds more images than the split has.
      const perImage = t.views * 4 * (4 * channels * pixels + outputs);
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
    hooks.end?.();
    const names = shownNames(data.classes, m.classes);
    const files = await writeReports(out, r, names, f.confusion ?? 'auto', `Confusion (${m.model}, ${crop})`);
    const skippedFirst = skipped.slice(0, 3).map((s) => `${s.path}: ${s.reason}`);
    const { worst, best } = rankClasses(r, SUMMARY_K);
    const confused = r.confusion.mostConfused(SUMMARY_K);
    const cls = (c: number): ClassScore => ({ class: names[c], images: r.classCounts.images[c], top1: r.perClass[c] });
    const report: Evaluation = {
      model: m.model,
      crop: crop,
      protocol,
      ...(shown && scaled ? { scales: shown } : {}),
      n: r.n,
      top1: r.top1,
      top5: r.top5,
      top1_error: 1 - r.top1,
      top5_error: 1 - r.top5,
      // The papers' form: top-1/top-5 error in per cent, as in their tables.
      top1_error_pct: round2(100 * (1 - r.top1)),
      top5_error_pct: round2(100 * (1 - r.top5)),
      loss: r.loss,
      skipped: skipped.length,
      skipped_first: skippedFirst,
      per_class: Object.fromEntries(names.map((n, i) => [n, r.perClass[i] ?? null])),
      worst: worst.map(cls),
      best: best.map(cls),
      most_confused: confused.map(([t, p, count]) => ({ true: names[t], predicted: names[p], count })),
      img_per_s: r.n / secs,
      per_class_csv: files.perClass,
      confusion: files.confusion,
      confusion_form: files.form,
      confusion_png: files.png ?? null,
    };
    const source = data.source;
    return { report, r, names, source, split, scaled, secs, skipped, worst, best, confused, note: files.note };
  } catch (e) {
    if (e instanceof Stopped) throw new Stopped(`evaluate stopped by ${stop.reason} after ${done} images; nothing written`);
    throw e;
  } finally {
    disarm?.();
    await m.release();
  }
}

/** The command's text report: the papers' numbers in one line, then the per-class part and the files. */
function textReport(e: EvaluationRun): string[] {
  const { r, report } = e;
  return [
    `${report.model} on ${e.source} (${e.split}, ${r.n} images, ${e.scaled ? report.protocol : `${report.crop} crop`}): ` +
      `top-1 error ${pct(1 - r.top1)}, top-5 error ${pct(1 - r.top5)} (top-1 ${pct(r.top1)}), ` +
      `loss ${r.loss.toFixed(4)}, ${(r.n / e.secs).toFixed(1)} img/s`,
    ...(e.skipped.length > 0
      ? [
          `  skipped ${e.skipped.length} unreadable image${e.skipped.length === 1 ? '' : 's'} (not scored): ` +
            `${report.skipped_first.join('; ')}${e.skipped.length > 3 ? '; …' : ''}`,
        ]
      : []),
    ...summary(r, e.names, e.worst, e.best, e.confused).map((l) => `  ${l}`),
    `  per-class table: ${report.per_class_csv}`,
    `  confusion ${e.note}`,
  ];
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

interface ReportFiles {
  perClass: string;
  confusion: string;
  form: 'full' | 'sparse';
  /** Absent when the classes are too many for a heatmap anyone can read. */
  png?: string;
  /** confusion.csv's form and the heatmap, in words. */
  note: string;
}

/**
 * per_class.csv, confusion.csv and, up to HEATMAP_MAX classes, confusion.png. The matrix is
 * written a row at a time from the counts, so --confusion full at 10 000 classes costs disk, not memory.
 */
async function writeReports(
  out: string,
  r: EvalResult,
  names: readonly string[],
  want: 'auto' | 'full' | 'sparse',
  title: string,
): Promise<ReportFiles> {
  const C = names.length;
  const perClass = join(out, 'per_class.csv');
  writeCsv(perClass, PER_CLASS_COLUMNS, perClassRecords(r, names));
  const form = want === 'auto' ? (C <= Confusion.DENSE_MAX ? 'full' : 'sparse') : want;
  const confusion = join(out, 'confusion.csv');
  const table = confusionTable(r.confusion, names, form);
  writeCsv(confusion, table.header, table.records);
  const what = form === 'full' ? `${C}×${C} matrix` : 'nonzero cells as true,predicted,count';
  const png = join(out, 'confusion.png');
  if (C > HEATMAP_MAX) {
    // A heatmap left by an earlier evaluation in this folder would contradict the new numbers.
    rmSync(png, { force: true });
    const note = `(${what}): ${confusion}; no confusion.png: ${C} classes, a heatmap is drawn up to ${HEATMAP_MAX}`;
    return { perClass, confusion, form, note };
  }
  const values = Array.from(r.confusion.rows(), (row) => Array.from(row));
  await writeHeatmapPng(png, { title, rowLabels: names, colLabels: names, values });
  return { perClass, confusion, form, png, note: `(${what}): ${confusion}, ${png}` };
}

/**
 * The text report's per-class part: every class up to TABLE_MAX, else a summary a person reads
 * at 10 000 classes (the worst and best classes, the most confused pairs).
 */
function summary(
  r: EvalResult,
  names: readonly string[],
  worst: readonly number[],
  best: readonly number[],
  confused: readonly [number, number, number][],
): string[] {
  const { images, top1 } = r.classCounts;
  const name = (c: number): string => shown(names[c] ?? '');
  const rows = (cs: readonly number[]): string[] => {
    const w = cs.reduce((m, c) => Math.max(m, name(c).length), 0);
    return cs.map((c) => `${name(c).padEnd(w)}  ${pct(r.perClass[c] ?? NaN).padStart(7)}  ${top1[c]}/${images[c]}`);
  };
  const section = (title: string, lines: readonly string[]): string[] => (lines.length ? [title, ...lines.map((l) => `  ${l}`)] : []);
  const pairs = section(
    'most confused (true → predicted: images):',
    confused.map(([t, p, n]) => `${name(t)} → ${name(p)}: ${n}`),
  );
  if (names.length <= TABLE_MAX) return [...rows(names.map((_, c) => c)), ...pairs];
  const withImages = images.reduce((a, n) => a + (n > 0 ? 1 : 0), 0);
  return [
    `${names.length} classes, ${withImages} with images; top-1 accuracy, correct/images:`,
    ...section(`worst ${worst.length}:`, rows(worst)),
    ...section(`best ${best.length}:`, rows(best)),
    ...pairs,
  ];
}

/** A class name as one line of a terminal: one holding control characters (a newline) is quoted as JSON. */
function shown(name: string): string {
  return /[\u0000-\u001f\u007f]/.test(name) ? JSON.stringify(name) : name;
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

function pct(x: number): string {
  return Number.isFinite(x) ? `${(100 * x).toFixed(2)}%` : '-';
}
