/**
 * Training checkpoints as safetensors files: parameters under their own names, optimizer state under
 * "optim/<name>", and the metadata needed to rebuild the model and continue exactly (model options,
 * optimizer, epoch, step, dropout PRNG state, metrics, class names) as JSON under "ilsvrc".
 * Written atomically (temp file, fsync, rename): a crash or a full disk leaves the last good one.
 */
import { buildModel, findModel, type ModelOptions, type ModelSpec } from '../zoo/index.js';
import { checkpointWeights, flatTensors } from '../zoo/export.js';
import { MODEL_OPTION_NAMES, optionExpected, optionSpec, optionValueOk, type ModelOptionName } from '../zoo/options.js';
import { EVAL_RECIPES, evalViewFor, TRAIN_RECIPES, type DataIdentity, type EvalRecipe, type TrainRecipe } from '../data/index.js';
import { OPTIMIZER_KINDS, SGD_CONVENTIONS, stateSuffixes, type OptimizerConfig } from '../optim/optimizer.js';
import { stateName } from './graphs.js';
import type { FitConfig, SavedProgress } from './config.js';
import { SCHEDULES, type ScheduleConfig } from './schedule.js';
import { describe, expected, orList, UsageError } from '../util/errors.js';
import { loadSafetensors, saveSafetensors, type TensorInput } from '../runtime/safetensors.js';
import type { TrainingState } from './session-types.js';
import { parseJson } from '../util/json.js';

export const CHECKPOINT_FORMAT = 'ilsvrc-checkpoint/2';
/** The format before the run config, progress and data had fields of their own (read, converted). */
const CHECKPOINT_FORMAT_V1 = 'ilsvrc-checkpoint/1';
const STATE_PREFIX = 'optim/';

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

/**
 * The one writer of checkpoints (training's last, best and pending files, import): every
 * parameter and optimizer tensor must be finite, or nothing is written and `refuse` says why
 * (the first non-finite tensor's name in hand). Left out, a non-finite tensor is a bug.
 */
