/**
 * The training loop, free of the terminal: epochs of K fused steps per session run (or gradient
 * accumulation), validation after each epoch, checkpoints (`last.safetensors` each epoch and every
 * N steps, `best.safetensors` by validation top-1), metrics as JSON lines, CSV, TensorBoard events
 * and PNG curves. Everything that decides a parameter update is a function of (seed, epoch, batch
 * index, checkpointed state), so a run resumed from any checkpoint ends with the same weights as one
 * that was never interrupted.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelOptions } from '../zoo/index.js';
import { Loader, Transforms, writeClassIndex, type Batch, type DatasetSplits, type EvalRecipe, type Skipped, type TrainRecipe, evalViewFor, type DataIdentity } from '../data/index.js';
import type { OptimizerConfig } from '../optim/optimizer.js';
import { writeChartPng } from '../plot/chart.js';
import { saveCheckpoint, type Checkpoint, type CheckpointMeta } from './checkpoint.js';
import type { StepMetrics, TrainingConfig, TrainingState } from './training-session.js';
import { resolveDevice } from '../runtime/device.js';
import { openSession, type SessionHandle } from './worker-session.js';
import { UsageError, userFileError } from '../util/errors.js';
import { NEVER, Stopped, type StopSignal } from '../util/stop.js';
import { appendText, ensureDir, removeFile, renameFile, withPath } from '../util/fsx.js';
import { writeCsv } from '../util/csv.js';
import { parseJson } from '../util/json.js';
import { evaluateLoader, type EvalResult } from './evaluate.js';
import { INITIAL_PLATEAU, learningRate, plateauAfterEpoch, type PlateauState, type ScheduleConfig } from './schedule.js';
import { EventWriter, keepEventsUpTo } from './tensorboard.js';

/** Everything that shapes the run; stored in checkpoints so `--resume` continues the same run. */
export interface FitConfig {
  model: string;
  modelOptions: ModelOptions;
  /** Images per (micro-)batch. */
  batch: number;
  /** Micro-batches per optimizer step (gradient accumulation); 1 uses the fused K-step runs. */
  accum: number;
  epochs: number;
  optimizer: OptimizerConfig;
  schedule: ScheduleConfig;
  labelSmoothing: number;
  /** Auxiliary-loss weight (GoogLeNet with --aux); undefined: the paper's 0.3. */
  auxWeight?: number | undefined;
  frozen: string[];
  seed: number;
  augment: TrainRecipe;
  /** Optimizer steps per session run (K). */
  stepsPerRun: number;
  /** Stop after this many optimizer steps in total (smoke runs); 0: no limit. */
  maxSteps: number;
  /** Also checkpoint every this many steps (0: only at epoch ends). */
  checkpointEvery: number;
  /** Stop after this many epochs without a better validation top-1 (0: never). */
  earlyStop: number;
  /** Loader worker threads (0: sharp's own threads). */
  loaderWorkers: number;
  /** ORT intra-op threads (0: all cores). */
  threads: number;
  /** --device: cpu, cuda[:N] or webgpu (src/runtime/device.ts). */
  device: string;
  /** Run the session on a worker thread so loading and the display go on during a step. */
  worker: boolean;
}

/** Where a run stands besides its weights: schedule state and best metrics (a checkpoint's `progress`). */
export interface RunProgress {
  /** A part-done epoch's running sums, so its record covers the whole epoch after a resume. */
  epochSums?: EpochSums;
  plateau: PlateauState;
  bestTop1: number;
  bestTop5: number;
  bestEpoch: number;
  /** Epochs since the best. */
  bad: number;
}

/** RunProgress as a checkpoint stores it: JSON has no Infinity, so a plateau without a best has null. */
export type SavedProgress = Omit<RunProgress, 'plateau'> & { plateau: Omit<PlateauState, 'best'> & { best: number | null } };

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

export const FILES = {
  last: 'last.safetensors',
  best: 'best.safetensors',
  jsonl: 'metrics.jsonl',
  csv: 'metrics.csv',
  classes: 'classes.json',
} as const;

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
  for (let i = s; i < end; ) {
    let n = Math.min(k, end - i);
    if (every > 0) n = Math.min(n, every - (g % every));
    out.push(n);
    i += n;
    g += n;
  }
  return out;
}

export function trainingConfig(c: FitConfig): TrainingConfig {
  return {
    model: c.model,
    modelOptions: c.modelOptions,
    batch: c.batch,
    optimizer: c.optimizer,
    labelSmoothing: c.labelSmoothing,
    auxWeight: c.auxWeight,
    frozen: c.frozen,
    seed: c.seed,
    session: resolveDevice(c.device ?? 'cpu', c.threads > 0 ? { threads: c.threads } : {}).session,
  };
}

