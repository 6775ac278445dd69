/**
 * `ilsvrc train [model] [--data …]`: the whole experiment loop from one command. With neither a
 * model nor data it is the demo: a thin VGG-A on the built-in synthetic shapes, sized to finish in
 * under a minute on two CPU cores. The flags are `RunOptions` (src/train/run.ts), which plans and
 * runs; this module parses them and prints.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { FILES, type FitResult } from '../train/fit.js';
import { train, type RunOptions, type RunStart } from '../train/run.js';
import { parseMilestones, SCHEDULES } from '../train/schedule.js';
import { TRAIN_RECIPES } from '../data/index.js';
import { OPTIMIZER_KINDS, SGD_CONVENTIONS } from '../optim/optimizer.js';
import {
  addModelOptions,
  choice,
  count,
  countOrZero,
  nonNegativeFloat,
  nonNegativeInt,
  positiveFloat,
  positiveInt,
  rate,
  seed,
  splitModelFlags,
  type ModelFlags,
} from './options.js';
import { formatDuration, Progress } from './progress.js';
import { StopSignal, stopOnSignals } from '../util/stop.js';

/** What commander hands the action: RunOptions with the model options flat, and --json. */
type TrainFlags = Omit<RunOptions, 'model' | 'modelOptions' | 'synthetic'> & ModelFlags & { json?: boolean };

