/**
 * A training run from what a user asks for: `RunOptions` (the CLI's flags, or a TypeScript
 * program's options, every field optional) become the one run config (`FitConfig`) by the pure
 * `planRun` / `planResume`; `train` does the effects around `fit` — the device check, the run
 * folder's lock, the checkpoint, the data, transfer weights — and returns fit's result.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { buildModel, findModel, modelOptions, type ModelOptions, type ModelSpec } from '../zoo/index.js';
import { openDataset, type DataIdentity, type DatasetSplits, type SyntheticOptions } from '../data/index.js';
import { initParams } from '../graph/init.js';
import { DEFAULT_OPTIMIZER, type OptimizerConfig } from '../optim/optimizer.js';
import { loadCheckpoint, type Checkpoint } from './checkpoint.js';
import { probeDevice, resolveDevice, type Device } from '../runtime/device.js';
import { expected, UsageError } from '../util/errors.js';
import { fileInFolder } from '../util/fsx.js';
import { lockDir, type DirLock } from '../util/lock.js';
import type { FitConfig } from './config.js';
import { fit, FILES, stepsPerEpoch, type FitHooks, type FitResult } from './fit.js';
import { checkResumable } from './checkpoint.js';
import { defaultStepsPerRun, stepFootprint, stepMemory, weightMemory } from './steps-per-run.js';
import { formatBytes, machineBudget, requireMemory } from '../util/budget.js';
import { requireThreads, requireWorkers } from '../util/limits.js';
import { DEFAULT_SCHEDULE, type ScheduleConfig, type ScheduleKind } from './schedule.js';

/** The demo's settings (measured on 2 cores: see README "Quick start"). */
const DEMO = {
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

/** Defaults of the options that are not the paper's recipe. */
export const RUN_DEFAULTS = {
  epochs: 10,
  accum: 1,
  convention: 'pytorch',
  schedule: 'plateau',
  adamwLr: 1e-3,
  device: 'cpu',
  threads: 0,
  seed: 0,
  maxSteps: 0,
  checkpointEvery: 0,
  earlyStop: 0,
  workers: 0,
} as const;

/** The run config's fields a user gives under the config's own names. */
type GivenConfig = Partial<
  Pick<
    FitConfig,
    | 'epochs'
    | 'accum'
    | 'labelSmoothing'
    | 'auxWeight'
    | 'augment'
    | 'device'
    | 'threads'
    | 'seed'
    | 'maxSteps'
    | 'stepsPerRun'
    | 'checkpointEvery'
    | 'earlyStop'
    | 'workers'
    | 'inProcess'
  >
>;

/** What may change on resume: how long to go on and how to run; never what the steps compute. */
const RESUMABLE = [
  'epochs',
  'maxSteps',
  'threads',
  'workers',
  'checkpointEvery',
  'inProcess',
  'device',
] as const satisfies readonly (keyof GivenConfig)[];

/** What a user asks of a run; every field optional (absent: the paper's recipe, or RUN_DEFAULTS). */
export interface RunOptions extends GivenConfig {
  /** A zoo model name or alias. Absent with no `data`: the demo. */
  model?: string;
  /** 'synthetic' (default), 'idx:DIR', 'cifar:DIR', 'ilsvrc:DIR' or an ImageFolder folder. */
  data?: string;
  /** Options of the built-in synthetic set, when `data` is it. */
  synthetic?: SyntheticOptions;
  modelOptions?: Partial<ModelOptions>;
  /** FitConfig.batch (--batch-size). */
  batchSize?: number;
  optimizer?: OptimizerConfig['kind'];
  lr?: number;
  momentum?: number;
  weightDecay?: number;
  convention?: OptimizerConfig['convention'];
  schedule?: ScheduleKind;
  stepSize?: number;
  milestones?: number[];
  gamma?: number;
  power?: number;
  patience?: number;
  warmupSteps?: number;
  minLr?: number;
  /** The run folder (default runs/<model>-<time>). */
  out?: string;
  /** Continue a run: a checkpoint or run folder, or true for `out`'s last.safetensors (a fresh start when it has none). */
  resume?: string | true;
  /** Initial weights from a checkpoint (transfer learning). */
  from?: string;
  /** 'features' (every conv layer) or a comma list of parameter names or prefixes: FitConfig.frozen. */
  freeze?: string;
  /** With `from`: new random weights for the last layer. */
  resetClassifier?: boolean;
}

/** What a fresh run's plan needs to know of its data. */
interface DataShape {
  classes: number;
  channels: 1 | 3;
  /** Training images, when known: the batch must fit in them, and a run never holds more steps than an epoch has. */
  trainImages?: number;
}

/** Whether the options ask for the demo: no model and no data. */
function isDemo(o: RunOptions): boolean {
  return o.model === undefined && o.data === undefined;
}

/**
 * A fresh run's config from the options, the paper's recipe and the data's classes and channels,
 * checked against the machine (boundRun). Pure but for the machine's cores and memory and the
 * steps-per-run default, which reads the device.
 */
export function planRun(o: RunOptions, data: DataShape, device: Device): FitConfig {
  const demo = isDemo(o);
  if (o.model === undefined && !demo) throw new UsageError('Expected a model name (see `ilsvrc models`) with --data but received none');
  const spec = findModel(o.model ?? DEMO.model);
  const r = spec.recipe;
  const given = o.modelOptions ?? {};
  const mo = modelOptions(spec, {
    ...(demo ? { width: DEMO.width, inputSize: DEMO.inputSize, init: DEMO.init, dropout: DEMO.dropout } : {}),
    ...given,
    classes: given.classes ?? data.classes,
    channels: given.channels ?? data.channels,
  });
  if (mo.classes !== data.classes) throw expected(`${data.classes} (the classes in --data)`, '--classes', mo.classes);
  const optimizer: OptimizerConfig = {
    ...DEFAULT_OPTIMIZER,
    kind: o.optimizer ?? (demo ? DEMO.optimizer : r.optimizer),
    momentum: o.momentum ?? r.momentum,
    weightDecay: o.weightDecay ?? (demo ? DEMO.weightDecay : r.weightDecay),
    convention: o.convention ?? RUN_DEFAULTS.convention,
  };
  const schedule: ScheduleConfig = {
    ...DEFAULT_SCHEDULE,
    kind: o.schedule ?? (demo ? DEMO.schedule : RUN_DEFAULTS.schedule),
    lr: o.lr ?? (demo ? DEMO.lr : optimizer.kind === 'adamw' ? RUN_DEFAULTS.adamwLr : r.lr),
    ...(o.stepSize !== undefined ? { stepSize: o.stepSize } : {}),
    milestones: o.milestones ?? [],
    ...(o.gamma !== undefined ? { gamma: o.gamma } : {}),
    ...(o.power !== undefined ? { power: o.power } : {}),
    ...(o.patience !== undefined ? { patience: o.patience } : {}),
    warmupSteps: o.warmupSteps ?? (demo ? DEMO.warmupSteps : 0),
    ...(o.minLr !== undefined ? { minLr: o.minLr } : {}),
  };
  if (schedule.kind === 'multistep' && schedule.milestones.length === 0)
    throw new UsageError('Expected --milestones with --schedule multistep but received none');
  if (o.resetClassifier && o.from === undefined) throw new UsageError('Expected --from <ckpt> with --reset-classifier but received none');
  const batch = o.batchSize ?? (demo ? DEMO.batch : r.batchSize);
  return boundRun(
    {
      device: device.text,
      model: spec.name,
      modelOptions: mo,
      batch,
      accum: o.accum ?? RUN_DEFAULTS.accum,
      epochs: o.epochs ?? (demo ? DEMO.epochs : RUN_DEFAULTS.epochs),
      optimizer,
      schedule,
      labelSmoothing: o.labelSmoothing ?? 0,
      auxWeight: o.auxWeight,
      frozen: o.freeze !== undefined ? frozenNames(spec, mo, o.freeze) : [],
      seed: o.seed ?? RUN_DEFAULTS.seed,
      augment: o.augment ?? (demo ? DEMO.augment : r.augment),
      stepsPerRun: o.stepsPerRun ?? defaultStepsPerRun(device, { model: spec.name, modelOptions: mo, batch, optimizer }).k,
      maxSteps: o.maxSteps ?? RUN_DEFAULTS.maxSteps,
      checkpointEvery: o.checkpointEvery ?? RUN_DEFAULTS.checkpointEvery,
      earlyStop: o.earlyStop ?? RUN_DEFAULTS.earlyStop,
      workers: o.workers ?? RUN_DEFAULTS.workers,
      threads: o.threads ?? RUN_DEFAULTS.threads,
      inProcess: o.inProcess ?? false,
    },
    { ...(data.trainImages !== undefined ? { trainImages: data.trainImages } : {}), stepsGiven: o.stepsPerRun !== undefined },
  );
}

/** A resumed run's config: the saved one, with the RESUMABLE fields the options give. */
function planResume(saved: FitConfig, o: RunOptions, trainImages?: number): FitConfig {
  const given = Object.fromEntries(RESUMABLE.filter((k) => o[k] !== undefined).map((k) => [k, o[k]])) as Partial<FitConfig>;
  return boundRun({ ...saved, ...given }, { ...(trainImages !== undefined ? { trainImages } : {}), stepsGiven: false });
}

/** Refuses thread and loader-worker counts the machine cannot run (two loaders, train and val, each with `workers` threads). */
function requireRunThreads(threads: number, workers: number): void {
  requireThreads('--threads', threads);
  requireWorkers('--workers', workers, 2);
}

/**
 * A run's config checked against the machine before anything starts, each refusal one line naming
 * the flag: threads and loader workers (requireRunThreads); the images one step takes against the
 * data; the weights and optimizer state; on the CPU a step's activations (the rough upper estimate
 * of stepMemory: every forward output kept, tripled by the gradients) beside the loaders' batches;
 * and the K batches a run stacks. A K the user did not give is lowered to fit instead.
 */
function boundRun(c: FitConfig, o: { trainImages?: number; stepsGiven: boolean }): FitConfig {
  requireRunThreads(c.threads, c.workers);
  if (o.trainImages !== undefined && c.batch * c.accum > o.trainImages) {
    const what = `--batch-size ${c.batch} × --accum ${c.accum}`;
    throw new UsageError(`Expected at least ${c.batch * c.accum} training images for ${what} but the data has ${o.trainImages}`);
  }
  const mo = c.modelOptions;
  const f = stepFootprint(c.model, mo, c.optimizer);
  const model = `${c.model} at --width ${mo.width}, --input-size ${mo.inputSize}, --classes ${mo.classes}`;
  const weights = `the weights and optimizer state of ${model} (${millions(f.params)} parameters)`;
  requireMemory(weightMemory(f), weights, 'a smaller --width, --input-size or --classes');
  // The loaders hold three batches each (two prefetched, one in use), train and val.
  const loaders = 2 * 3 * c.batch * 4 * mo.channels * mo.inputSize ** 2;
  const cpu = (c.device ?? 'cpu').startsWith('cpu');
  const step = (cpu ? stepMemory(f, c.batch, 0, 0).fixed : weightMemory(f)) + loaders;
  const what = `a training step of --batch-size ${c.batch} at --input-size ${mo.inputSize} (${model})`;
  requireMemory(step, what, 'a smaller --batch-size (--accum keeps the images per step) or --input-size');
  if (!cpu || c.accum > 1) return c;
  // Each stacked batch is held twice: as the loader's batch and as the Loop's input.
  const per = 2 * stepMemory(f, c.batch, 1, 0).perStep;
  const epoch = o.trainImages !== undefined ? Math.max(1, stepsPerEpoch(o.trainImages, c.batch, c.accum)) : c.stepsPerRun;
  const k = Math.min(c.stepsPerRun, epoch);
  if (step + k * per <= machineBudget().memory) return c;
  if (o.stepsGiven) {
    const what = `--steps-per-run ${c.stepsPerRun} (${k} stacked batches of ${formatBytes(per)} beside a step of ${formatBytes(step)})`;
    requireMemory(step + k * per, what, 'a smaller --steps-per-run');
  }
  return { ...c, stepsPerRun: Math.max(1, Math.floor((machineBudget().memory - step) / per)) };
}

function millions(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)} M` : String(n);
}

/**
 * Parameter names to freeze: 'features' = every conv layer and batch norm layer (named with its
 * running statistics); otherwise names or prefixes.
 */
function frozenNames(spec: ModelSpec, opts: ModelOptions, what: string): string[] {
  const params = buildModel(spec, opts, { training: true, batch: 1 }).graph.params;
  const layer = (n: string) => n.slice(0, n.lastIndexOf('.'));
  if (what === 'features') {
    const convs = new Set(params.filter((p) => p.value.shape.length === 4 || p.buffer).map((p) => layer(p.name)));
    return params.map((p) => p.name).filter((n) => convs.has(layer(n)));
  }
  const wanted = what
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const out = params.map((p) => p.name).filter((n) => wanted.some((w) => n === w || n.startsWith(`${w}.`) || n.startsWith(w)));
  const unmatched = wanted.filter((w) => !params.some((p) => p.name.startsWith(w)));
  if (unmatched.length) throw expected(`'features' or parameter names of ${spec.name}`, '--freeze', unmatched.join(','));
  return out;
}

/** --from: the checkpoint's weights; with --reset-classifier the last layer's from the seed. */
function transferWeights(config: FitConfig, ck: Checkpoint, file: string, reset: boolean): Map<string, Float32Array> {
  const spec = findModel(config.model);
  const params = buildModel(spec, config.modelOptions, { training: true, batch: 1 }).graph.params;
  const fresh = initParams(params, config.seed);
  const last = params
    .filter((p) => p.name.startsWith('loss1') !== true && p.name.startsWith('loss2') !== true)
    .slice(-2)
    .map((p) => p.name);
  const out = new Map<string, Float32Array>();
  const bad: string[] = [];
  for (const p of params) {
    const n = p.name;
    const w = ck.state.params.get(n);
    if (reset && last.includes(n)) out.set(n, fresh.get(n)!);
    else if (w && w.length === p.value.size) out.set(n, w);
    else bad.push(n);
  }
  if (bad.length)
    throw new UsageError(
      `Expected ${file} to fit ${spec.name} with these options but ${bad.slice(0, 3).join(', ')}${bad.length > 3 ? ` and ${bad.length - 3} more` : ''} differ${reset ? '' : ' (other classes? add --reset-classifier)'}`,
    );
  return out;
}

function readCheckpoint(path: string, flag: string): Checkpoint {
  if (!existsSync(path)) throw new UsageError(`Expected a checkpoint for ${flag} but ${path} does not exist`);
  return loadCheckpoint(path);
}

/** What a run is about to do: the hooks' `start` gets it before the first step. */
export interface RunStart {
  config: FitConfig;
  data: DatasetSplits;
  out: string;
  resumed: boolean;
}

export interface TrainHooks extends FitHooks {
  start?(run: RunStart): void;
}

/** The default run folder: runs/<model or demo>-<UTC time to the second>. */
function defaultOut(o: RunOptions, now = new Date()): string {
  const spec = o.model === undefined ? DEMO.model : findModel(o.model).name;
  return join('runs', `${isDemo(o) ? 'demo' : spec}-${now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15)}`);
}

/** Trains as `ilsvrc train` does: a fresh run, a resumed one, or a transfer from `from`. */
export async function train(o: RunOptions, hooks: TrainHooks = { log: () => {} }): Promise<FitResult> {
  // Before the device probe, which starts a session with these threads.
  requireRunThreads(o.threads ?? RUN_DEFAULTS.threads, o.workers ?? RUN_DEFAULTS.workers);
  const device = await checkDevice(o.device ?? RUN_DEFAULTS.device, o.threads ?? RUN_DEFAULTS.threads);
  // The run folder is locked before anything is written or a checkpoint read, so two runs never
  // share one (nor a --resume a live run); a fresh run is planned first, so a refused plan leaves no folder.
  let lock: DirLock | undefined;
  const take = (dir: string): void => void (lock ??= lockDir(dir, `--out ${dir}`));
  try {
    if (o.resume === true && o.out !== undefined) take(o.out);
    // --resume --out DIR on a first run (a restarted job) starts the run.
    const fresh = o.resume === undefined || (o.resume === true && o.out !== undefined && !existsSync(join(o.out, FILES.last)));
    let config: FitConfig;
    let resume: Checkpoint | undefined;
    let identity: DataIdentity;
    let out: string;
    let init: Map<string, Float32Array> | undefined;
    let data: DatasetSplits;
    if (!fresh) {
      const path =
        typeof o.resume === 'string' ? fileInFolder(o.resume, FILES.last) : o.out !== undefined ? join(o.out, FILES.last) : undefined;
      if (path === undefined) throw new UsageError('Expected --resume <ckpt> or --out <dir> holding last.safetensors but received neither');
      resume = readCheckpoint(path, '--resume');
      const saved = checkResumable(resume, path);
      identity = { ...(resume.meta.data ?? {}), ...(o.data !== undefined ? { spec: o.data } : {}) };
      out = o.out ?? dirname(path);
      take(out);
      data = await openDataset(identity.spec, { seed: saved.seed, ...(identity.synthetic ? { synthetic: identity.synthetic } : {}) });
      config = planResume(saved, { ...o, ...(o.device === undefined ? {} : { device: device.text }) }, data.train.length);
    } else {
      const synthetic = o.synthetic ?? (isDemo(o) ? { ...DEMO.synthetic } : undefined);
      identity = { ...(o.data !== undefined ? { spec: o.data } : {}), ...(synthetic ? { synthetic } : {}) };
      out = o.out ?? defaultOut(o);
      data = await openDataset(o.data, { seed: o.seed ?? RUN_DEFAULTS.seed, ...(synthetic ? { synthetic } : {}) });
      config = planRun(o, { classes: data.classes.length, channels: data.channels, trainImages: data.train.length }, device);
      take(out);
      if (existsSync(join(out, FILES.last)))
        throw new UsageError(`Expected an --out folder without a run in it, or --resume, but ${out} already has ${FILES.last}`);
      if (o.from !== undefined) init = transferWeights(config, readCheckpoint(o.from, '--from'), o.from, o.resetClassifier === true);
    }
    hooks.start?.({ config, data, out, resumed: resume !== undefined });
    return await fit({
      config,
      data,
      out,
      ...(resume ? { resume } : {}),
      ...(init ? { initParams: init } : {}),
      dataIdentity: identity,
      hooks,
    });
  } finally {
    (lock as DirLock | undefined)?.release();
  }
}

/** Checks --device before any data is read: a missing provider is one line, exit 2. */
async function checkDevice(d: string, threads: number): Promise<Device> {
  const r = resolveDevice(d, threads > 0 ? { threads } : {});
  await probeDevice(r);
  return r.device;
}
