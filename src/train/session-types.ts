/**
 * The types a training session is made of and speaks in: its config (a Pick of the run config),
 * a batch, a step's metrics and the state a checkpoint carries. Apart from the session's code, so
 * that its parts (session-state.ts, updater.ts, evaluator.ts) and the session import them alike.
 */
import type { StepConfig } from './config.js';
import type { TrainGraphOptions } from './graphs.js';
import type { SessionOptions } from '../runtime/ort.js';

/**
 * The step fields of the run config (StepConfig), with where the session runs; the model options
 * may be partial, as the graphs take them (the zoo's defaults fill the rest).
 */
export interface TrainingConfig extends Omit<StepConfig, 'modelOptions'>, Pick<TrainGraphOptions, 'modelOptions' | 'outerMinElements'> {
  session?: SessionOptions;
  /**
   * Where the optimizer update runs: 'native' (in place, src/optim/native.ts; needs the addon and a
   * CPU session) or 'graph' (ONNX graphs). Default: native where it can, else graph.
   */
  update?: 'native' | 'graph' | undefined;
}

export interface StepBatch {
  /** NCHW float32, batch × channels × size × size. */
  x: Float32Array;
  labels: Int32Array | BigInt64Array;
}

export interface StepMetrics {
  loss: number;
  /** Samples whose label is the top-1 / in the top-5 prediction. */
  top1: number;
  top5: number;
  /** Rows that count: those with a label >= 0 (an unreadable image's row is labelled -1). */
  n: number;
}

/** State that a checkpoint carries to continue exactly where training stopped. */
export interface TrainingState {
  params: Map<string, Float32Array>;
  states: Map<string, Float32Array>;
  /** Optimizer steps taken so far. */
  step: number;
  /** Dropout-mask PRNG state. */
  rng: number;
}