export function saveCheckpoint(
  path: string,
  state: TrainingState,
  meta: Omit<CheckpointMeta, 'format' | 'savedAt' | 'step' | 'rng'>,
  refuse: (tensor: string) => Error = (t) => new Error(`refused to write ${path}: tensor ${t} holds NaN or Infinity`),
): void {
  const bad = firstNonFinite(state);
  if (bad !== undefined) throw refuse(bad);
  const tensors: Record<string, TensorInput> = {};
  for (const [name, data] of state.params) tensors[name] = { dtype: 'F32', shape: [data.length], data };
  for (const [name, data] of state.states) tensors[STATE_PREFIX + name] = { dtype: 'F32', shape: [data.length], data };
  const full: CheckpointMeta = { ...meta, format: CHECKPOINT_FORMAT, step: state.step, rng: state.rng, savedAt: new Date().toISOString() };
  saveSafetensors(path, tensors, { ilsvrc: JSON.stringify(full) });
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
const oneOf =
  (...xs: readonly unknown[]) =>
  (v: unknown): boolean =>
    xs.includes(v);

/** The model options an ilsvrc file records (a checkpoint's "modelOptions", an export's "ilsvrc.options"): MODEL_OPTIONS' checks. */
const MODEL_OPTION_FIELDS: Readonly<Record<ModelOptionName, Field>> = Object.fromEntries(
  MODEL_OPTION_NAMES.map((k) => [
    k,
    {
      what: optionExpected(k, true),
      ok: (v: unknown) => optionValueOk(k, v, true),
      ...(optionSpec(k).inEveryFile ? {} : { optional: true }),
    },
  ]),
) as Record<ModelOptionName, Field>;

const OPTIMIZER_FIELDS: Readonly<Record<keyof OptimizerConfig, Field>> = {
  kind: { what: orList(OPTIMIZER_KINDS, '"'), ok: oneOf(...OPTIMIZER_KINDS) },
  momentum: { what: 'a number', ok: isNumber },
  weightDecay: { what: 'a number', ok: isNumber },
  decayBiases: { what: 'a boolean', ok: (v) => typeof v === 'boolean' },
  convention: { what: orList(SGD_CONVENTIONS, '"'), ok: oneOf(...SGD_CONVENTIONS) },
  beta1: { what: 'a number', ok: isNumber },
  beta2: { what: 'a number', ok: isNumber },
  eps: { what: 'a number', ok: isNumber },
};

const META_FIELDS: Readonly<Record<Exclude<keyof CheckpointMeta, 'modelOptions' | 'run'>, Field>> = {
  format: { what: JSON.stringify(CHECKPOINT_FORMAT), ok: oneOf(CHECKPOINT_FORMAT) },
  model: { what: 'a model name', ok: (v) => typeof v === 'string' },
  view: { what: 'an evaluation view', ok: oneOf(...EVAL_RECIPES), optional: true },
  data: {
    what: 'a data identity {spec?, synthetic?}',
    ok: (v) =>
      isObject(v) &&
      (v['spec'] === undefined || typeof v['spec'] === 'string') &&
      (v['synthetic'] === undefined || isObject(v['synthetic'])),
    optional: true,
  },
  progress: {
    what: 'the run progress {plateau, bestTop1, bestTop5, bestEpoch, bad}',
    ok: (v) => isObject(v) && isObject(v['plateau']) && ['bestTop1', 'bestTop5', 'bestEpoch', 'bad'].every((k) => isNumber(v[k])),
    optional: true,
  },
  imported: {
    what: 'an object {file, format}',
    ok: (v) => isObject(v) && typeof v['file'] === 'string' && typeof v['format'] === 'string',
    optional: true,
  },
  epoch: { what: 'a non-negative integer', ok: isCount },
  batchInEpoch: { what: 'a non-negative integer', ok: isCount },
  step: { what: 'a non-negative integer', ok: isCount },
  rng: { what: 'a non-negative integer', ok: isCount },
  classes: { what: 'an array of class names', ok: isStrings, optional: true },
  // A NaN metric is written as null.
  metrics: {
    what: 'an object of numbers',
    ok: (v) => isObject(v) && Object.values(v).every((x) => x === null || typeof x === 'number'),
    optional: true,
  },
  savedAt: { what: 'a date string', ok: (v) => typeof v === 'string' },
};

/** The run config a checkpoint carries: every field, so `--resume` never meets a damaged one later. */
const RUN_FIELDS: Readonly<Record<Exclude<keyof FitConfig, 'modelOptions' | 'optimizer' | 'schedule'>, Field>> = {
  model: { what: 'a model name', ok: (v) => typeof v === 'string' },
  batch: { what: 'a positive integer', ok: isPositiveInt },
  accum: { what: 'a positive integer', ok: isPositiveInt },
  epochs: { what: 'a positive integer', ok: isPositiveInt },
  labelSmoothing: { what: 'a number in [0, 1)', ok: (v) => isNumber(v) && (v as number) >= 0 && (v as number) < 1 },
  auxWeight: { what: 'a number', ok: isNumber, optional: true },
  frozen: { what: 'an array of parameter names', ok: isStrings },
  seed: { what: 'a non-negative integer', ok: isCount },
  augment: { what: 'an augmentation preset', ok: oneOf(...TRAIN_RECIPES) },
  stepsPerRun: { what: 'a positive integer', ok: isPositiveInt },
  maxSteps: { what: 'a non-negative integer', ok: isCount },
  checkpointEvery: { what: 'a non-negative integer', ok: isCount },
  earlyStop: { what: 'a non-negative integer', ok: isCount },
  workers: { what: 'a non-negative integer', ok: isCount },
  threads: { what: 'a non-negative integer', ok: isCount },
  device: { what: 'a device name', ok: (v) => typeof v === 'string' },
  inProcess: { what: 'a boolean', ok: (v) => typeof v === 'boolean' },
};

const SCHEDULE_FIELDS: Readonly<Record<keyof ScheduleConfig, Field>> = {
  kind: { what: SCHEDULES.join(' | '), ok: oneOf(...SCHEDULES) },
  lr: { what: 'a positive number', ok: (v) => isNumber(v) && (v as number) > 0 },
  stepSize: { what: 'a positive integer', ok: isPositiveInt },
  milestones: { what: 'an array of epochs', ok: (v) => Array.isArray(v) && v.every(isPositiveInt) },
  gamma: { what: 'a number', ok: isNumber },
  power: { what: 'a number', ok: isNumber },
  patience: { what: 'a non-negative integer', ok: isCount },
  warmupSteps: { what: 'a non-negative integer', ok: isCount },
  minLr: { what: 'a number', ok: isNumber },
};

/**
 * A version-1 entry (model, options and optimizer at the top, the run, progress and data in an
 * untyped "extra") in today's form. Its data spec and run config come across unchanged.
 */
function fromV1(v1: Record<string, unknown>): Record<string, unknown> {
  const extra = isObject(v1['extra']) ? v1['extra'] : {};
  const run = isObject(extra['fit']) ? extra['fit'] : undefined;
  const args = isObject(extra['args']) ? extra['args'] : {};
  const { extra: _e, optimizer: _o, labelSmoothing: _l, frozen: _f, seed: _s, ...rest } = v1;
  const data = {
    ...(typeof args['data'] === 'string' ? { spec: args['data'] } : {}),
    ...(isObject(args['synthetic']) ? { synthetic: args['synthetic'] } : {}),
  };
  const augment = run?.['augment'];
  return {
    ...rest,
    format: CHECKPOINT_FORMAT,
    ...(run ? { run: { device: 'cpu', ...run } } : {}),
    ...(isObject(extra['progress']) ? { progress: extra['progress'] } : {}),
    ...(run ? { data } : {}),
    ...(typeof augment === 'string' ? { view: evalViewFor(augment as TrainRecipe) } : {}),
  };
}

/** Run config fields saved under other names before they took the options' names: today's name, and the value as today's. */
const EARLIER_RUN_NAMES: Readonly<Record<string, readonly [keyof typeof RUN_FIELDS, (v: unknown) => unknown]>> = {
  loaderWorkers: ['workers', (v) => v],
  worker: ['inProcess', (v) => !v],
};

/** A run config as today's: fields under an earlier name are checked under that name, then renamed. */
function renamedRun(run: unknown, where: string): unknown {
  if (!isObject(run)) return run;
  const out = { ...run };
  for (const [old, [name, convert]] of Object.entries(EARLIER_RUN_NAMES)) {
    if (!(old in out)) continue;
    const v = out[old];
    delete out[old];
    if (out[name] !== undefined) continue;
    if (!RUN_FIELDS[name].ok(v)) throw expected(RUN_FIELDS[name].what, `run.${old} ${where}`, v);
    out[name] = convert(v);
  }
  return out;
}

/** `value` as an object whose fields pass `fields`; `name` is its key in the entry (none: the entry itself). */
function checkFields(
  value: unknown,
  fields: Readonly<Record<string, Field>>,
  name: string | undefined,
  where: string,
): Record<string, unknown> {
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
  for (const key of MODEL_OPTION_NAMES) {
    if (o[key] !== undefined) (out as Record<string, unknown>)[key] = o[key];
  }
  return out;
}

/**
 * The "ilsvrc" metadata entry of a checkpoint, every field checked against its type, so that a
 * damaged or hand-edited file is one line naming the field rather than a crash later on.
 */
function parseCheckpointMeta(raw: string | undefined, file: string): CheckpointMeta {
  if (raw === undefined) throw new UsageError(`Expected an ilsvrc checkpoint in ${file} but its metadata has no "ilsvrc" entry`);
  const where = `in the "ilsvrc" metadata of ${file}`;
  let json = parseJson(raw, where);
  if (isObject(json) && json['format'] === CHECKPOINT_FORMAT_V1) json = fromV1(json);
  if (
    isObject(json) &&
    typeof json['format'] === 'string' &&
    json['format'] !== CHECKPOINT_FORMAT &&
    /^ilsvrc-checkpoint\//.test(json['format'])
  ) {
    throw new UsageError(
      `Expected checkpoint format ${CHECKPOINT_FORMAT} in ${file} but it is ${json['format']}, written by another version of ilsvrc`,
    );
  }
  const meta = checkFields(json, META_FIELDS, undefined, where);
  readModelOptions(meta['modelOptions'], where, 'modelOptions');
  if (meta['run'] !== undefined) {
    meta['run'] = renamedRun(meta['run'], where);
    const run = checkFields(meta['run'], RUN_FIELDS, 'run', where);
    readModelOptions(run['modelOptions'], where, 'run.modelOptions');
    checkFields(run['optimizer'], OPTIMIZER_FIELDS, 'run.optimizer', where);
    checkFields(run['schedule'], SCHEDULE_FIELDS, 'run.schedule', where);
  }
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

/** Runs `f`; a usage error it throws (about "--input-size", "model") gains where the value came from. */
export function about<T>(where: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof UsageError) throw new UsageError(`${e.message} ${where}`);
    throw e;
  }
}

