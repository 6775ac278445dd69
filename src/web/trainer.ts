/**
 * Training in a browser tab (or anywhere ONNX Runtime's JavaScript API runs): a zoo model on the
 * synthetic shapes rendered straight to tensors, through the same step graph and feeds as Node's
 * GraphUpdater (runStepGraph), with the checkpoint and ONNX bytes the CLI reads. Nothing here
 * touches a file: the page (src/web/page.ts) shows and downloads; `ilsvrc serve` only serves.
 */
import { syntheticImage, syntheticValCount, SYNTHETIC_CLASSES } from '../data/synthetic-render.js';
import { initParams } from '../graph/init.js';
import { encodeModel, type ModelProto } from '../onnx/proto.js';
import { DEFAULT_TABLE, lower, TABLES } from '../runtime/lower/index.js';
import { toModel } from '../graph/serialize.js';
import { DEFAULT_OPTIMIZER, stateSuffixes, type OptimizerConfig } from '../optim/optimizer.js';
import { createSession, tensor, type OrtSession, type SessionOptions } from '../runtime/ort.js';
import { checkpointChunks } from '../train/checkpoint-format.js';
import { DEMO } from '../train/demo.js';
import { runStepGraph } from '../train/graph-step.js';
import { buildTrainGraph, type TrainGraph } from '../train/graphs.js';
import { DEFAULT_SCHEDULE, learningRate, type ScheduleConfig } from '../train/schedule.js';
import { Weights } from '../train/session-state.js';
import type { StepBatch, StepMetrics, TrainingConfig } from '../train/session-types.js';
import { expected } from '../util/errors.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../util/imagenet.js';
import { Rng } from '../util/rng.js';
import { buildModel, modelOptions, findModel, type BuiltModel, type ModelOptions } from '../zoo/index.js';
import { exportInferenceModel } from '../zoo/export.js';

/** What the page asks for; the rest is the CLI demo's recipe (src/train/demo.ts). */
export interface WebRunConfig {
  model: string;
  width: number;
  inputSize: number;
  classes: number;
  batch: number;
  /** Optimizer steps of the run (the cosine schedule's length). */
  steps: number;
  seed: number;
  lr: number;
  /** Images a class renders, train and val together. */
  perClass: number;
}

/** The CLI demo's settings (src/train/demo.ts): a thin VGG-A on 32-pixel shapes, over 200 steps (an epoch of the demo's set). */
export const WEB_DEFAULTS: WebRunConfig = {
  model: DEMO.model,
  width: DEMO.width,
  inputSize: DEMO.inputSize,
  classes: 8, // the synthetic set's default
  batch: DEMO.batch,
  steps: 200,
  seed: 0,
  lr: DEMO.lr,
  perClass: DEMO.synthetic.perClass,
};

/** The bounds of each number the page takes: [lowest, highest, integer]. */
const BOUNDS: Readonly<Record<Exclude<keyof WebRunConfig, 'model'>, readonly [number, number, boolean]>> = {
  width: [1 / 64, 1, false],
  inputSize: [16, 512, true],
  classes: [2, SYNTHETIC_CLASSES.length, true],
  batch: [1, 512, true],
  steps: [1, 100_000, true],
  seed: [0, 2 ** 31 - 1, true],
  lr: [1e-6, 1, false],
  perClass: [4, 10_000, true],
};

/** The page's fields checked against BOUNDS (a UsageError naming the field), the model by name. */
export function checkConfig(c: WebRunConfig): WebRunConfig {
  findModel(c.model);
  for (const [key, [lo, hi, int]] of Object.entries(BOUNDS)) {
    const v = c[key as keyof typeof BOUNDS];
    if (!Number.isFinite(v) || v < lo || v > hi || (int && !Number.isInteger(v)))
      throw expected(`${int ? 'an integer' : 'a number'} in [${lo}, ${hi}]`, key, v);
  }
  return c;
}

