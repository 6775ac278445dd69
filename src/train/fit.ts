/**
 * The training loop, free of the terminal: epochs of K fused steps per session run (or gradient
 * accumulation), validation after each epoch, checkpoints (`last.safetensors` each epoch and every
 * N steps, `best.safetensors` by validation top-1), metrics as JSON lines, CSV, TensorBoard events
 * and PNG curves. Everything that decides a parameter update is a function of (seed, epoch, batch
 * index, checkpointed state), so a run resumed from any checkpoint ends with the same weights as one
 * that was never interrupted.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { evalViewFor, Loader, Transforms, writeClassIndex } from '../data/index.js';
import type { Batch, DataIdentity, DatasetSplits, Skipped } from '../data/index.js';
import { writeChartPng } from '../plot/chart.js';
import type { Checkpoint } from './checkpoint.js';
import { Checkpointer, discardPending, FILES, runFailure, type RunMeta } from './checkpointer.js';
import { STEP_FIELDS, type FitConfig, type StepConfig } from './config.js';
import { RunState } from './run-state.js';
import type { StepMetrics, TrainingConfig, TrainingState } from './session-types.js';
import { resolveDevice } from '../runtime/device.js';
import { openSession, type SessionHandle } from './worker-session.js';
import { UsageError } from '../util/errors.js';
import { NEVER, Stopped, type StopSignal } from '../util/stop.js';
import { appendText, ensureDir } from '../util/fsx.js';
import { writeCsv } from '../util/csv.js';
import { parseJson } from '../util/json.js';
import { evaluateLoader, type EvalResult } from './score.js';
import { learningRate } from './schedule.js';
import { EventWriter, keepEventsUpTo } from './tensorboard.js';

export type { FitConfig } from './config.js';

export interface EpochSummary {
  epoch: number;
  step: number;
  lr: number;
  train_loss: number;
  train_top1: number;
  val_loss: number;
  val_top1: number;
  val_top5: number;
  seconds: number;
  img_per_s: number;
  /** Seconds the trainer waited for the loader in this epoch (0 when data keeps up). */
  data_wait_s: number;
  /** Images that could not be read, so were skipped, in this epoch's training batches and in validation. */
  skipped_train: number;
  skipped_val: number;
  /** The first few of them: path and reason. */
  skipped_first: string[];
}

export interface FitHooks {
  log(message: string): void;
  /** Per run of K steps: images done in the epoch, of `total`. */
  progress?(epoch: number, done: number, total: number, fields: Record<string, number | string>): void;
  epochStart?(epoch: number, done: number, total: number): void;
  epochEnd?(s: EpochSummary): void;
  /** Validation of the epoch began (`total` images), and how far it is. */
  validationStart?(epoch: number, total: number): void;
  validationProgress?(done: number, total: number): void;
  /**
   * A stop (SIGINT, SIGTERM): polled before each run of K steps, raced against each wait for the
   * loader and polled per validation batch. The run writes last.safetensors at the step reached
   * and returns 'interrupted'; a validation it cut short is redone by --resume.
   */
  stop?: StopSignal;
}

export interface FitResult {
  bestTop1: number;
  bestTop5: number;
  /** The epoch of the best validation, a fraction when it was measured mid-epoch (--max-steps). */
  bestEpoch: number;
  /** Epochs done, with the fraction of one stopped mid-way. */
  epochs: number;
  step: number;
  seconds: number;
  out: string;
  reason: 'done' | 'interrupted' | 'max-steps' | 'early-stop';
  /** Images that could not be read, so were skipped, over the whole run: counts and the first few ("path: reason"). */
  skipped: { train: number; val: number; first: string[] };
}

export interface FitOptions {
  config: FitConfig;
  data: DatasetSplits;
  out: string;
  /** Continue this checkpoint's run. */
  resume?: Checkpoint;
  /** Start from these weights (transfer learning); the rest from the seed. */
  initParams?: Map<string, Float32Array>;
  hooks: FitHooks;
  /** The data's identity, kept in the checkpoint (--resume, and evaluate's default --data). */
  dataIdentity?: DataIdentity;
}

export { FILES };

/** Optimizer steps per epoch: whole steps of `accum` full batches. */
export function stepsPerEpoch(trainSize: number, batch: number, accum: number): number {
  return Math.floor(Math.floor(trainSize / batch) / accum);
}

