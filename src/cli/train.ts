/**
 * `ilsvrc train [model] [--data …]`: the whole experiment loop from one command. With neither a
 * model nor data it is the demo: a thin VGG-A on the built-in synthetic shapes, sized to finish in
 * about three minutes on two CPU cores.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { buildModel, findModel, modelOptions, type ModelOptions, type ModelSpec } from '../../graphs/index.js';
import { openDataset, type DatasetSplits, type SyntheticOptions, type TrainRecipe } from '../data/index.js';
import { initParams } from '../graph/init.js';
import { DEFAULT_OPTIMIZER, type OptimizerConfig } from '../optim/optimizer.js';
import { loadCheckpoint, type Checkpoint } from '../runtime/checkpoint.js';
import { defaultStepsPerRun, probeDevice, resolveDevice, type Device } from '../runtime/device.js';
import { checkResumable } from '../train/inference.js';
import { fit, FILES, type FitConfig, type FitResult } from '../train/fit.js';
import { DEFAULT_SCHEDULE, parseMilestones, SCHEDULES, type ScheduleConfig, type ScheduleKind } from '../train/schedule.js';
import { expected, UsageError } from '../util/errors.js';
import { ensureDir } from '../util/fsx.js';
import { lockDir, type DirLock } from '../util/lock.js';
import { addModelOptions, choice, fileInFolder, modelOptionsFrom, nonNegativeFloat, nonNegativeInt, positiveFloat, positiveInt, rate, seed, type ModelFlags } from './options.js';
import { formatDuration, Progress } from './progress.js';

/** The demo's settings (measured on 2 cores: see README "Quick start"). */
export const DEMO = {
  model: 'vgg-a',
  width: 0.0625,
  inputSize: 32,
  epochs: 10,
  batch: 32,
  // AdamW: plain SGD moves a BN-free VGG this thin off the plateau much later.
  optimizer: 'adamw',
  lr: 0.003,
  schedule: 'cosine',
  warmupSteps: 30,
  weightDecay: 1e-4,
  augment: 'none',
  init: 'kaiming',
  dropout: 0,
  /** More, smaller renders than the default set: 300 per class overfit within the demo's epochs. */
  synthetic: { perClass: 1000, size: 32 },
} as const;

interface TrainFlags extends ModelFlags {
  data?: string;
  epochs?: number;
  batchSize?: number;
  accum: number;
  optimizer?: OptimizerConfig['kind'];
  lr?: number;
  momentum?: number;
  weightDecay?: number;
  convention: OptimizerConfig['convention'];
  schedule?: ScheduleKind;
  stepSize: number;
  milestones?: number[];
  gamma: number;
  power: number;
  patience: number;
  warmupSteps?: number;
  minLr: number;
  labelSmoothing: number;
  auxWeight?: number;
  augment?: TrainRecipe;
  device: string;
  threads: number;
  seed: number;
  out?: string;
  resume?: string | true;
  maxSteps: number;
  stepsPerRun?: number;
  checkpointEvery: number;
  earlyStop: number;
  init?: ModelOptions['init'];
  from?: string;
  freeze?: string;
  resetClassifier?: boolean;
  workers: number;
  inProcess?: boolean;
  json?: boolean;
}