export async function fit(o: FitOptions): Promise<FitResult> {
  const c = o.config;
  const t0 = Date.now();
  ensureDir(o.out);
  const channels = c.modelOptions.channels === 1 ? 1 : 3;
  const size = c.modelOptions.inputSize;
  const spe = stepsPerEpoch(o.data.train.length, c.batch, c.accum);
  if (spe < 1) throw new UsageError(`Expected at least ${c.batch * c.accum} training images for --batch-size ${c.batch} × --accum ${c.accum} but the data has ${o.data.train.length}`);
  const totalSteps = c.maxSteps > 0 ? Math.min(c.maxSteps, spe * c.epochs) : spe * c.epochs;

  let state: Partial<TrainingState> | undefined;
  let epoch = 0;
  let sInEpoch = 0;
  let prog: RunProgress = { plateau: INITIAL_PLATEAU, bestTop1: 0, bestTop5: 0, bestEpoch: 0, bad: 0 };
  // The running sums of the epoch in progress; a mid-epoch checkpoint carries them, so a resumed
  // epoch's record covers the whole epoch.
  let sums: EpochSums = { ...NO_SUMS };
  if (o.resume) {
    state = o.resume.state;
    epoch = o.resume.meta.epoch;
    sInEpoch = o.resume.meta.batchInEpoch;
    const saved = o.resume.meta.progress;
    if (saved) {
      const { epochSums, ...p } = saved;
      prog = { ...p, plateau: { ...p.plateau, best: p.plateau.best ?? Infinity } };
      if (epochSums && sInEpoch > 0) sums = { ...epochSums };
    }
  } else if (o.initParams) {
    state = { params: o.initParams };
  }
  let step = o.resume?.state.step ?? 0;
  /** The step of the newest checkpoint on disk that is known good (for the divergence message). */
  let savedStep: number | undefined = o.resume ? step : undefined;
  let reason: FitResult['reason'] = 'done';

  // Everything that holds a thread, a session or a file is released in `finally`, each on its own,
  // so that a failed write (a full disk) can never leave the process hanging.
  const closers: (() => unknown)[] = [];
  let failure: unknown;
  let skippedSoFar = (): { train: Skipped[]; val: Skipped[] } => ({ train: [], val: [] });
  try {
    const train = new Loader(o.data.train, Transforms.train(c.augment, { size, channels }), {
      batchSize: c.batch,
      shuffle: true,
      seed: c.seed,
      dropLast: true,
      channels,
      workers: c.loaderWorkers,
    });
    closers.push(() => train.close());
    // Padded to a constant batch so validation compiles one session; only the real rows count.
    const val = new Loader(o.data.val, Transforms.eval(evalViewFor(c.augment), { size, channels }), {
      batchSize: c.batch,
      shuffle: false,
      seed: c.seed,
      dropLast: false,
      padLast: true,
      channels,
      workers: c.loaderWorkers,
    });
    closers.push(() => val.close());
    skippedSoFar = () => ({ train: train.skipped(), val: val.skipped() });
    await writeClassIndex(join(o.out, FILES.classes), o.data.classes);
    // A resumed run continues the TensorBoard history after its checkpoint's step, never repeating one.
    if (o.resume) keepEventsUpTo(o.out, step);
    const tb = new EventWriter(o.out);
    closers.push(() => tb.close());
    const session = await openSession(trainingConfig(c), state, { worker: c.worker });
    closers.push(() => session.release());

    const meta = (ep: number, inEpoch: number, metrics?: Record<string, number>): Omit<CheckpointMeta, 'format' | 'savedAt' | 'step' | 'rng'> => ({
      model: c.model,
      modelOptions: c.modelOptions,
      classes: o.data.classes,
      view: evalViewFor(c.augment),
      ...(o.dataIdentity ? { data: o.dataIdentity } : {}),
      run: c,
      // JSON has no Infinity: a plateau with no best yet is written as null.
      progress: { ...prog, plateau: { ...prog.plateau, best: Number.isFinite(prog.plateau.best) ? prog.plateau.best : null }, ...(inEpoch > 0 ? { epochSums: sums } : {}) },
      epoch: ep,
      batchInEpoch: inEpoch,
      ...(metrics ? { metrics } : {}),
    });
    const diverged = (what: string): UsageError => {
      const kept = savedStep !== undefined && existsSync(join(o.out, FILES.last)) ? `the last good checkpoint is ${join(o.out, FILES.last)} (step ${savedStep})` : 'no checkpoint had been written';
      return new UsageError(`${what}; stopped, ${kept} — try a lower --lr`);
    };
    /**
     * Writes a checkpoint of the session's weights. Never one whose parameters or optimizer state
     * are not all finite. `pending`: weights no loss has been computed from yet are written beside
     * the file and become it (commitPending) once the next step's loss, computed from exactly
     * these weights, is finite.
     */
    const checkpoint = async (file: string, ep: number, inEpoch: number, metrics?: Record<string, number>, snap?: TrainingState, pending = false): Promise<TrainingState> => {
      const s = snap ?? (await session.snapshot());
      const refuse = (bad: string) => diverged(`Expected finite weights at step ${s.step} but ${bad} is not`);
      tb.flush(); // every event up to this step is on disk before the checkpoint that a resume starts from
      const target = pending ? pendingPath(o.out, file) : join(o.out, file);
      withPath(join(o.out, file), () => saveCheckpoint(target, s, meta(ep, inEpoch, metrics), refuse), pending ? target : undefined);
      if (!pending && file === FILES.last) savedStep = s.step;
      return s;
    };
    let pendingStep: number | undefined;
    const commitPending = (): void => {
      if (pendingStep === undefined) return;
      renameFile(pendingPath(o.out, FILES.last), join(o.out, FILES.last));
      savedStep = pendingStep;
      pendingStep = undefined;
    };

    let epochStart = Date.now();
    /**
     * Validation, then the epoch's records, then the checkpoints: last.safetensors is written last,
     * so a crash before it repeats only work whose outcome is the same, and the validation loss
     * vouches for the weights it holds. `partial`: a run stopping mid-epoch (--max-steps); its
     * record is at the fraction of the epoch done, and it moves no schedule.
     */
    const closeEpoch = async (partial: boolean): Promise<void> => {
      const skippedTrain = train.skipped(epoch);
      if (sums.seen === 0 && skippedTrain.length > 0) throw new UsageError(`Expected readable images in the training set but every one tried failed (first: ${skippedTrain[0]!.path}: ${skippedTrain[0]!.reason})`);
      o.hooks.validationStart?.(epoch, val.dataset.length);
      const v = await validate(session, val, o.data.classes.length, stop, (done, total) => o.hooks.validationProgress?.(done, total));
      if (!Number.isFinite(v.loss)) throw diverged(`Expected a finite validation loss after step ${step} (epoch ${epoch + 1}) but received ${v.loss}`);
      const seconds = (Date.now() - epochStart) / 1000;
      const at = partial ? Number((epoch + sInEpoch / spe).toFixed(4)) : epoch + 1;
      if (!partial) prog.plateau = plateauAfterEpoch(c.schedule, prog.plateau, v.loss);
      const improved = v.top1 > prog.bestTop1 || prog.bestEpoch === 0;
      if (improved) prog = { ...prog, bestTop1: v.top1, bestTop5: v.top5, bestEpoch: at, bad: partial ? prog.bad : 0 };
      else if (!partial) prog = { ...prog, bad: prog.bad + 1 };
      const summary: EpochSummary = {
        epoch: at,
        step,
        lr: sums.lr,
        train_loss: sums.seen ? sums.loss / sums.seen : NaN,
        train_top1: sums.seen ? sums.hits / sums.seen : NaN,
        val_loss: v.loss,
        val_top1: v.top1,
        val_top5: v.top5,
        seconds,
        img_per_s: sums.seen / seconds,
        data_wait_s: sums.dataWait,
        skipped_train: skippedTrain.length,
        skipped_val: v.skipped.length,
        skipped_first: [...skippedTrain, ...v.skipped].slice(0, 3).map((x) => `${x.path}: ${x.reason}`),
      };
      appendText(join(o.out, FILES.jsonl), JSON.stringify(summary) + '\n');
      for (const [tag, value] of [['val/loss', v.loss], ['val/top1', v.top1], ['val/top5', v.top5], ['train/epoch_top1', summary.train_top1]] as const) tb.scalar(tag, value, step);
      await writeReports(o.out);
      o.hooks.epochEnd?.(summary);
      sums.seconds = seconds;
      if (!partial) {
        epoch++;
        sInEpoch = 0;
        sums = { ...NO_SUMS };
      }
      const m = { val_top1: v.top1, val_top5: v.top5, val_loss: v.loss };
      const snap = await session.snapshot();
      if (improved) await checkpoint(FILES.best, epoch, sInEpoch, m, snap);
      await checkpoint(FILES.last, epoch, sInEpoch, m, snap);
      pendingStep = undefined; // superseded
    };

    const stop = o.hooks.stop ?? NEVER;
    try {
      outer: while (epoch < c.epochs) {
        const imagesPerStep = c.batch * c.accum;
        epochStart = Date.now() - sums.seconds * 1000;
        o.hooks.epochStart?.(epoch, sInEpoch * imagesPerStep, spe * imagesPerStep);
        const prefetch = prefetcher(train, epoch, sInEpoch * c.accum, spe * c.accum);
        /** `stoppable`: nothing of the step has run yet, so a stop may cut the wait short. */
        const fetch = async (i: number, stoppable: boolean): Promise<Batch> => {
          const t = performance.now();
          const b = await (stoppable ? stop.race(prefetch(i), 'training') : prefetch(i));
          sums.dataWait += (performance.now() - t) / 1000;
          return b;
        };
        const runs = runSizes(step, sInEpoch, spe, c.accum > 1 ? 1 : c.stepsPerRun, c.checkpointEvery);
        for (const k0 of runs) {
          stop.throwIfRequested('training');
          const k = c.maxSteps > 0 ? Math.min(k0, c.maxSteps - step) : k0;
          if (k <= 0) {
            reason = 'max-steps';
            break outer;
          }
          const lrs = Array.from({ length: k }, (_, i) => learningRate(c.schedule, step + i, spe, totalSteps, prog.plateau));
          let metrics: StepMetrics[];
          if (c.accum === 1) {
            const batches: Batch[] = [];
            for (let i = 0; i < k; i++) batches.push(await fetch(sInEpoch + i, true));
            metrics = await session.runSteps(
              batches.map((b) => ({ x: b.x, labels: b.labels })),
              lrs,
            );
            for (const b of batches) train.recycle(b);
          } else {
            const parts: StepMetrics[] = [];
            for (let j = 0; j < c.accum; j++) {
              // Past the first micro-batch the session holds gradients and has drawn dropout masks:
              // the step is finished, so that a checkpoint never holds half of one.
              const b = await fetch(sInEpoch * c.accum + j, j === 0);
              parts.push(await session.runTrainStep({ x: b.x, labels: b.labels }));
              train.recycle(b);
            }
            await session.runOptimizerStep(lrs[0]!);
            metrics = [parts.reduce((a, m) => ({ loss: a.loss + m.loss / c.accum, top1: a.top1 + m.top1, top5: a.top5 + m.top5, n: a.n + m.n }), { loss: 0, top1: 0, top5: 0, n: 0 })];
          }
          // The loss of a run's first step is computed from the weights it started with: a pending
          // checkpoint of those weights is good once it is finite.
          if (Number.isFinite(metrics[0]?.loss)) commitPending();
          for (let i = 0; i < metrics.length; i++) {
            const m = metrics[i]!;
            if (!Number.isFinite(m.loss)) {
              throw diverged(`Expected a finite training loss but received ${m.loss} at step ${step + i + 1} (epoch ${epoch + 1}, lr ${lrs[i]!.toPrecision(3)})`);
            }
            sums.loss += m.loss * m.n;
            sums.hits += m.top1;
            sums.seen += m.n;
            tb.scalar('train/loss', m.loss, step + i + 1);
            tb.scalar('train/lr', lrs[i]!, step + i + 1);
          }
          step += k;
          sInEpoch += k;
          sums.lr = lrs[lrs.length - 1]!;
          o.hooks.progress?.(epoch, sInEpoch * imagesPerStep, spe * imagesPerStep, { loss: sums.seen ? (sums.loss / sums.seen).toFixed(3) : '-', acc: sums.seen ? `${((100 * sums.hits) / sums.seen).toFixed(1)}%` : '-', lr: sums.lr.toPrecision(2) });
          if (c.maxSteps > 0 && step >= c.maxSteps) {
            reason = 'max-steps';
            break outer;
          }
          if (c.checkpointEvery > 0 && step % c.checkpointEvery === 0 && sInEpoch < spe) {
            sums.seconds = (Date.now() - epochStart) / 1000;
            await checkpoint(FILES.last, epoch, sInEpoch, undefined, undefined, true);
            pendingStep = step;
          }
        }
        await closeEpoch(false);
        if (c.earlyStop > 0 && prog.bad >= c.earlyStop && epoch < c.epochs) {
          o.hooks.log(`early stop: no better validation top-1 for ${prog.bad} epochs`);
          reason = 'early-stop';
          break;
        }
      }
      // A smoke run that stops mid-epoch still records and plots what it did, and says how good the weights are.
      if (reason === 'max-steps' && sInEpoch > 0) await closeEpoch(true);
    } catch (e) {
      if (!(e instanceof Stopped)) throw e;
      // Nothing of the step being prepared, nor of a validation cut short, has been applied: the
      // checkpoint is at the last whole step. One taken after the epoch's last step (sInEpoch = spe)
      // makes --resume validate that epoch before going on.
      if (sInEpoch === spe) o.hooks.log(`validation of epoch ${epoch + 1} stopped; --resume validates it again`);
      sums.seconds = (Date.now() - epochStart) / 1000;
      await checkpoint(FILES.last, epoch, sInEpoch);
      reason = 'interrupted';
    }
  } catch (e) {
    // The user's disk or permissions: say which file, and that the last checkpoint is intact.
    const user = userFileError(e);
    failure = user ? new UsageError(`${user.message}; stopped, ${savedStep !== undefined ? `the last checkpoint ${join(o.out, FILES.last)} (step ${savedStep}) is intact` : 'no checkpoint had been written'}`) : e;
  } finally {
    removeFile(pendingPath(o.out, FILES.last)); // a folder there is the user's: the write has said so
    const errors = await closeAll(closers.reverse());
    if (failure === undefined && errors.length > 0) failure = errors[0];
  }
  if (failure !== undefined) throw failure;
  const skipped = skippedSoFar();
  const first = [...skipped.train, ...skipped.val].slice(0, 3).map((x) => `${x.path}: ${x.reason}`);
  return {
    bestTop1: prog.bestTop1,
    bestTop5: prog.bestTop5,
    bestEpoch: prog.bestEpoch,
    epochs: Number((epoch + sInEpoch / spe).toFixed(4)),
    step,
    seconds: (Date.now() - t0) / 1000,
    out: o.out,
    reason,
    skipped: { train: skipped.train.length, val: skipped.val.length, first },
  };
}