/**
 * The sizes of the session runs from step `s` to `end` of an epoch: K at a time, cut so that a run
 * never crosses a checkpoint boundary (global step multiple of `every`) — the same cut whether the
 * epoch started fresh or from a mid-epoch checkpoint.
 */
export function runSizes(globalStep: number, s: number, end: number, k: number, every: number): number[] {
  const out: number[] = [];
  let g = globalStep;
  for (let i = s; i < end;) {
    let n = Math.min(k, end - i);
    if (every > 0) n = Math.min(n, every - (g % every));
    out.push(n);
    i += n;
    g += n;
  }
  return out;
}

/** The session's config: the step fields of the run config, and the device's session options. */
function trainingConfig(c: FitConfig): TrainingConfig {
  const step = Object.fromEntries(STEP_FIELDS.map((k) => [k, c[k]])) as StepConfig;
  return { ...step, session: resolveDevice(c.device ?? 'cpu', c.threads > 0 ? { threads: c.threads } : {}).session };
}

/** What the loop runs with, opened once per run. */
interface Fit {
  c: FitConfig;
  o: FitOptions;
  spe: number;
  /** Optimizer steps the schedule spans (an epoch count, or --max-steps). */
  totalSteps: number;
  train: Loader;
  val: Loader;
  session: SessionHandle;
  tb: EventWriter;
  ckpt: Checkpointer;
  stop: StopSignal;
}

export async function fit(o: FitOptions): Promise<FitResult> {
  const c = o.config;
  const t0 = Date.now();
  ensureDir(o.out);
  const spe = stepsPerEpoch(o.data.train.length, c.batch, c.accum);
  if (spe < 1) {
    const what = `--batch-size ${c.batch} × --accum ${c.accum}`;
    throw new UsageError(`Expected at least ${c.batch * c.accum} training images for ${what} but the data has ${o.data.train.length}`);
  }
  const st = new RunState(spe, o.resume);
  const state: Partial<TrainingState> | undefined = o.resume ? o.resume.state : o.initParams ? { params: o.initParams } : undefined;
  const resumedAt = o.resume ? st.step : undefined;
  let ckpt: Checkpointer | undefined;
  let reason: FitResult['reason'] = 'done';

  // Everything that holds a thread, a session or a file is released in `finally`, each on its own,
  // so that a failed write (a full disk) can never leave the process hanging.
  const closers: (() => unknown)[] = [];
  let failure: unknown;
  let skippedSoFar = (): { train: Skipped[]; val: Skipped[] } => ({ train: [], val: [] });
  try {
    const { train, val } = openLoaders(c, o.data, closers);
    skippedSoFar = () => ({ train: train.skipped(), val: val.skipped() });
    await writeClassIndex(join(o.out, FILES.classes), o.data.classes);
    // A resumed run continues the TensorBoard history after its checkpoint's step, never repeating one.
    if (o.resume) keepEventsUpTo(o.out, st.step);
    const tb = new EventWriter(o.out);
    closers.push(() => tb.close());
    const session = await openSession(trainingConfig(c), state, { worker: !c.inProcess });
    closers.push(() => session.release());
    const data = o.dataIdentity ? { data: o.dataIdentity } : {};
    const view = evalViewFor(c.augment);
    const about: RunMeta = { model: c.model, modelOptions: c.modelOptions, classes: o.data.classes, view, ...data, run: c };
    ckpt = new Checkpointer(o.out, about, resumedAt, session, tb);
    const totalSteps = c.maxSteps > 0 ? Math.min(c.maxSteps, spe * c.epochs) : spe * c.epochs;
    reason = await trainEpochs({ c, o, spe, totalSteps, train, val, session, tb, ckpt, stop: o.hooks.stop ?? NEVER }, st);
  } catch (e) {
    failure = runFailure(e, o.out, ckpt ? ckpt.saved : resumedAt);
  } finally {
    discardPending(o.out);
    const errors = await closeAll(closers.reverse());
    if (failure === undefined && errors.length > 0) failure = errors[0];
  }
  if (failure !== undefined) throw failure;
  const skipped = skippedSoFar();
  const first = [...skipped.train, ...skipped.val].slice(0, 3).map((x) => `${x.path}: ${x.reason}`);
  const p = st.progress;
  return {
    bestTop1: p.bestTop1,
    bestTop5: p.bestTop5,
    bestEpoch: p.bestEpoch,
    epochs: st.epochs(),
    step: st.step,
    seconds: (Date.now() - t0) / 1000,
    out: o.out,
    reason,
    skipped: { train: skipped.train.length, val: skipped.val.length, first },
  };
}