export function makeTrainCommand(): Command {
  const cmd = new Command('train')
    .description('train a model (no model and no --data: the demo on the built-in synthetic shapes)')
    .argument('[model]', 'model name or alias (see `ilsvrc models`)')
    .option('--data <spec>', "'synthetic' (default), idx:DIR, cifar:DIR or an ImageFolder DIR")
    .addOption(new Option('--epochs <n>', 'epochs (default 10; demo 10)').argParser(positiveInt))
    .addOption(new Option('--batch-size <n>', "images per batch (default: the paper's)").argParser(positiveInt))
    .addOption(new Option('--accum <n>', 'micro-batches per optimizer step (gradient accumulation)').argParser(positiveInt).default(1))
    .addOption(new Option('--optimizer <kind>', 'sgd | nesterov | adamw').argParser(choice(['sgd', 'nesterov', 'adamw'] as const)))
    .addOption(new Option('--lr <x>', "base learning rate (default: the paper's)").argParser(positiveFloat))
    .addOption(new Option('--momentum <x>', "SGD momentum (default: the paper's)").argParser(nonNegativeFloat))
    .addOption(new Option('--weight-decay <x>', "L2 / decoupled decay (default: the paper's)").argParser(nonNegativeFloat))
    .addOption(new Option('--convention <c>', 'SGD momentum convention: pytorch | caffe').argParser(choice(['pytorch', 'caffe'] as const)).default('pytorch'))
    .addOption(new Option('--schedule <kind>', `lr schedule: ${SCHEDULES.join(' | ')} (default plateau: ÷10 when val loss stalls)`).argParser(choice(SCHEDULES)))
    .addOption(new Option('--step-size <epochs>', 'step: epochs between decays').argParser(positiveInt).default(30))
    .addOption(new Option('--milestones <list>', 'multistep: epochs of decay, e.g. 30,60').argParser(parseMilestones))
    .addOption(new Option('--gamma <x>', 'decay factor of step/multistep/plateau').argParser(rate).default(0.1))
    .addOption(new Option('--power <x>', 'poly exponent').argParser(positiveFloat).default(0.5))
    .addOption(new Option('--patience <epochs>', 'plateau: epochs without improvement before a decay').argParser(nonNegativeInt).default(2))
    .addOption(new Option('--warmup-steps <n>', 'linear warmup over this many optimizer steps').argParser(nonNegativeInt))
    .addOption(new Option('--min-lr <x>', 'floor of cosine/poly').argParser(nonNegativeFloat).default(0))
    .addOption(new Option('--label-smoothing <x>', 'label smoothing ε').argParser(rate).default(0))
    .addOption(new Option('--aux-weight <x>', "GoogLeNet auxiliary loss weight (with --aux; default: the paper's 0.3)").argParser(nonNegativeFloat))
    .addOption(new Option('--augment <preset>', "alexnet | vgg | googlenet | cifar | flip | none (default: the paper's)").argParser(choice(['alexnet', 'vgg', 'googlenet', 'cifar', 'flip', 'none'] as const)))
    .option('--device <dev>', 'cpu | cuda[:N] | webgpu (README "GPU and Docker")', 'cpu')
    .addOption(new Option('--threads <n>', 'ORT intra-op threads (0: all cores)').argParser(nonNegativeInt).default(0))
    .addOption(new Option('--seed <n>', 'seed of weights, shuffles, augmentation, dropout').argParser(seed).default(0))
    .option('--out <dir>', 'output folder (default runs/<model>-<time>)')
    .option('--resume [ckpt]', 'continue a run from a checkpoint or a run folder (default: <out>/last.safetensors)')
    .addOption(new Option('--max-steps <n>', 'stop after this many optimizer steps').argParser(nonNegativeInt).default(0))
    .addOption(new Option('--steps-per-run <k>', 'optimizer steps per session run (ONNX Loop; default 4 on cpu, 1 on webgpu, by memory on cuda)').argParser(positiveInt))
    .addOption(new Option('--checkpoint-every <steps>', 'also write last.safetensors every N steps').argParser(nonNegativeInt).default(0))
    .addOption(new Option('--early-stop <epochs>', 'stop after N epochs without a better val top-1').argParser(nonNegativeInt).default(0))
    .option('--from <ckpt>', 'initial weights from a checkpoint (transfer learning)')
    .option('--freeze <what>', "keep parameters fixed: 'features' (all conv layers) or a comma list of names/prefixes")
    .option('--reset-classifier', 'with --from: new random weights for the last layer (e.g. other classes)')
    .addOption(new Option('--workers <n>', 'loader worker threads (0: sharp threads)').argParser(nonNegativeInt).default(0))
    .option('--in-process', 'run the session on the main thread (no worker)')
    .option('--json', 'print the result as one JSON object on the last line');
  // --init is the model option (paper | kaiming); ZFNet-style transfer uses --from.
  return addModelOptions(cmd).action(async (name: string | undefined, flags: TrainFlags, command: Command) => {
    const code = await runTrain(name, flags, (opt) => command.getOptionValueSource(opt) === 'cli');
    if (code !== 0) process.exitCode = code;
  });
}

async function openData(spec: string | undefined, seedValue: number, synthetic?: SyntheticOptions): Promise<DatasetSplits> {
  return openDataset(spec, { seed: seedValue, ...(synthetic ? { synthetic } : {}) });
}

/** Checks --device before any data is read: a missing provider is one line, exit 2. */
async function checkDevice(d: string, threads: number): Promise<Device> {
  const r = resolveDevice(d, threads > 0 ? { threads } : {});
  await probeDevice(r);
  return r.device;
}

function readCheckpoint(path: string, flag: string): Checkpoint {
  if (!existsSync(path)) throw new UsageError(`Expected a checkpoint for ${flag} but ${path} does not exist`);
  return loadCheckpoint(path);
}

