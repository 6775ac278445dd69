/**
 * The run config and the progress a checkpoint carries: the one definition that the CLI's plan
 * (src/train/run.ts), the loop (fit.ts), the checkpoint schema (checkpoint.ts) and the training
 * session (TrainingConfig, a Pick of FitConfig) share. Field names are the saved JSON's keys.
 */
import type { ModelOptions } from '../zoo/index.js';
import type { TrainRecipe } from '../data/index.js';
import type { OptimizerConfig } from '../optim/optimizer.js';
import type { PlateauState, ScheduleConfig } from './schedule.js';

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
  /** Parameters kept fixed (transfer learning). */
  frozen: readonly string[];
  /** Seeds the initial weights, the dropout masks and the loader's order. */
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
  /** Loader worker threads (0: sharp's own threads). Saved as "loaderWorkers" before; read under either name. */
  workers: number;
  /** ORT intra-op threads (0: all cores). */
  threads: number;
  /** --device: cpu, cuda[:N] or webgpu (src/runtime/device.ts). */
  device: string;
  /**
   * Run the session on the calling thread; false: on a worker thread, so loading and the display go
   * on during a step. Saved as "worker" (its negation) before; read under either name.
   */
  inProcess: boolean;
}

/** The fields of FitConfig that decide what a training step computes (TrainingConfig takes them). */
export const STEP_FIELDS = ['model', 'modelOptions', 'batch', 'optimizer', 'labelSmoothing', 'auxWeight', 'frozen', 'seed'] as const;
export type StepConfig = Pick<FitConfig, (typeof STEP_FIELDS)[number]>;

/** The running sums of an epoch (seconds: wall time spent in it so far). */
export interface EpochSums {
  loss: number;
  hits: number;
  seen: number;
  seconds: number;
  dataWait: number;
  lr: number;
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
