/**
 * Training checkpoints as safetensors files: parameters under their own names, optimizer state under
 * "optim/<name>", and the metadata needed to rebuild the model and continue exactly (model options,
 * optimizer, epoch, step, dropout PRNG state, metrics, class names) as JSON under "ilsvrc".
 * Written atomically (temp file, fsync, rename): a crash or a full disk leaves the last good one.
 */
import type { ModelOptions } from '../../graphs/index.js';
import type { OptimizerConfig } from '../optim/optimizer.js';
import { UsageError } from '../util/errors.js';
import { loadSafetensors, saveSafetensors, type TensorInput } from './safetensors.js';
import type { TrainingState } from './training-session.js';

export const CHECKPOINT_FORMAT = 'ilsvrc-checkpoint/1';
const STATE_PREFIX = 'optim/';

export interface CheckpointMeta {
  format: typeof CHECKPOINT_FORMAT;
  model: string;
  modelOptions: ModelOptions;
  optimizer: OptimizerConfig;
  labelSmoothing: number;
  frozen: string[];
  seed: number;
  /** Epochs completed, and batches done in the current one (a mid-epoch checkpoint). */
  epoch: number;
  batchInEpoch: number;
  /** Optimizer steps taken. */
  step: number;
  /** Dropout-mask PRNG state. */
  rng: number;
  classes?: string[];
  metrics?: Record<string, number>;
  /** Anything else the trainer needs to resume (schedule state, best metric so far, arguments). */
  extra?: Record<string, unknown>;
  savedAt: string;
}

export function saveCheckpoint(path: string, state: TrainingState, meta: Omit<CheckpointMeta, 'format' | 'savedAt' | 'step' | 'rng'>): void {
  const tensors: Record<string, TensorInput> = {};
  for (const [name, data] of state.params) tensors[name] = { dtype: 'F32', shape: [data.length], data };
  for (const [name, data] of state.states) tensors[STATE_PREFIX + name] = { dtype: 'F32', shape: [data.length], data };
  const full: CheckpointMeta = { ...meta, format: CHECKPOINT_FORMAT, step: state.step, rng: state.rng, savedAt: new Date().toISOString() };
  saveSafetensors(path, tensors, { ilsvrc: JSON.stringify(full) });
}

/** The first tensor of a training state holding NaN or ±Infinity ("conv1.weight", "optim/fc8.weight.m"), or undefined. */
export function firstNonFinite(state: Pick<TrainingState, 'params' | 'states'>): string | undefined {
  for (const [prefix, map] of [['', state.params], [STATE_PREFIX, state.states]] as const) {
    for (const [name, data] of map) {
      for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i]!)) return `${prefix}${name}`;
    }
  }
  return undefined;
}

export interface Checkpoint {
  meta: CheckpointMeta;
  state: TrainingState;
}

export function loadCheckpoint(path: string): Checkpoint {
  const file = loadSafetensors(path);
  const raw = file.metadata['ilsvrc'];
  let meta: CheckpointMeta;
  try {
    meta = JSON.parse(raw ?? '') as CheckpointMeta;
  } catch {
    throw new UsageError(`Expected an ilsvrc checkpoint in ${path} but its metadata has no "ilsvrc" entry`);
  }
  if (meta.format !== CHECKPOINT_FORMAT) {
    throw new UsageError(`Expected checkpoint format ${CHECKPOINT_FORMAT} in ${path} but received ${JSON.stringify(meta.format)}`);
  }
  const params = new Map<string, Float32Array>();
  const states = new Map<string, Float32Array>();
  for (const [name, t] of Object.entries(file.tensors)) {
    if (t.dtype !== 'F32') throw new UsageError(`Expected float32 tensors in ${path} but ${name} is ${t.dtype}`);
    if (name.startsWith(STATE_PREFIX)) states.set(name.slice(STATE_PREFIX.length), t.data);
    else params.set(name, t.data);
  }
  const bad = firstNonFinite({ params, states });
  if (bad) throw new UsageError(`Expected finite values in ${path} but tensor ${bad} holds NaN or Infinity (weights of a diverged run)`);
  return { meta, state: { params, states, step: meta.step, rng: meta.rng } };
}