/** Parameter names to freeze: 'features' = every conv layer; otherwise names or prefixes. */
export function frozenNames(spec: ModelSpec, opts: ModelOptions, what: string): string[] {
  const params = buildModel(spec, opts, { training: true, batch: 1 }).graph.params;
  const layer = (n: string) => n.slice(0, n.lastIndexOf('.'));
  if (what === 'features') {
    const convs = new Set(params.filter((p) => p.value.shape.length === 4).map((p) => layer(p.value.name ?? '')));
    return params.map((p) => p.value.name ?? '').filter((n) => convs.has(layer(n)));
  }
  const wanted = what.split(',').map((s) => s.trim()).filter(Boolean);
  const out = params.map((p) => p.value.name ?? '').filter((n) => wanted.some((w) => n === w || n.startsWith(`${w}.`) || n.startsWith(w)));
  const unmatched = wanted.filter((w) => !params.some((p) => (p.value.name ?? '').startsWith(w)));
  if (unmatched.length) throw expected(`'features' or parameter names of ${spec.name}`, '--freeze', unmatched.join(','));
  return out;
}

async function runTrain(name: string | undefined, flags: TrainFlags, given: (opt: string) => boolean): Promise<number> {
  const device = await checkDevice(flags.device, flags.threads);
  // The run folder is locked before any other work, so two runs never share one (nor a --resume a live run).
  let lock: DirLock | undefined;
  try {
    if (flags.resume === true && flags.out !== undefined) lock = lockDir(flags.out, `--out ${flags.out}`);
    // --resume --out DIR on a first run (a restarted job) starts the run.
    const fresh = flags.resume === true && flags.out !== undefined && !existsSync(join(flags.out, FILES.last));
    return await planAndTrain(name, flags, given, device, fresh, (dir) => (lock ??= lockDir(dir, `--out ${dir}`)));
  } finally {
    lock?.release();
  }
}