export function makeTrainCommand(): Command {
  const cmd = new Command('train')
    .description('train a model (no model and no --data: the demo on the built-in synthetic shapes)')
    .argument('[model]', 'model name or alias (see `ilsvrc models`)')
    .option('--data <spec>', "'synthetic' (default), idx:DIR, cifar:DIR, ilsvrc:DIR or an ImageFolder DIR")
    .addOption(new Option('--epochs <n>', 'epochs (default 10; demo 10)').argParser(count))
    .addOption(new Option('--batch-size <n>', "images per batch (default: the paper's)").argParser(count))
    .addOption(new Option('--accum <n>', 'micro-batches per optimizer step (gradient accumulation)').argParser(count))
    .addOption(new Option('--optimizer <kind>', OPTIMIZER_KINDS.join(' | ')).argParser(choice(OPTIMIZER_KINDS)))
    .addOption(new Option('--lr <x>', "base learning rate (default: the paper's)").argParser(positiveFloat))
    .addOption(new Option('--momentum <x>', "SGD momentum (default: the paper's)").argParser(nonNegativeFloat))
    .addOption(new Option('--weight-decay <x>', "L2 / decoupled decay (default: the paper's)").argParser(nonNegativeFloat))
    .addOption(
      new Option(
        '--convention <c>',
        `SGD momentum convention: ${SGD_CONVENTIONS.map((c, i) => (i ? c : `${c} (default)`)).join(' | ')}`,
      ).argParser(choice(SGD_CONVENTIONS)),
    )
    .addOption(
      new Option('--schedule <kind>', `lr schedule: ${SCHEDULES.join(' | ')} (default plateau: ÷10 when val loss stalls)`).argParser(
        choice(SCHEDULES),
      ),
    )
    .addOption(new Option('--step-size <epochs>', 'step: epochs between decays (default 30)').argParser(positiveInt))
    .addOption(new Option('--milestones <list>', 'multistep: epochs of decay, e.g. 30,60').argParser(parseMilestones))
    .addOption(new Option('--gamma <x>', 'decay factor of step/multistep/plateau (default 0.1)').argParser(rate))
    .addOption(new Option('--power <x>', 'poly exponent (default 0.5)').argParser(positiveFloat))
    .addOption(
      new Option('--patience <epochs>', 'plateau: epochs without improvement before a decay (default 2)').argParser(nonNegativeInt),
    )
    .addOption(new Option('--warmup-steps <n>', 'linear warmup over this many optimizer steps').argParser(nonNegativeInt))
    .addOption(new Option('--min-lr <x>', 'floor of cosine/poly (default 0)').argParser(nonNegativeFloat))
    .addOption(new Option('--label-smoothing <x>', 'label smoothing ε (default 0)').argParser(rate))
    .addOption(
      new Option('--aux-weight <x>', "GoogLeNet auxiliary loss weight (with --aux; default: the paper's 0.3)").argParser(nonNegativeFloat),
    )
    .addOption(new Option('--augment <preset>', `${TRAIN_RECIPES.join(' | ')} (default: the paper's)`).argParser(choice(TRAIN_RECIPES)))
    .option('--device <dev>', 'cpu (default) | cuda[:N] | webgpu (README "GPU and Docker")')
    .addOption(new Option('--threads <n>', 'ORT intra-op threads (default 0: all cores)').argParser(countOrZero))
    .addOption(new Option('--seed <n>', 'seed of weights, shuffles, augmentation, dropout (default 0)').argParser(seed))
    .option('--out <dir>', 'output folder (default runs/<model>-<time>)')
    .option('--resume [ckpt]', 'continue a run from a checkpoint or a run folder (default: <out>/last.safetensors)')
    .addOption(new Option('--max-steps <n>', 'stop after this many optimizer steps (default 0: no limit)').argParser(nonNegativeInt))
    .addOption(
      new Option(
        '--steps-per-run <k>',
        'optimizer steps per session run (ONNX Loop; default: on cpu from the cost of a step, up to 16; 1 on webgpu; by memory on cuda; ' +
          'runs of about a second at most, as a stop waits for the run)',
      ).argParser(count),
    )
    .addOption(
      new Option('--checkpoint-every <steps>', 'also write last.safetensors every N steps (default 0: at epoch ends only)').argParser(
        nonNegativeInt,
      ),
    )
    .addOption(
      new Option('--early-stop <epochs>', 'stop after N epochs without a better val top-1 (default 0: never)').argParser(nonNegativeInt),
    )
    .option('--from <ckpt>', 'initial weights from a checkpoint (transfer learning)')
    .option(
      '--freeze <what>',
      "keep parameters fixed: 'features' (all conv and batch norm layers) or a comma list of names/prefixes; " +
        'a batch norm layer whose weight and bias are both frozen runs in eval mode (running statistics used, not updated)',
    )
    .option('--reset-classifier', 'with --from: new random weights for the last layer (e.g. other classes)')
    .addOption(new Option('--workers <n>', 'loader worker threads (default 0: sharp threads)').argParser(countOrZero))
    .option('--in-process', 'run the session on the main thread (no worker)')
    .option('--json', 'print the result as one JSON object on the last line');
  // --init is the model option (paper | kaiming); ZFNet-style transfer uses --from.
  return addModelOptions(cmd).action(async (name: string | undefined, flags: TrainFlags) => {
    const { model: mo, rest } = splitModelFlags(flags);
    const { json, ...run } = rest;
    await runTrain(
      { ...run, ...(name !== undefined ? { model: name } : {}), ...(Object.keys(mo).length ? { modelOptions: mo } : {}) },
      json === true,
    );
  });
}