/** The training and validation loaders of a run, each closed by `closers`. */
function openLoaders(c: FitConfig, data: DatasetSplits, closers: (() => unknown)[]): { train: Loader; val: Loader } {
  const shape = { size: c.modelOptions.inputSize, channels: c.modelOptions.channels === 1 ? 1 : 3 } as const;
  const common = { batchSize: c.batch, seed: c.seed, channels: shape.channels, workers: c.workers };
  const train = new Loader(data.train, Transforms.train(c.augment, shape), { ...common, shuffle: true, dropLast: true });
  closers.push(() => train.close());
  // Padded to a constant batch so validation compiles one session; only the real rows count.
  const valTransforms = Transforms.eval(evalViewFor(c.augment), shape);
  const val = new Loader(data.val, valTransforms, { ...common, shuffle: false, dropLast: false, padLast: true });
  closers.push(() => val.close());
  return { train, val };
}

/** The epochs from where the run stands; a stop writes last.safetensors at the step reached. */
async function trainEpochs(f: Fit, st: RunState): Promise<FitResult['reason']> {
  const c = f.c;
  try {
    while (st.epoch < c.epochs) {
      if ((await trainEpoch(f, st)) === 'max-steps') {
        // A smoke run that stops mid-epoch still records and plots what it did, and says how good the weights are.
        if (st.inEpoch > 0) await closeEpoch(f, st, true);
        return 'max-steps';
      }
      await closeEpoch(f, st, false);
      if (c.earlyStop > 0 && st.progress.bad >= c.earlyStop && st.epoch < c.epochs) {
        f.o.hooks.log(`early stop: no better validation top-1 for ${st.progress.bad} epochs`);
        return 'early-stop';
      }
    }
    return 'done';
  } catch (e) {
    if (!(e instanceof Stopped)) throw e;
    await f.ckpt.saveStopped(st, f.o.hooks.log);
    return 'interrupted';
  }
}

/** The training steps of one epoch from where the run stands, in session runs of up to K; 'max-steps' where --max-steps ends it. */
async function trainEpoch(f: Fit, st: RunState): Promise<'max-steps' | undefined> {
  const { c, o, stop } = f;
  const imagesPerStep = c.batch * c.accum;
  st.startEpoch();
  o.hooks.epochStart?.(st.epoch, st.inEpoch * imagesPerStep, f.spe * imagesPerStep);
  const prefetch = prefetcher(f.train, st.epoch, st.inEpoch * c.accum, f.spe * c.accum);
  const fetch: Fetch = async (i, stoppable) => {
    const t = performance.now();
    const b = await (stoppable ? stop.race(prefetch(i), 'training') : prefetch(i));
    st.sums.dataWait += (performance.now() - t) / 1000;
    return b;
  };
  for (const k0 of runSizes(st.step, st.inEpoch, f.spe, c.accum > 1 ? 1 : c.stepsPerRun, c.checkpointEvery)) {
    stop.throwIfRequested('training');
    const k = c.maxSteps > 0 ? Math.min(k0, c.maxSteps - st.step) : k0;
    if (k <= 0) return 'max-steps';
    const lrs = Array.from({ length: k }, (_, i) => learningRate(c.schedule, st.step + i, f.spe, f.totalSteps, st.progress.plateau));
    const metrics = await runSteps(f, st, fetch, lrs);
    // The loss of a run's first step is computed from the weights it started with: a pending
    // checkpoint of those weights is good once it is finite.
    if (Number.isFinite(metrics[0]?.loss)) f.ckpt.commitPending();
    record(f, st, metrics, lrs);
    const s = st.sums;
    const fields = {
      loss: s.seen ? (s.loss / s.seen).toFixed(3) : '-',
      acc: s.seen ? `${((100 * s.hits) / s.seen).toFixed(1)}%` : '-',
      lr: s.lr.toPrecision(2),
    };
    o.hooks.progress?.(st.epoch, st.inEpoch * imagesPerStep, f.spe * imagesPerStep, fields);
    if (c.maxSteps > 0 && st.step >= c.maxSteps) return 'max-steps';
    if (c.checkpointEvery > 0 && st.step % c.checkpointEvery === 0 && st.inEpoch < f.spe) await f.ckpt.savePending(st);
  }
  return undefined;
}

