/**
 * A checkpoint's bytes (docs/file-formats.md) without a file: src/train/checkpoint.ts writes them
 * to disk, the page (src/web) offers them as a download; both give the same file.
 */
import type { DataIdentity, EvalRecipe } from '../data/index.js';
import { safetensorsChunks, type TensorInput } from '../runtime/safetensors-format.js';
import type { ModelOptions } from '../zoo/index.js';
import type { FitConfig, SavedProgress } from './config.js';
import type { TrainingState } from './session-types.js';

export const CHECKPOINT_FORMAT = 'ilsvrc-checkpoint/2';
export const STATE_PREFIX = 'optim/';

/**
 * The "ilsvrc" metadata of a checkpoint (docs/file-formats.md): what the network is, how it is
 * looked at, how it trains and where its run stands. Every field is checked when read.
 */
export interface CheckpointMeta {
  format: typeof CHECKPOINT_FORMAT;
  /** The zoo model and its options: what `buildModel` rebuilds. */
  model: string;
  modelOptions: ModelOptions;
  classes?: string[];
  /** The evaluation view that matches the training augmentation (evaluate, predict, visualize default to it). */
  view?: EvalRecipe;
  /** The data it learned from (evaluate and visualize top default to it). */
  data?: DataIdentity;
  /** The run config `train --resume` continues; absent in weights that no run of ilsvrc trained (import). */
  run?: FitConfig;
  /** The run's schedule state and best metrics so far, and the sums of a part-done epoch. */
  progress?: SavedProgress;
  /** Where the weights came from when they were imported. */
  imported?: { file: string; format: string };
  /** Epochs completed, and optimizer steps done in the current one (a mid-epoch checkpoint). */
  epoch: number;
  batchInEpoch: number;
  /** Optimizer steps taken. */
  step: number;
  /** Dropout-mask PRNG state. */
  rng: number;
  metrics?: Record<string, number>;
  savedAt: string;
}

/** The first tensor of a training state holding NaN or ±Infinity ("conv1.weight", "optim/fc8.weight.m"), or undefined. */
export function firstNonFinite(state: Pick<TrainingState, 'params' | 'states'>): string | undefined {
  for (const [prefix, map] of [
    ['', state.params],
    [STATE_PREFIX, state.states],
  ] as const) {
    for (const [name, data] of map) {
      for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i]!)) return `${prefix}${name}`;
    }
  }
  return undefined;
}

/** The safetensors chunks of a checkpoint of `state` with its metadata (saveCheckpoint checks the values first). */
export function checkpointChunks(
  state: TrainingState,
  meta: Omit<CheckpointMeta, 'format' | 'savedAt' | 'step' | 'rng'>,
): Generator<Uint8Array> {
  const tensors: Record<string, TensorInput> = {};
  for (const [name, data] of state.params) tensors[name] = { dtype: 'F32', shape: [data.length], data };
  for (const [name, data] of state.states) tensors[STATE_PREFIX + name] = { dtype: 'F32', shape: [data.length], data };
  const full: CheckpointMeta = { ...meta, format: CHECKPOINT_FORMAT, step: state.step, rng: state.rng, savedAt: new Date().toISOString() };
  return safetensorsChunks(tensors, { ilsvrc: JSON.stringify(full) });
}
