/**
 * Training checkpoints as safetensors files: parameters under their own names, optimizer state under
 * "optim/<name>", and the metadata needed to rebuild the model and continue exactly (model options,
 * optimizer, epoch, step, dropout PRNG state, metrics, class names) as JSON under "ilsvrc".
 * Written atomically (temp file, fsync, rename): a crash or a full disk leaves the last good one.
 */
import type { ModelOptions } from '../../graphs/index.js';
import { LRN_KINDS, POOL_MODES } from '../../graphs/spec.js';
import type { OptimizerConfig } from '../optim/optimizer.js';
import { describe, expected, UsageError } from '../util/errors.js';
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

/** One metadata field: what it must be (for the message), whether a value is that, and whether it may be absent. */
interface Field {
  what: string;
  ok: (v: unknown) => boolean;
  optional?: boolean;
}

const isCount = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;
const isPositiveInt = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 1;
const isNumber = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStrings = (v: unknown): boolean => Array.isArray(v) && v.every((x) => typeof x === 'string');
const oneOf = (...xs: readonly unknown[]) => (v: unknown): boolean => xs.includes(v);

/**
 * The largest input side a file may record: no image the pipeline decodes is larger (sharp's
 * default limit is 16383 × 16383 pixels), so a larger one is damage that would only fail later,
 * allocating its batches.
 */
const MAX_INPUT_SIZE = 16383;

/** The model options an ilsvrc file records (a checkpoint's "modelOptions", an export's "ilsvrc.options"). */
const MODEL_OPTION_FIELDS: Readonly<Record<keyof ModelOptions, Field>> = {
  classes: { what: 'a positive integer', ok: isPositiveInt },
  inputSize: { what: `a positive integer up to ${MAX_INPUT_SIZE}`, ok: (v) => isPositiveInt(v) && (v as number) <= MAX_INPUT_SIZE },
  channels: { what: 'a positive integer', ok: isPositiveInt },
  width: { what: 'a positive number', ok: (v) => isNumber(v) && (v as number) > 0 },
  // JSON drops undefined: a model with the paper's dropout has no "dropout" key.
  dropout: { what: 'a rate in [0, 1)', ok: (v) => isNumber(v) && (v as number) >= 0 && (v as number) < 1, optional: true },
  aux: { what: 'a boolean', ok: (v) => typeof v === 'boolean', optional: true },
  init: { what: '"paper" or "kaiming"', ok: oneOf('paper', 'kaiming'), optional: true },
  lrn: { what: LRN_KINDS.map((k) => `"${k}"`).join(', '), ok: oneOf(...LRN_KINDS), optional: true },
  pool: { what: POOL_MODES.map((k) => `"${k}"`).join(' or '), ok: oneOf(...POOL_MODES), optional: true },
};

const OPTIMIZER_FIELDS: Readonly<Record<keyof OptimizerConfig, Field>> = {
  kind: { what: '"sgd", "nesterov" or "adamw"', ok: oneOf('sgd', 'nesterov', 'adamw') },
  momentum: { what: 'a number', ok: isNumber },
  weightDecay: { what: 'a number', ok: isNumber },
  decayBiases: { what: 'a boolean', ok: (v) => typeof v === 'boolean' },
  convention: { what: '"pytorch" or "caffe"', ok: oneOf('pytorch', 'caffe') },
  beta1: { what: 'a number', ok: isNumber },
  beta2: { what: 'a number', ok: isNumber },
  eps: { what: 'a number', ok: isNumber },
};

const META_FIELDS: Readonly<Record<Exclude<keyof CheckpointMeta, 'modelOptions' | 'optimizer'>, Field>> = {
  format: { what: JSON.stringify(CHECKPOINT_FORMAT), ok: oneOf(CHECKPOINT_FORMAT) },
  model: { what: 'a model name', ok: (v) => typeof v === 'string' },
  labelSmoothing: { what: 'a number', ok: isNumber },
  frozen: { what: 'an array of parameter names', ok: isStrings },
  seed: { what: 'a non-negative integer', ok: isCount },
  epoch: { what: 'a non-negative integer', ok: isCount },
  batchInEpoch: { what: 'a non-negative integer', ok: isCount },
  step: { what: 'a non-negative integer', ok: isCount },
  rng: { what: 'a non-negative integer', ok: isCount },
  classes: { what: 'an array of class names', ok: isStrings, optional: true },
  // A NaN metric is written as null.
  metrics: { what: 'an object of numbers', ok: (v) => isObject(v) && Object.values(v).every((x) => x === null || typeof x === 'number'), optional: true },
  extra: { what: 'an object', ok: isObject, optional: true },
  savedAt: { what: 'a date string', ok: (v) => typeof v === 'string' },
};

/** `value` as an object whose fields pass `fields`; `name` is its key in the entry (none: the entry itself). */
function checkFields(value: unknown, fields: Readonly<Record<string, Field>>, name: string | undefined, where: string): Record<string, unknown> {
  if (!isObject(value)) {
    if (name !== undefined) throw expected('an object', `${name} ${where}`, value);
    throw new UsageError(`Expected an object ${where} but received ${describe(value)}`);
  }
  for (const [key, f] of Object.entries(fields)) {
    const v = value[key];
    if (v === undefined && f.optional) continue;
    if (!f.ok(v)) throw expected(f.what, `${name === undefined ? '' : `${name}.`}${key} ${where}`, v);
  }
  return value;
}

/**
 * Model options as an ilsvrc file records them, every field checked; `where` names the file and
 * the entry ("in the \"ilsvrc\" metadata of run/last.safetensors"). Defaults fill what is absent.
 */
export function readModelOptions(value: unknown, where: string, name?: string): Partial<ModelOptions> {
  const o = checkFields(value, MODEL_OPTION_FIELDS, name, where);
  const out: Partial<ModelOptions> = {};
  for (const key of Object.keys(MODEL_OPTION_FIELDS) as (keyof ModelOptions)[]) {
    if (o[key] !== undefined) (out as Record<string, unknown>)[key] = o[key];
  }
  return out;
}

/**
 * The "ilsvrc" metadata entry of a checkpoint, every field checked against its type, so that a
 * damaged or hand-edited file is one line naming the field rather than a crash later on.
 */
export function parseCheckpointMeta(raw: string | undefined, file: string): CheckpointMeta {
  if (raw === undefined) throw new UsageError(`Expected an ilsvrc checkpoint in ${file} but its metadata has no "ilsvrc" entry`);
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (e) {
    throw new UsageError(`Expected JSON in the "ilsvrc" metadata of ${file} but it does not parse: ${(e as Error).message}`);
  }
  const where = `in the "ilsvrc" metadata of ${file}`;
  const meta = checkFields(json, META_FIELDS, undefined, where);
  readModelOptions(meta['modelOptions'], where, 'modelOptions');
  checkFields(meta['optimizer'], OPTIMIZER_FIELDS, 'optimizer', where);
  return meta as unknown as CheckpointMeta;
}

export function loadCheckpoint(path: string): Checkpoint {
  const file = loadSafetensors(path);
  const meta = parseCheckpointMeta(file.metadata['ilsvrc'], path);
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