export function describeModel(spec: ModelSpec, o: ModelOptions): string {
  return `${spec.name}, width ${o.width}, ${o.inputSize} px, ${o.channels} channels, ${o.classes} classes`;
}

/**
 * A checkpoint that `train --resume` continues: every parameter of the training graph its metadata
 * describes (auxiliary heads included) and every optimizer state of the trainable ones, each of its
 * size. A missing state would otherwise restart silently at zero.
 */
export function checkResumable(ck: Checkpoint, file: string): FitConfig {
  const run = ck.meta.run;
  if (!run)
    throw new UsageError(
      `Expected a checkpoint written by ilsvrc train for --resume but ${file} has no run in it${ck.meta.imported ? ` (weights imported from ${ck.meta.imported.file}: start a run from them with --from)` : ''}`,
    );
  const spec = about(`in the "ilsvrc" metadata of ${file}`, () => findModel(ck.meta.model));
  const o = ck.meta.modelOptions;
  const built = about(`(the model the metadata of ${file} describes)`, () =>
    buildModel(spec, { ...o, aux: o.aux ?? false }, { training: true, batch: 1 }),
  );
  const described = describeModel(spec, built.options);
  const params = built.graph.params;
  checkpointWeights(params, { tensors: flatTensors(ck.state.params) }, file, `the model its metadata describes (${described})`);
  const frozen = new Set(run.frozen);
  const bad: string[] = [];
  for (const p of params) {
    const name = p.name;
    // Buffers (running statistics) are never trained: they have no optimizer state.
    if (p.buffer || frozen.has(name)) continue;
    for (const suffix of stateSuffixes(run.optimizer)) {
      const key = stateName(name, suffix);
      const got = ck.state.states.get(key);
      if (got === undefined) bad.push(`optim/${key} is missing`);
      else if (got.length !== p.value.size) bad.push(`optim/${key} has ${got.length} values, not ${p.value.size}`);
    }
  }
  if (bad.length) {
    throw new UsageError(
      `Expected the optimizer state of ${run.optimizer.kind} for every trainable parameter in ${file} but ${bad.slice(0, 3).join(', ')}${bad.length > 3 ? ` and ${bad.length - 3} more` : ''}`,
    );
  }
  return run;
}