/** The demo's optimizer, schedule (warmup, then over the run's steps) and model options for a web run. */
function webRecipe(c: WebRunConfig): { optimizer: OptimizerConfig; schedule: ScheduleConfig; model: Partial<ModelOptions> } {
  return {
    optimizer: { ...DEFAULT_OPTIMIZER, kind: DEMO.optimizer, weightDecay: DEMO.weightDecay },
    schedule: { ...DEFAULT_SCHEDULE, kind: DEMO.schedule, lr: c.lr, warmupSteps: Math.min(DEMO.warmupSteps, c.steps) },
    model: { width: c.width, inputSize: c.inputSize, classes: c.classes, init: DEMO.init, dropout: DEMO.dropout },
  };
}

/** The TrainingConfig of a web run, as Node's TrainingSession takes it (the same step, for comparisons). */
export function trainingConfig(c: WebRunConfig): TrainingConfig {
  const r = webRecipe(c);
  return { model: c.model, modelOptions: r.model, batch: c.batch, optimizer: r.optimizer, labelSmoothing: 0, frozen: [], seed: c.seed };
}

/** The rate of step `step` (0-based): the demo's warmup, then cosine over the run's steps. */
export function stepLr(c: WebRunConfig, step: number): number {
  return learningRate(webRecipe(c).schedule, step, c.steps, c.steps);
}

/** One synthetic image as normalised CHW floats written at `out[offset..]` (torchvision's mean and std). */
export function normalise(rgb: Uint8Array, out: Float32Array, offset: number, side: number): void {
  const plane = side * side;
  for (let p = 0; p < plane; p++)
    for (let ch = 0; ch < 3; ch++) out[offset + ch * plane + p] = (rgb[p * 3 + ch]! / 255 - IMAGENET_MEAN[ch]!) / IMAGENET_STD[ch]!;
}

/** Train and val images of the synthetic set as (class, index) pairs; train in a seeded order per epoch. */
export class SyntheticTensors {
  readonly train: (readonly [number, number])[] = [];
  readonly val: (readonly [number, number])[] = [];

  constructor(private readonly c: WebRunConfig) {
    const nVal = syntheticValCount(c.perClass, 0.2);
    for (let cls = 0; cls < c.classes; cls++)
      for (let k = 0; k < c.perClass; k++) (k < nVal ? this.val : this.train).push([cls, k] as const);
  }

  /** Images (NCHW) and labels of these (class, index) pairs. */
  batchOf(items: readonly (readonly [number, number])[]): StepBatch {
    const side = this.c.inputSize;
    const x = new Float32Array(items.length * 3 * side * side);
    items.forEach(([cls, k], i) => normalise(syntheticImage(this.c.seed, cls, k, side), x, i * 3 * side * side, side));
    return { x, labels: Int32Array.from(items, ([cls]) => cls) };
  }

  /** The batch of optimizer step `step`: epochs of whole batches, each epoch in its own seeded order. */
  trainBatch(step: number): StepBatch {
    const perEpoch = Math.max(1, Math.floor(this.train.length / this.c.batch));
    const epoch = Math.floor(step / perEpoch);
    const order = new Rng(this.c.seed).fork(`order:${epoch}`).shuffle([...this.train]);
    const at = (step % perEpoch) * this.c.batch;
    return this.batchOf(order.slice(at, at + this.c.batch));
  }

  /** The raw RGB pixels of image k of class c (for pictures). */
  pixels(cls: number, k: number): Uint8Array {
    return syntheticImage(this.c.seed, cls, k, this.c.inputSize);
  }
}

/** A model training on the synthetic tensors through ONNX Runtime's JavaScript API. */
export class WebTrainer {
  private evalSession: { at: number; session: OrtSession } | undefined;

  private constructor(
    readonly config: WebRunConfig,
    readonly data: SyntheticTensors,
    readonly built: BuiltModel,
    private readonly w: Weights,
    private readonly tg: TrainGraph,
    private readonly session: OrtSession,
    private readonly options: SessionOptions,
  ) {}