/** Runs `train` with a progress bar per epoch, an epoch line, SIGINT/SIGTERM handling and a closing summary. */
async function runTrain(options: RunOptions, json: boolean): Promise<void> {
  const err = process.stderr;
  let bar: Progress | undefined;
  const stop = new StopSignal();
  const disarm = stopOnSignals(stop, (sig) => {
    const m = `${sig}: finishing the current run of steps (validation stops at once) and writing a checkpoint (again to quit at once)`;
    if (bar) bar.log(m);
    else err.write(`\n${m}\n`);
  });
  let epochs = 0;
  let out = '';
  let result: FitResult;
  try {
    result = await train(options, {
      start: (r: RunStart) => {
        ({ out } = r);
        epochs = r.config.epochs;
        err.write(header(r));
      },
      log: (m) => (bar ? bar.log(m) : err.write(`${m}\n`)),
      epochStart: (e, done, total) => {
        bar = new Progress({ total, start: done, label: `epoch ${e + 1}/${epochs}`, unit: 'img' });
      },
      progress: (_e, done, _total, fields) => bar?.update(done, fields),
      // The epoch's bar ends when its steps do, so a log shows where validation begins.
      validationStart: (e, total) => {
        bar?.finish();
        bar = new Progress({ total, label: `validate ${e + 1}/${epochs}`, unit: 'img' });
      },
      validationProgress: (done) => bar?.update(done),
      epochEnd: (s) => {
        bar?.finish();
        bar = undefined;
        const unreadable =
          s.skipped_train + s.skipped_val > 0
            ? ` | skipped unreadable images: ${s.skipped_train} train, ${s.skipped_val} val (${s.skipped_first.join('; ')})`
            : '';
        err.write(
          `epoch ${s.epoch}/${epochs}${Number.isInteger(s.epoch) ? '' : ` (step ${s.step})`}: train loss ${s.train_loss.toFixed(3)} top-1 ${pct(s.train_top1)} | val loss ${s.val_loss.toFixed(3)} top-1 ${pct(s.val_top1)} top-5 ${pct(s.val_top5)} | ${Math.round(s.img_per_s)} img/s, ${formatDuration(s.seconds)}${s.data_wait_s > 0.1 * s.seconds ? `, ${Math.round((100 * s.data_wait_s) / s.seconds)}% waiting for data` : ''}${unreadable}\n`,
        );
      },
      stop,
    });
  } finally {
    bar?.finish();
    disarm();
  }
  err.write(footer(result, out));
  if (json) {
    process.stdout.write(
      JSON.stringify({
        best_top1: result.bestTop1,
        best_top5: result.bestTop5,
        epochs: result.epochs,
        steps: result.step,
        seconds: Math.round(result.seconds * 10) / 10,
        out,
        reason: result.reason,
        skipped: result.skipped,
      }) + '\n',
    );
  }
}

function header({ config, data, out, resumed }: RunStart): string {
  const mo = config.modelOptions;
  return (
    `${resumed ? 'resuming' : 'training'} ${config.model} (width ${mo.width}, ${mo.inputSize} px, ${mo.classes} classes) on ${data.source}: ${data.train.length} train / ${data.val.length} val images\n` +
    `  ${config.epochs} epochs${config.maxSteps > 0 ? ` (stopping at step ${config.maxSteps}: --max-steps)` : ''}, batch ${config.batch}${config.accum > 1 ? ` × ${config.accum}` : ''}, ${config.optimizer.kind} lr ${config.schedule.lr} (${config.schedule.kind}), ${config.augment} augmentation, out ${out}\n`
  );
}

function footer(result: FitResult, out: string): string {
  const how = { done: 'done', interrupted: 'interrupted', 'max-steps': 'stopped at --max-steps', 'early-stop': 'stopped early' }[
    result.reason
  ];
  return (
    `${how} after ${result.epochs} epoch${result.epochs === 1 ? '' : 's'} (${result.step} steps) in ${formatDuration(result.seconds)}: best val top-1 ${pct(result.bestTop1)}, top-5 ${pct(result.bestTop5)} (epoch ${result.bestEpoch})\n` +
    `  checkpoints ${join(out, FILES.last)}${result.bestEpoch > 0 ? `, ${join(out, FILES.best)}` : ''}${existsSync(join(out, FILES.jsonl)) ? `; metrics ${join(out, FILES.jsonl)}, ${FILES.csv}, loss.png, accuracy.png, lr.png` : ''}; TensorBoard: tensorboard --logdir ${out}\n` +
    (result.skipped.train + result.skipped.val > 0
      ? `  skipped unreadable images: ${result.skipped.train} train, ${result.skipped.val} val (${result.skipped.first.join('; ')})\n`
      : '') +
    (result.reason === 'interrupted' ? `  continue with: ilsvrc train --resume ${join(out, FILES.last)}\n` : '')
  );
}

function pct(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}