/** The running sums of an epoch (seconds: wall time spent in it so far). */
export interface EpochSums {
  loss: number;
  hits: number;
  seen: number;
  seconds: number;
  dataWait: number;
  lr: number;
}
const NO_SUMS: EpochSums = { loss: 0, hits: 0, seen: 0, seconds: 0, dataWait: 0, lr: 0 };

/** Where a checkpoint waits until a finite loss from its weights vouches for it. */
function pendingPath(out: string, file: string): string {
  return join(out, `.${file}.pending`);
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

async function validate(
  session: SessionHandle,
  val: Loader,
  classes: number,
  stop: StopSignal,
  onBatch: (done: number, total: number) => void,
): Promise<EvalResult> {
  return evaluateLoader(val, classes, (x, rows) => session.runInference(x, rows), onBatch, stop);
}

/** metrics.csv and the PNG curves, from metrics.jsonl (so a resumed run plots its whole history). */
export async function writeReports(out: string): Promise<void> {
  const rows = readFileSync(join(out, FILES.jsonl), 'utf8')
    .split('\n')
    .map((l, i) => (l ? (parseJson(l, `on line ${i + 1} of ${join(out, FILES.jsonl)}`) as EpochSummary) : undefined))
    .filter((r) => r !== undefined);
  // A resumed run may repeat an epoch it had recorded before a crash: the later record wins.
  const byEpoch = new Map(rows.map((r) => [r.epoch, r]));
  const list = [...byEpoch.values()].sort((a, b) => a.epoch - b.epoch);
  const cols = ['epoch', 'step', 'lr', 'train_loss', 'train_top1', 'val_loss', 'val_top1', 'val_top5', 'seconds', 'img_per_s', 'data_wait_s'] as const;
  writeCsv(join(out, FILES.csv), cols, list.map((r) => cols.map((k) => r[k])));
  const pts = (k: Exclude<keyof EpochSummary, 'skipped_first'>) => list.map((r) => [r.epoch, r[k]] as const).filter(([, v]) => Number.isFinite(v));
  await writeChartPng(join(out, 'loss.png'), { title: 'Loss', xLabel: 'epoch', yLabel: 'cross-entropy', series: [{ name: 'train', points: pts('train_loss') }, { name: 'val', points: pts('val_loss') }] });
  await writeChartPng(join(out, 'accuracy.png'), {
    title: 'Accuracy',
    xLabel: 'epoch',
    yLabel: 'top-1',
    series: [{ name: 'train top-1', points: pts('train_top1') }, { name: 'val top-1', points: pts('val_top1') }, { name: 'val top-5', points: pts('val_top5') }],
  });
  await writeChartPng(join(out, 'lr.png'), { title: 'Learning rate', xLabel: 'epoch', yLabel: 'lr', series: [{ name: 'lr', points: pts('lr') }] });
}