async function planAndTrain(name: string | undefined, flags: TrainFlags, given: (opt: string) => boolean, device: Device, fresh: boolean, lock: (dir: string) => DirLock): Promise<number> {
  let resume: Checkpoint | undefined;
  let config: FitConfig;
  let dataSpec = flags.data;
  let synthetic: SyntheticOptions | undefined;
  let out = flags.out;
  if (flags.resume !== undefined && !fresh) {
    const path = typeof flags.resume === 'string' ? fileInFolder(flags.resume, FILES.last) : out !== undefined ? join(out, FILES.last) : undefined;
    if (path === undefined) throw new UsageError('Expected --resume <ckpt> or --out <dir> holding last.safetensors but received neither');
    resume = readCheckpoint(path, '--resume');
    const saved = resume.meta.extra?.['fit'] as FitConfig | undefined;
    if (!saved) throw new UsageError(`Expected a checkpoint written by ilsvrc train for --resume but ${path} has no training state`);
    checkResumable(resume, path);
    const args = (resume.meta.extra?.['args'] ?? {}) as { data?: string; out?: string; synthetic?: SyntheticOptions };
    synthetic = args.synthetic;
    config = { ...saved };
    // What may change on resume: how long to go on, and how to run; never what the steps compute.
    if (flags.epochs !== undefined) config.epochs = flags.epochs;
    if (given('maxSteps')) config.maxSteps = flags.maxSteps;
    if (given('threads')) config.threads = flags.threads;
    if (given('workers')) config.loaderWorkers = flags.workers;
    if (given('checkpointEvery')) config.checkpointEvery = flags.checkpointEvery;
    if (flags.inProcess) config.worker = false;
    if (given('device')) config.device = flags.device;
    config.device ??= 'cpu';
    dataSpec ??= args.data;
    out ??= args.out ?? join(path, '..');
    lock(out);
  } else {
    const demo = name === undefined && flags.data === undefined;
    if (name === undefined && !demo) throw new UsageError('Expected a model name (see `ilsvrc models`) with --data but received none');
    const spec = findModel(name ?? DEMO.model);
    const r = spec.recipe;
    if (demo) synthetic = { ...DEMO.synthetic };
    out ??= join('runs', `${demo ? 'demo' : spec.name}-${new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15)}`);
    lock(out);
    if (existsSync(join(out, FILES.last))) throw new UsageError(`Expected an --out folder without a run in it, or --resume, but ${out} already has ${FILES.last}`);
    const data = await openData(dataSpec, flags.seed, synthetic);
    const given0 = modelOptionsFrom(flags);
    const mo = modelOptions(spec, {
      ...(demo ? { width: DEMO.width, inputSize: DEMO.inputSize, init: DEMO.init, dropout: DEMO.dropout } : {}),
      ...given0,
      classes: given0.classes ?? data.classes.length,
      channels: given0.channels ?? data.channels,
    });
    if (mo.classes !== data.classes.length) throw expected(`${data.classes.length} (the classes in --data)`, '--classes', mo.classes);
    const optimizer: OptimizerConfig = {
      ...DEFAULT_OPTIMIZER,
      kind: flags.optimizer ?? (demo ? DEMO.optimizer : r.optimizer),
      momentum: flags.momentum ?? r.momentum,
      weightDecay: flags.weightDecay ?? (demo ? DEMO.weightDecay : r.weightDecay),
      convention: flags.convention,
    };
    const schedule: ScheduleConfig = {
      ...DEFAULT_SCHEDULE,
      kind: flags.schedule ?? (demo ? DEMO.schedule : 'plateau'),
      lr: flags.lr ?? (demo ? DEMO.lr : optimizer.kind === 'adamw' ? 1e-3 : r.lr),
      stepSize: flags.stepSize,
      milestones: flags.milestones ?? [],
      gamma: flags.gamma,
      power: flags.power,
      patience: flags.patience,
      warmupSteps: flags.warmupSteps ?? (demo ? DEMO.warmupSteps : 0),
      minLr: flags.minLr,
    };
    if (schedule.kind === 'multistep' && schedule.milestones.length === 0) throw new UsageError('Expected --milestones with --schedule multistep but received none');
    let frozen: string[] = [];
    let init: Map<string, Float32Array> | undefined;
    if (flags.freeze !== undefined) frozen = frozenNames(spec, mo, flags.freeze);
    if (flags.resetClassifier && flags.from === undefined) throw new UsageError('Expected --from <ckpt> with --reset-classifier but received none');
    if (flags.from !== undefined) init = transferWeights(spec, mo, readCheckpoint(flags.from, '--from'), flags.from, flags.resetClassifier === true, flags.seed);
    const batch = flags.batchSize ?? (demo ? DEMO.batch : r.batchSize);
    config = {
      device: device.text,
      model: spec.name,
      modelOptions: mo,
      batch,
      accum: flags.accum,
      epochs: flags.epochs ?? (demo ? DEMO.epochs : 10),
      optimizer,
      schedule,
      labelSmoothing: flags.labelSmoothing,
      auxWeight: flags.auxWeight,
      frozen,
      seed: flags.seed,
      augment: flags.augment ?? (demo ? DEMO.augment : r.augment),
      stepsPerRun: flags.stepsPerRun ?? defaultStepsPerRun(device, { model: spec.name, modelOptions: mo, batch, optimizer }).k,
      maxSteps: flags.maxSteps,
      checkpointEvery: flags.checkpointEvery,
      earlyStop: flags.earlyStop,
      loaderWorkers: flags.workers,
      threads: flags.threads,
      worker: flags.inProcess !== true,
    };
    return train(config, data, out, undefined, init, { dataSpec, synthetic }, flags.json === true);
  }
  const data = await openData(dataSpec, config.seed, synthetic);
  return train(config, data, out, resume, undefined, { dataSpec, synthetic }, flags.json === true);
}

/** --from: the checkpoint's weights; with --reset-classifier the last layer's from the seed. */
function transferWeights(spec: ModelSpec, mo: ModelOptions, ck: Checkpoint, file: string, reset: boolean, seedValue: number): Map<string, Float32Array> {
  const params = buildModel(spec, { ...mo, aux: mo.aux }, { training: true, batch: 1 }).graph.params;
  const fresh = initParams(params, seedValue);
  const last = params.filter((p) => p.value.name?.startsWith('loss1') !== true && p.value.name?.startsWith('loss2') !== true).slice(-2).map((p) => p.value.name ?? '');
  const out = new Map<string, Float32Array>();
  const bad: string[] = [];
  for (const p of params) {
    const n = p.value.name ?? '';
    const w = ck.state.params.get(n);
    if (reset && last.includes(n)) out.set(n, fresh.get(n)!);
    else if (w && w.length === p.value.size) out.set(n, w);
    else bad.push(n);
  }
  if (bad.length) throw new UsageError(`Expected ${file} to fit ${spec.name} with these options but ${bad.slice(0, 3).join(', ')}${bad.length > 3 ? ` and ${bad.length - 3} more` : ''} differ${reset ? '' : ' (other classes? add --reset-classifier)'}`);
  return out;
}