/** Batch `i` of the epoch; `stoppable`: nothing of the step has run yet, so a stop may cut the wait short. */
type Fetch = (i: number, stoppable: boolean) => Promise<Batch>;

/** One session run: `lrs.length` fused steps, or one step of `accum` micro-batches. */
async function runSteps(f: Fit, st: RunState, fetch: Fetch, lrs: number[]): Promise<StepMetrics[]> {
  const { c, session, train } = f;
  if (c.accum === 1) {
    const batches: Batch[] = [];
    for (let i = 0; i < lrs.length; i++) batches.push(await fetch(st.inEpoch + i, true));
    const metrics = await session.runSteps(
      batches.map((b) => ({ x: b.x, labels: b.labels })),
      lrs,
    );
    for (const b of batches) train.recycle(b);
    return metrics;
  }
  const parts: StepMetrics[] = [];
  for (let j = 0; j < c.accum; j++) {
    // Past the first micro-batch the session holds gradients and has drawn dropout masks:
    // the step is finished, so that a checkpoint never holds half of one.
    const b = await fetch(st.inEpoch * c.accum + j, j === 0);
    parts.push(await session.runTrainStep({ x: b.x, labels: b.labels }));
    train.recycle(b);
  }
  await session.runOptimizerStep(lrs[0]!);
  const sum = (a: StepMetrics, m: StepMetrics): StepMetrics => ({
    loss: a.loss + m.loss / c.accum,
    top1: a.top1 + m.top1,
    top5: a.top5 + m.top5,
    n: a.n + m.n,
  });
  return [parts.reduce(sum, { loss: 0, top1: 0, top5: 0, n: 0 })];
}

/** A run's metrics into the epoch's sums and TensorBoard; a non-finite loss stops the run. */
function record(f: Fit, st: RunState, metrics: readonly StepMetrics[], lrs: readonly number[]): void {
  for (let i = 0; i < metrics.length; i++) {
    const m = metrics[i]!;
    if (!Number.isFinite(m.loss)) {
      const at = `step ${st.step + i + 1} (epoch ${st.epoch + 1}, lr ${lrs[i]!.toPrecision(3)})`;
      throw f.ckpt.diverged(`Expected a finite training loss but received ${m.loss} at ${at}`);
    }
    st.count(m);
    f.tb.scalar('train/loss', m.loss, st.step + i + 1);
    f.tb.scalar('train/lr', lrs[i]!, st.step + i + 1);
  }
  st.advance(lrs.length, lrs[lrs.length - 1]!);
}

/**
 * Validation, then the epoch's records, then the checkpoints: last.safetensors is written last,
 * so a crash before it repeats only work whose outcome is the same, and the validation loss
 * vouches for the weights it holds. `partial`: a run stopping mid-epoch (--max-steps); its
 * record is at the fraction of the epoch done, and it moves no schedule.
 */
async function closeEpoch(f: Fit, st: RunState, partial: boolean): Promise<void> {
  const { o } = f;
  const skippedTrain = f.train.skipped(st.epoch);
  const first = skippedTrain[0];
  if (st.sums.seen === 0 && first) {
    throw new UsageError(`Expected readable images in the training set but every one tried failed (first: ${first.path}: ${first.reason})`);
  }
  o.hooks.validationStart?.(st.epoch, f.val.dataset.length);
  const onBatch = (done: number, total: number): void => o.hooks.validationProgress?.(done, total);
  const v = await evaluateLoader(f.val, o.data.classes.length, (x, rows) => f.session.runInference(x, rows), onBatch, f.stop);
  if (!Number.isFinite(v.loss)) {
    throw f.ckpt.diverged(`Expected a finite validation loss after step ${st.step} (epoch ${st.epoch + 1}) but received ${v.loss}`);
  }
  const seconds = st.elapsed();
  const { at, improved } = st.validated(v, f.c.schedule, partial);
  const summary = epochSummary(st, at, seconds, v, skippedTrain);
  appendText(join(o.out, FILES.jsonl), JSON.stringify(summary) + '\n');
  const scalars = [
    ['val/loss', v.loss],
    ['val/top1', v.top1],
    ['val/top5', v.top5],
    ['train/epoch_top1', summary.train_top1],
  ] as const;
  for (const [tag, value] of scalars) f.tb.scalar(tag, value, st.step);
  await writeReports(o.out);
  o.hooks.epochEnd?.(summary);
  st.sums.seconds = seconds;
  if (!partial) st.nextEpoch();
  await f.ckpt.saveEpoch(st, { val_top1: v.top1, val_top5: v.top5, val_loss: v.loss }, improved);
}

