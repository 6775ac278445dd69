/**
 * TrainingSession: ORT's training-API names over ordinary inference sessions running the graphs of
 * src/train/graphs.ts. Parameters and optimizer state live here, in TypeScript (Weights,
 * src/train/session-state.ts), and are fed to each run (inputs are zero-copy).
 *
 * The session runs steps and asks its Updater (src/train/updater.ts) where the update happens:
 * - native (the default on the CPU where scripts/build-native built native/optim.c): in place;
 * - graph (other devices, or without the addon): as ONNX graphs, K steps fused in one Loop run.
 *
 * Paths:
 * - runSteps(batches, lrs): one optimizer step per batch, by the updater;
 * - runTrainStep / lazyResetGrad / runOptimizerStep: gradients out, summed here over micro-batches,
 *   then one step of the updater with their mean (gradient accumulation);
 * - runEvalStep / runInference / exportModelForInferencing: the current weights without training
 *   (Evaluator, src/train/evaluator.ts).
 */
import { initParams } from '../graph/init.js';
import { toModel } from '../graph/serialize.js';
import { stateSuffixes } from '../optim/optimizer.js';
import { buildTrainGraph, buildUpdateGraph, type GraphKind, type TrainGraphOptions } from './graphs.js';
import { loopModel } from './loop.js';
import { buildModel } from '../zoo/index.js';
import { Rng } from '../util/rng.js';
import { createDeviceSession } from '../runtime/device.js';
import type { SessionOptions } from '../runtime/ort.js';
import type { StepBatch, StepMetrics, TrainingConfig, TrainingState } from './session-types.js';
import { Evaluator } from './evaluator.js';
import { GradientSum, metricsOf, runGradients, Weights, type Compiled } from './session-state.js';
import { GraphUpdater, nativeOptimizerFor, NativeUpdater, type TrainStep, type Updater } from './updater.js';

export type { StepBatch, StepMetrics, TrainingConfig, TrainingState } from './session-types.js';

export class TrainingSession {
  private readonly sum = new GradientSum();

  private constructor(
    readonly config: TrainingConfig,
    private readonly w: Weights,
    private readonly graphs: CompiledGraphs,
    private readonly updater: Updater,
    private readonly evaluator: Evaluator,
  ) {}

  /**
   * A new session: fresh weights from the seed (or the given state), zero optimizer state. The
   * session owns the state's arrays: with the native update they change in place at every step.
   */
  static async create(config: TrainingConfig, state?: Partial<TrainingState>): Promise<TrainingSession> {
    const ref = buildModel(config.model, { ...config.modelOptions, aux: config.modelOptions.aux ?? false }, { training: true, batch: 1 });
    for (const name of config.frozen) {
      if (!ref.graph.findParam(name)) throw new Error(`cannot freeze ${name}: ${ref.spec.name} has no such parameter`);
    }
    const w = new Weights(ref.graph.params, new Set(config.frozen), stateSuffixes(config.optimizer), {
      params: state?.params ?? initParams(ref.graph.params, config.seed),
      states: state?.states ?? new Map(),
      step: state?.step ?? 0,
      rng: state?.rng ?? new Rng(config.seed).fork('dropout').state,
    });
    const native = nativeOptimizerFor(config);
    const graphs = new CompiledGraphs(graphOptions(config), sessionOptions(config, native !== null));
    const compile = graphs.compile;
    const updater = native ? new NativeUpdater(native, w, compile) : new GraphUpdater(config.optimizer, w, compile, config.batch);
    const evaluator = new Evaluator(w, compile, config, ref.input.shape.slice(1), graphs.sessionOptions());
    return new TrainingSession(config, w, graphs, updater, evaluator);
  }

  get params(): Map<string, Float32Array> {
    return this.w.params;
  }

  get states(): Map<string, Float32Array> {
    return this.w.states;
  }

  /** Optimizer steps taken so far. */
  get step(): number {
    return this.w.step;
  }

  get rngState(): number {
    return this.w.rngState;
  }

  /** Where the optimizer update runs (TrainingConfig.update). */
  get updateIn(): 'native' | 'graph' {
    return this.updater.where;
  }

  /** Everything needed to continue bit-identically: the live arrays (copyState keeps a copy). */
  snapshot(): TrainingState {
    return this.w.snapshot();
  }

  /**
   * One optimizer step per batch at its rate (K = batches.length). Native: K gradient runs, each
   * followed by the update in place. Graph: K = 1 the fused step graph, K > 1 one ONNX Loop run.
   */
  async runSteps(batches: readonly StepBatch[], lrs: readonly number[]): Promise<StepMetrics[]> {
    if (batches.length !== lrs.length) throw new Error('one learning rate per batch');
    const steps = batches.map((batch, i): TrainStep => ({ batch, lr: lrs[i] ?? NaN }));
    if (steps.length === 0) return [];
    this.evaluator.weightsChanged();
    return this.updater.runSteps(steps);
  }