interface DataArgs {
  dataSpec: string | undefined;
  synthetic: SyntheticOptions | undefined;
}

async function train(config: FitConfig, data: DatasetSplits, out: string, resume: Checkpoint | undefined, init: Map<string, Float32Array> | undefined, d: DataArgs, json: boolean): Promise<number> {
  ensureDir(out, '--out');
  const err = process.stderr;
  const mo = config.modelOptions;
  err.write(
    `${resume ? 'resuming' : 'training'} ${config.model} (width ${mo.width}, ${mo.inputSize} px, ${mo.classes} classes) on ${data.source}: ${data.train.length} train / ${data.val.length} val images\n` +
      `  ${config.epochs} epochs${config.maxSteps > 0 ? ` (stopping at step ${config.maxSteps}: --max-steps)` : ''}, batch ${config.batch}${config.accum > 1 ? ` × ${config.accum}` : ''}, ${config.optimizer.kind} lr ${config.schedule.lr} (${config.schedule.kind}), ${config.augment} augmentation, out ${out}\n`,
  );
  let stop = false;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (stop) process.exit(130); // a second ^C: the user means it
    stop = true;
    err.write(`\n${sig}: finishing the current run and writing a checkpoint (again to quit at once)\n`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let bar: Progress | undefined;
  let result: FitResult;
  try {
    result = await fit({
      config,
      data,
      out,
      ...(resume ? { resume } : {}),
      ...(init ? { initParams: init } : {}),
      args: { ...(d.dataSpec !== undefined ? { data: d.dataSpec } : {}), ...(d.synthetic ? { synthetic: d.synthetic } : {}), out },
      hooks: {
        log: (m) => (bar ? bar.log(m) : err.write(`${m}\n`)),
        epochStart: (e, done, total) => {
          bar = new Progress({ total, start: done, label: `epoch ${e + 1}/${config.epochs}`, unit: 'img' });
        },
        progress: (_e, done, _total, fields) => bar?.update(done, fields),
        epochEnd: (s) => {
          bar?.finish();
          bar = undefined;
          const unreadable = s.skipped_train + s.skipped_val > 0 ? ` | skipped unreadable images: ${s.skipped_train} train, ${s.skipped_val} val (${s.skipped_first.join('; ')})` : '';
          err.write(
            `epoch ${s.epoch}/${config.epochs}${Number.isInteger(s.epoch) ? '' : ` (step ${s.step})`}: train loss ${s.train_loss.toFixed(3)} top-1 ${pct(s.train_top1)} | val loss ${s.val_loss.toFixed(3)} top-1 ${pct(s.val_top1)} top-5 ${pct(s.val_top5)} | ${Math.round(s.img_per_s)} img/s, ${formatDuration(s.seconds)}${s.data_wait_s > 0.1 * s.seconds ? `, ${Math.round((100 * s.data_wait_s) / s.seconds)}% waiting for data` : ''}${unreadable}\n`,
          );
        },
        stopRequested: () => stop,
      },
    });
  } finally {
    bar?.finish();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  const how = { done: 'done', interrupted: 'interrupted', 'max-steps': 'stopped at --max-steps', 'early-stop': 'stopped early' }[result.reason];
  err.write(
    `${how} after ${result.epochs} epoch${result.epochs === 1 ? '' : 's'} (${result.step} steps) in ${formatDuration(result.seconds)}: best val top-1 ${pct(result.bestTop1)}, top-5 ${pct(result.bestTop5)} (epoch ${result.bestEpoch})\n` +
      `  checkpoints ${join(out, FILES.last)}${result.bestEpoch > 0 ? `, ${join(out, FILES.best)}` : ''}${existsSync(join(out, FILES.jsonl)) ? `; metrics ${join(out, FILES.jsonl)}, ${FILES.csv}, loss.png, accuracy.png, lr.png` : ''}; TensorBoard: tensorboard --logdir ${out}\n` +
      (result.skipped.train + result.skipped.val > 0 ? `  skipped unreadable images: ${result.skipped.train} train, ${result.skipped.val} val (${result.skipped.first.join('; ')})\n` : '') +
      (result.reason === 'interrupted' ? `  continue with: ilsvrc train --resume ${join(out, FILES.last)}\n` : ''),
  );
  if (json) {
    process.stdout.write(
      JSON.stringify({ best_top1: result.bestTop1, best_top5: result.bestTop5, epochs: result.epochs, steps: result.step, seconds: Math.round(result.seconds * 10) / 10, out, reason: result.reason, skipped: result.skipped }) + '\n',
    );
  }
  return 0;
}

function pct(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}