  /** Builds the model (a UsageError when the width or input size does not fit it) and compiles its step graph. */
  static async create(given: WebRunConfig, options: SessionOptions = {}): Promise<WebTrainer> {
    const c = checkConfig(given);
    const tc = trainingConfig(c);
    const built = buildModel(c.model, { ...tc.modelOptions, aux: false }, { training: true, batch: 1 });
    const w = new Weights(built.graph.params, new Set(), stateSuffixes(tc.optimizer), {
      params: initParams(built.graph.params, c.seed),
      states: new Map(),
      step: 0,
      rng: new Rng(c.seed).fork('dropout').state,
    });
    const tg = buildTrainGraph({ ...tc, frozen: new Set(), batch: c.batch }, 'step');
    const session = await webSession(toModel(tg.graph, { paramsAsInputs: true, shapes: true }), options);
    return new WebTrainer(c, new SyntheticTensors(c), built, w, tg, session, options);
  }

  get step(): number {
    return this.w.step;
  }

  get params(): ReadonlyMap<string, Float32Array> {
    return this.w.params;
  }

  /** The learning rate of the next step. */
  get lr(): number {
    return stepLr(this.config, this.w.step);
  }

  /** One optimizer step on the next batch; its loss and hit counts. */
  async trainStep(): Promise<StepMetrics> {
    const batch = this.data.trainBatch(this.w.step);
    const [m] = await runStepGraph(this.session, this.tg, webRecipe(this.config).optimizer, this.w, [{ batch, lr: this.lr }]);
    return m!;
  }

  /** An inference session of the current weights (rebuilt when they changed). */
  async inference(): Promise<OrtSession> {
    if (this.evalSession?.at !== this.w.step) {
      await this.evalSession?.session.release();
      this.evalSession = { at: this.w.step, session: await createSession(this.onnx(), this.options) };
    }
    return this.evalSession.session;
  }

  /** Logits of NCHW images (rows of them). */
  async logits(x: Float32Array, rows: number): Promise<Float32Array> {
    const side = this.config.inputSize;
    const out = await (await this.inference()).run({ input: tensor('float32', x, [rows, 3, side, side]) });
    return out['logits']!.data as Float32Array;
  }

  /** Top-1 over the val images: hits and count. */
  async evaluate(chunk = 64): Promise<{ hits: number; n: number }> {
    let hits = 0;
    const k = this.config.classes;
    for (let at = 0; at < this.data.val.length; at += chunk) {
      const items = this.data.val.slice(at, at + chunk);
      const b = this.data.batchOf(items);
      const logits = await this.logits(b.x, items.length);
      items.forEach(([cls], i) => (hits += argmax(logits.subarray(i * k, (i + 1) * k)) === cls ? 1 : 0));
    }
    return { hits, n: this.data.val.length };
  }

  /** The ONNX inference model of the current weights (what `ilsvrc export` writes). */
  onnx(): Uint8Array {
    const built = buildModel(this.config.model, this.built.options, { training: false });
    return exportInferenceModel(built, this.w.params);
  }

  /** The class names, in the order of the logits. */
  get checkpointClasses(): string[] {
    return SYNTHETIC_CLASSES.slice(0, this.config.classes).map(String);
  }

  /** The checkpoint's bytes (the safetensors file `ilsvrc evaluate` reads). */
  checkpoint(metrics: Record<string, number> = {}): Uint8Array[] {
    return [
      ...checkpointChunks(this.w.snapshot(), {
        model: this.built.spec.name,
        modelOptions: modelOptions(this.built.spec, this.built.options),
        classes: this.checkpointClasses,
        view: 'none',
        epoch: 0,
        batchInEpoch: this.w.step,
        metrics,
      }),
    ].map((c) => c.slice());
  }

  async release(): Promise<void> {
    await this.evalSession?.session.release();
    await this.session.release();
  }
}

/**
 * A session of a graph of ours on the page's provider: the composites (ai.ilsvrc) written out as
 * standard ONNX, as runtime/device.ts does for Node's providers (the CPU's NCHWc kernels are Node's only).
 */
export function webSession(model: ModelProto, options: SessionOptions): Promise<OrtSession> {
  const webgpu = options.providers?.[0] === 'webgpu';
  return createSession(encodeModel(lower(model, webgpu ? TABLES.webgpu : DEFAULT_TABLE, { block: 0 })), options);
}

function argmax(a: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i]! > a[best]!) best = i;
  return best;
}