  /** Forward + backward on one (micro-)batch; gradients are added to the sum. */
  async runTrainStep(batch: StepBatch): Promise<StepMetrics> {
    const { tg, out } = await runGradients(this.graphs.compile, this.w, batch, 'grad');
    const metrics = metricsOf(out, batch);
    this.sum.add(tg, out, (g) => this.updater.discard(g));
    return metrics;
  }

  /** Forgets accumulated gradients (lazily: the next runTrainStep starts a new sum). */
  lazyResetGrad(): void {
    this.sum.clear();
  }

  /** One optimizer step with the mean of the accumulated micro-batch gradients. */
  async runOptimizerStep(lr: number): Promise<void> {
    const mean = this.sum.mean();
    this.evaluator.weightsChanged();
    await this.updater.applyGradients(mean, lr);
    this.sum.clear();
  }

  /** Loss, hit counts and logits without dropout. */
  runEvalStep(batch: StepBatch): Promise<StepMetrics & { logits: Float32Array }> {
    return this.evaluator.runEvalStep(batch);
  }

  /** Logits of `rows` images through an inference model of the current weights (Evaluator.runInference). */
  runInference(x: Float32Array, rows: number): Promise<Float32Array> {
    return this.evaluator.runInference(x, rows);
  }

  /** Number of parameter elements (trainable only, or all). */
  getParametersSize(trainableOnly = true): number {
    return this.w.size(trainableOnly);
  }

  /** Parameters in graph order, concatenated into one buffer. */
  getContiguousParameters(trainableOnly = true): Float32Array {
    return this.w.contiguous(trainableOnly);
  }

  /** Inverse of getContiguousParameters. */
  loadParametersBuffer(buf: Float32Array, trainableOnly = true): void {
    this.w.load(buf, trainableOnly);
    this.evaluator.weightsChanged();
  }

  /** ONNX bytes for inference: trained weights as initializers, no dropout, no auxiliary heads. */
  exportModelForInferencing(opset = 18): Uint8Array {
    return this.evaluator.exportModel(opset);
  }

  /** Ends ORT profiling (config.session.profile) on every compiled session; each writes its trace file. */
  endProfiling(): Promise<void> {
    return this.graphs.endProfiling();
  }

  async release(): Promise<void> {
    await this.evaluator.release();
    await this.graphs.release();
  }
}

/** The session's graphs, each built and compiled on first use, once per kind and batch size. */
class CompiledGraphs {
  private readonly sessions = new Map<string, Promise<Compiled>>();

  constructor(
    private readonly opts: TrainGraphOptions,
    private readonly options: SessionOptions,
  ) {}

  sessionOptions(): SessionOptions {
    return this.options;
  }

  readonly compile = (kind: GraphKind | 'loop', batch: number): Promise<Compiled> => this.compiled(kind, batch);

  compiled(kind: GraphKind | 'loop', batch: number): Promise<Compiled> {
    const key = `${kind}:${batch}`;
    let c = this.sessions.get(key);
    if (!c) {
      c = (async () => {
        const o = { ...this.opts, batch };
        const tg = kind === 'update' ? buildUpdateGraph(o) : buildTrainGraph(o, kind === 'loop' ? 'step' : kind);
        const proto = kind === 'loop' ? loopModel(tg) : toModel(tg.graph, { paramsAsInputs: true, shapes: true });
        // Checks the graph against the device's kernels and rephrases provider failures.
        const session = await createDeviceSession(proto, this.sessionOptions());
        return { tg, session };
      })();
      this.sessions.set(key, c);
    }
    return c;
  }

  async endProfiling(): Promise<void> {
    for (const c of this.sessions.values()) (await c).session.endProfiling();
  }

  async release(): Promise<void> {
    for (const c of this.sessions.values()) await (await c).session.release();
    this.sessions.clear();
  }
}

function graphOptions(config: TrainingConfig): TrainGraphOptions {
  return {
    model: config.model,
    modelOptions: config.modelOptions,
    batch: config.batch,
    optimizer: config.optimizer,
    labelSmoothing: config.labelSmoothing,
    auxWeight: config.auxWeight,
    frozen: new Set(config.frozen),
    outerMinElements: config.outerMinElements,
  };
}

/**
 * With the native update, ORT's arena is off unless asked for: it rounds its regions up to powers
 * of two (VGG-A batch 8: 3.2 GB peak against 3.1 without); the C heap keeps freed blocks instead.
 */
function sessionOptions(config: TrainingConfig, native: boolean): SessionOptions {
  return native ? { arena: false, ...config.session } : (config.session ?? {});
}