function epochSummary(st: RunState, at: number, seconds: number, v: EvalResult, skippedTrain: readonly Skipped[]): EpochSummary {
  const s = st.sums;
  return {
    epoch: at,
    step: st.step,
    lr: s.lr,
    train_loss: s.seen ? s.loss / s.seen : NaN,
    train_top1: s.seen ? s.hits / s.seen : NaN,
    val_loss: v.loss,
    val_top1: v.top1,
    val_top5: v.top5,
    seconds,
    img_per_s: s.seen / seconds,
    data_wait_s: s.dataWait,
    skipped_train: skippedTrain.length,
    skipped_val: v.skipped.length,
    skipped_first: [...skippedTrain, ...v.skipped].slice(0, 3).map((x) => `${x.path}: ${x.reason}`),
  };
}

/** Runs every closer, each on its own even when another throws; returns what they threw. */
async function closeAll(closers: readonly (() => unknown)[]): Promise<unknown[]> {
  const errors: unknown[] = [];
  for (const close of closers) {
    try {
      await close();
    } catch (e) {
      errors.push(e);
    }
  }
  return errors;
}

/** Batches by index with a few rendered ahead (the loader is deterministic per (seed, epoch, index)). */
function prefetcher(loader: Loader, epoch: number, from: number, end: number, ahead = 3): (i: number) => Promise<Batch> {
  const pending = new Map<number, Promise<Batch>>();
  let next = from;
  const fill = (upto: number): void => {
    for (; next < Math.min(end, upto); next++) {
      const p = loader.batch(epoch, next);
      p.catch(() => undefined); // surfaced when awaited
      pending.set(next, p);
    }
  };
  return (i) => {
    fill(i + 1 + ahead);
    const p = pending.get(i) ?? loader.batch(epoch, i);
    pending.delete(i);
    return p;
  };
}

/** metrics.csv and the PNG curves, from metrics.jsonl (so a resumed run plots its whole history). */
async function writeReports(out: string): Promise<void> {
  const rows = readFileSync(join(out, FILES.jsonl), 'utf8')
    .split('\n')
    .map((l, i) => (l ? (parseJson(l, `on line ${i + 1} of ${join(out, FILES.jsonl)}`) as EpochSummary) : undefined))
    .filter((r) => r !== undefined);
  // A resumed run may repeat an epoch it had recorded before a crash: the later record wins.
  const byEpoch = new Map(rows.map((r) => [r.epoch, r]));
  const list = [...byEpoch.values()].sort((a, b) => a.epoch - b.epoch);
  const cols = [
    'epoch',
    'step',
    'lr',
    'train_loss',
    'train_top1',
    'val_loss',
    'val_top1',
    'val_top5',
    'seconds',
    'img_per_s',
    'data_wait_s',
  ] as const;
  writeCsv(
    join(out, FILES.csv),
    cols,
    list.map((r) => cols.map((k) => r[k])),
  );
  const pts = (k: Exclude<keyof EpochSummary, 'skipped_first'>) =>
    list.map((r) => [r.epoch, r[k]] as const).filter(([, v]) => Number.isFinite(v));
  await writeChartPng(join(out, 'loss.png'), {
    title: 'Loss',
    xLabel: 'epoch',
    yLabel: 'cross-entropy',
    series: [
      { name: 'train', points: pts('train_loss') },
      { name: 'val', points: pts('val_loss') },
    ],
  });
  await writeChartPng(join(out, 'accuracy.png'), {
    title: 'Accuracy',
    xLabel: 'epoch',
    yLabel: 'top-1',
    series: [
      { name: 'train top-1', points: pts('train_top1') },
      { name: 'val top-1', points: pts('val_top1') },
      { name: 'val top-5', points: pts('val_top5') },
    ],
  });
  await writeChartPng(join(out, 'lr.png'), {
    title: 'Learning rate',
    xLabel: 'epoch',
    yLabel: 'lr',
    series: [{ name: 'lr', points: pts('lr') }],
  });
}
