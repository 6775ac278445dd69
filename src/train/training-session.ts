/**
 * TrainingSession: ORT's training-API names over ordinary inference sessions running the graphs of
 * src/train/graphs.ts. Parameters and optimizer state live here, in TypeScript, and are fed to each
 * run (inputs are zero-copy).
 *
 * Where the update happens:
 * - native (the default on the CPU where scripts/build-native built native/optim.c): a run computes
 *   the gradients only — for fully connected weights, their layers' inputs and output gradients, of
 *   which the update forms the gradient row by row — and the optimizer updates parameters and state
 *   in place (src/optim/native.ts). Parameters and state exist once (docs/memory.md);
 * - graph (other devices, or without the addon): the update is part of the ONNX graph and updated
 *   values come back as outputs, copied by onnxruntime-node into new arrays.
 *
 * Paths:
 * - runFusedSteps(batches, lrs): K optimizer steps. Native: one gradient run and one in-place update
 *   per batch. Graph: forward + backward + update in one graph; with more than one batch, K steps
 *   in one run through a Loop, so that parameters and state cross the boundary once per K steps;
 * - runTrainStep / lazyResetGrad / runOptimizerStep: gradients out, accumulated here over
 *   micro-batches, then the optimizer, native or graph (gradient accumulation);
 * - runEvalStep: loss, hit counts and logits without dropout.
 */
import { availableParallelism } from 'node:os';
import { sizeOf } from '../graph/dtype.js';
import { initParams } from '../graph/init.js';
import type { Param } from '../graph/graph.js';
import { toModel } from '../graph/serialize.js';
import { NativeOptimizer } from '../optim/native.js';
import { hyperValues, stateSuffixes } from '../optim/optimizer.js';
import { buildTrainGraph, buildUpdateGraph, gradName, nextName, stateName, type GraphKind, type TrainGraph, type TrainGraphOptions } from './graphs.js';
import { loopModel } from './loop.js';
import { buildModel } from '../zoo/index.js';
import { expected } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import { createDeviceSession } from '../runtime/device.js';
import { decodeModel } from '../onnx/proto.js';
import { scalar, tensor, type OrtSession, type OrtTensor, type SessionOptions } from '../runtime/ort.js';
import { exportInferenceModel } from '../zoo/export.js';

/** The graphs' options as TrainGraphOptions declares them, with the model by name and the frozen parameters as a list. */
export interface TrainingConfig extends Pick<TrainGraphOptions, 'modelOptions' | 'batch' | 'optimizer' | 'labelSmoothing' | 'auxWeight' | 'outerMinElements'> {
  model: string;
  /** Parameters kept fixed (transfer learning). */
  frozen: readonly string[];
  /** Seeds the initial weights and the dropout masks. */
  seed: number;
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

interface Compiled {
  tg: TrainGraph;
  session: OrtSession;
}

export class TrainingSession {
  readonly params: Map<string, Float32Array>;
  readonly states: Map<string, Float32Array>;
  step: number;
  private rng: Rng;
  private readonly sessions = new Map<string, Promise<Compiled>>();
  private grads: Map<string, Float32Array> | undefined;
  private gradCount = 0;
  private readonly opts: TrainGraphOptions;
  private readonly shapes = new Map<string, readonly number[]>();
  private readonly trainable: string[];
  private readonly biases = new Set<string>();

  private constructor(
    readonly config: TrainingConfig,
    state: TrainingState,
    params: readonly Param[],
    /** The in-place update, or null: the update runs as ONNX graphs. */
    private readonly native: NativeOptimizer | null,
  ) {
    this.opts = {
      model: config.model,
      modelOptions: config.modelOptions,
      batch: config.batch,
      optimizer: config.optimizer,
      labelSmoothing: config.labelSmoothing,
      auxWeight: config.auxWeight,
      frozen: new Set(config.frozen),
      outerMinElements: config.outerMinElements,
    };
    for (const p of params) {
      this.shapes.set(p.name, p.value.shape);
      if (p.isBias) this.biases.add(p.name);
    }
    this.trainable = [...this.shapes.keys()].filter((n) => !this.opts.frozen.has(n));
    this.params = state.params;
    this.states = state.states;
    this.step = state.step;
    this.rng = Rng.fromState(state.rng);
  }

  /**
   * A new session: fresh weights from the seed (or the given state), zero optimizer state. The
   * session owns the state's arrays: with the native update they change in place at every step.
   */
  static async create(config: TrainingConfig, state?: Partial<TrainingState>): Promise<TrainingSession> {
    const ref = buildModel(config.model, { ...config.modelOptions, aux: config.modelOptions.aux ?? false }, { training: true, batch: 1 });
    for (const name of config.frozen) {
      if (!ref.graph.findParam(name)) throw new Error(`cannot freeze ${name}: ${ref.spec.name} has no such parameter`);
    }
    const params = state?.params ?? initParams(ref.graph.params, config.seed);
    const native = nativeUpdate(config);
    const s = new TrainingSession(
      config,
      {
        params,
        states: state?.states ?? new Map(),
        step: state?.step ?? 0,
        rng: state?.rng ?? new Rng(config.seed).fork('dropout').state,
      },
      ref.graph.params,
      native,
    );
    s.ensureStates();
    s.imageShape = ref.input.shape.slice(1);
    return s;
  }

  private ensureStates(): void {
    for (const name of this.trainable) {
      for (const s of stateSuffixes(this.config.optimizer)) {
        const key = stateName(name, s);
        if (!this.states.has(key)) this.states.set(key, new Float32Array(sizeOf(this.shapes.get(name) ?? [])));
      }
    }
  }

  get rngState(): number {
    return this.rng.state;
  }

  /** Where the optimizer update runs (TrainingConfig.update). */
  get updateIn(): 'native' | 'graph' {
    return this.native ? 'native' : 'graph';
  }

  /** Everything needed to continue bit-identically: the live arrays (copyState keeps a copy). */
  snapshot(): TrainingState {
    return { params: this.params, states: this.states, step: this.step, rng: this.rng.state };
  }

  private compiled(kind: GraphKind | 'loop', batch: number): Promise<Compiled> {
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

  /**
   * With the native update, ORT's arena is off unless asked for: it rounds its regions up to powers
   * of two (VGG-A batch 8: 3.2 GB peak against 3.1 without); the C heap keeps freed blocks instead.
   */
  private sessionOptions(): SessionOptions {
    return this.native ? { arena: false, ...this.config.session } : (this.config.session ?? {});
  }

  private batchOf(b: StepBatch): number {
    return b.labels.length;
  }

  /** Rows that count in the metrics: a negative label marks an unreadable image, which the loss ignores. */
  private validRows(b: StepBatch): number {
    let n = 0;
    for (const l of b.labels) if (l >= 0) n++;
    return n;
  }

  private labels64(l: Int32Array | BigInt64Array): BigInt64Array {
    return l instanceof BigInt64Array ? l : BigInt64Array.from(l, (v) => BigInt(v));
  }

  private mask(shape: readonly number[], rate: number): Float32Array {
    return this.rng.fillMask(new Float32Array(sizeOf(shape)), rate, 1 / (1 - rate));
  }

  private paramFeeds(tg: TrainGraph, feeds: Record<string, OrtTensor>, withStates: boolean): void {
    for (const p of tg.params) {
      const name = p.name;
      feeds[name] = tensor('float32', this.params.get(name)!, p.value.shape);
    }
    if (withStates) for (const s of tg.states) feeds[s] = tensor('float32', this.states.get(s)!, this.shapeOfState(s));
  }

  private shapeOfState(s: string): readonly number[] {
    const param = s.slice(0, s.lastIndexOf('.'));
    return this.shapes.get(param) ?? [];
  }

  /**
   * runInference's session, dropped as soon as the weights change (a step, loadParametersBuffer):
   * it holds its own copy of the weights, which should not sit in memory through training.
   */
  private inference: Promise<OrtSession> | undefined;
  /** One image's [C, H, W]. */
  private imageShape: readonly number[] = [];

  private dropInference(): void {
    const old = this.inference;
    this.inference = undefined;
    if (old) void old.then((x) => x.release()).catch(() => undefined);
  }

  private adopt(tg: TrainGraph, out: Record<string, OrtTensor>): void {
    this.dropInference();
    for (const p of tg.trainable) {
      const name = p.name;
      this.params.set(name, out[nextName(name)]!.data as Float32Array);
    }
    for (const s of tg.states) this.states.set(s, out[nextName(s)]!.data as Float32Array);
  }

  /** K fused optimizer steps (K = batches.length) in one run; K = 1 uses the single-step graph. */
  async runFusedSteps(batches: readonly StepBatch[], lrs: readonly number[]): Promise<StepMetrics[]> {
    if (batches.length === 0) return [];
    if (batches.length !== lrs.length) throw new Error('one learning rate per batch');
    if (this.native) {
      const out: StepMetrics[] = [];
      for (let i = 0; i < batches.length; i++) out.push(await this.nativeStep(this.native, batches[i]!, lrs[i]!));
      return out;
    }
    const n = this.batchOf(batches[0]!);
    const k = batches.length;
    const { tg, session } = await this.compiled(k === 1 ? 'step' : 'loop', n);
    const built = tg.built!;
    const feeds: Record<string, OrtTensor> = {};
    const stack = (k1: number, shape: readonly number[]) => (k === 1 ? shape : [k1, ...shape]);
    const x = k === 1 ? batches[0]!.x : concatF32(batches.map((b) => b.x));
    feeds['input'] = tensor('float32', x, stack(k, built.input.shape));
    const labels = k === 1 ? this.labels64(batches[0]!.labels) : concatI64(batches.map((b) => this.labels64(b.labels)));
    feeds['labels'] = tensor('int64', labels, stack(k, [n]));
    const hyper = lrs.map((lr, i) => hyperValues(this.config.optimizer, lr, this.step + i + 1));
    tg.hyper.forEach((h, j) => {
      const vals = Float32Array.from(hyper.map((row) => row[j]!));
      feeds[h] = tensor('float32', vals, k === 1 ? [] : [k]);
    });
    // Masks are drawn step by step, in the same order as k single steps would draw them.
    const masks = tg.masks.map(() => [] as Float32Array[]);
    for (let i = 0; i < k; i++) tg.masks.forEach((m, j) => masks[j]!.push(this.mask(m.shape, m.rate)));
    tg.masks.forEach((m, j) => (feeds[m.name] = tensor('float32', k === 1 ? masks[j]![0]! : concatF32(masks[j]!), stack(k, m.shape))));
    this.paramFeeds(tg, feeds, true);
    const out = await session.run(feeds);
    this.adopt(tg, out);
    this.step += k;
    const loss = out['loss']!.data as Float32Array;
    const t1 = out['top1']!.data as Float32Array;
    const t5 = out['top5']!.data as Float32Array;
    return Array.from({ length: k }, (_, i) => ({ loss: loss[i]!, top1: t1[i]!, top5: t5[i]!, n: this.validRows(batches[i]!) }));
  }

  /** The gradient graph's run on one batch (dropout masks drawn here): loss, hit counts and gradients. */
  private async gradients(batch: StepBatch, kind: 'grad' | 'outer' = 'grad'): Promise<{ tg: TrainGraph; out: Record<string, OrtTensor>; metrics: StepMetrics }> {
    const n = this.batchOf(batch);
    const { tg, session } = await this.compiled(kind, n);
    const feeds: Record<string, OrtTensor> = {
      input: tensor('float32', batch.x, tg.built!.input.shape),
      labels: tensor('int64', this.labels64(batch.labels), [n]),
    };
    for (const m of tg.masks) feeds[m.name] = tensor('float32', this.mask(m.shape, m.rate), m.shape);
    this.paramFeeds(tg, feeds, false);
    const out = await session.run(feeds);
    return { tg, out, metrics: { loss: num(out['loss']), top1: num(out['top1']), top5: num(out['top5']), n: this.validRows(batch) } };
  }

  private statesOf(param: string): Float32Array[] {
    return stateSuffixes(this.config.optimizer).map((s) => this.states.get(stateName(param, s))!);
  }

  /**
   * One optimizer step in place: each gradient is applied as soon as it is read and its memory
   * freed at once, not at the next garbage collection (which could come after the next step's peak).
   */
  private applyInPlace(native: NativeOptimizer, grads: Iterable<readonly [string, Float32Array]>, lr: number): void {
    this.dropInference();
    for (const [name, g] of grads) {
      native.step(this.params.get(name)!, g, this.statesOf(name), lr, this.step + 1, this.biases.has(name));
      native.release(g);
    }
    this.step++;
  }

  /**
   * One step from the "outer" gradient graph: fully connected weights are updated from their layers'
   * inputs and output gradients (NativeOptimizer.stepOuter), every other parameter from its gradient.
   */
  private async nativeStep(native: NativeOptimizer, batch: StepBatch, lr: number): Promise<StepMetrics> {
    const { tg, out, metrics } = await this.gradients(batch, 'outer');
    const data = (name: string) => out[name]!.data as Float32Array;
    for (const o of tg.outer) {
      const name = o.param.name;
      native.stepOuter(this.params.get(name)!, data(o.dy), data(o.x), this.statesOf(name), lr, this.step + 1);
      native.release(data(o.dy));
      native.release(data(o.x));
    }
    const factored = new Set(tg.outer.map((o) => o.param));
    const rest = tg.trainable.filter((p) => !factored.has(p)).map((p) => [p.name, data(gradName(p.name))] as const);
    this.applyInPlace(native, rest, lr);
    return metrics;
  }

  /** Forward + backward on one (micro-)batch; gradients are added to the accumulator. */
  async runTrainStep(batch: StepBatch): Promise<StepMetrics> {
    const { tg, out, metrics } = await this.gradients(batch);
    this.grads ??= new Map();
    for (const p of tg.trainable) {
      const name = p.name;
      const g = out[gradName(name)]!.data as Float32Array;
      const acc = this.grads.get(name);
      if (!acc) this.grads.set(name, g);
      else {
        for (let i = 0; i < acc.length; i++) acc[i]! += g[i]!;
        this.native?.release(g);
      }
    }
    this.gradCount++;
    return metrics;
  }

  /** Forgets accumulated gradients (lazily: the next runTrainStep starts a new sum). */
  lazyResetGrad(): void {
    this.grads = undefined;
    this.gradCount = 0;
  }

  /** One optimizer step with the mean of the accumulated micro-batch gradients. */
  async runOptimizerStep(lr: number): Promise<void> {
    if (!this.grads || this.gradCount === 0) throw new Error('runOptimizerStep needs gradients: call runTrainStep first');
    if (this.native) {
      const count = this.gradCount;
      if (count > 1) for (const g of this.grads.values()) for (let i = 0; i < g.length; i++) g[i]! /= count;
      this.applyInPlace(this.native, this.trainable.map((name) => [name, this.grads!.get(name)!] as const), lr);
      this.lazyResetGrad();
      return;
    }
    const { tg, session } = await this.compiled('update', this.config.batch);
    const feeds: Record<string, OrtTensor> = {};
    this.paramFeeds(tg, feeds, true);
    for (const p of tg.trainable) {
      const name = p.name;
      const g = this.grads.get(name)!;
      if (this.gradCount > 1) for (let i = 0; i < g.length; i++) g[i]! /= this.gradCount;
      feeds[gradName(name)] = tensor('float32', g, p.value.shape);
    }
    hyperValues(this.config.optimizer, lr, this.step + 1).forEach((v, j) => (feeds[tg.hyper[j]!] = scalar(v)));
    const out = await session.run(feeds);
    this.adopt(tg, out);
    this.step++;
    this.lazyResetGrad();
  }

  /** Loss, hit counts and logits without dropout. */
  async runEvalStep(batch: StepBatch): Promise<StepMetrics & { logits: Float32Array }> {
    const n = this.batchOf(batch);
    const { tg, session } = await this.compiled('eval', n);
    const feeds: Record<string, OrtTensor> = {
      input: tensor('float32', batch.x, tg.built!.input.shape),
      labels: tensor('int64', this.labels64(batch.labels), [n]),
    };
    this.paramFeeds(tg, feeds, false);
    const out = await session.run(feeds);
    return { loss: num(out['loss']), top1: num(out['top1']), top5: num(out['top5']), n: this.validRows(batch), logits: out['logits']!.data as Float32Array };
  }

  /**
   * Logits of `rows` images through an inference model of the current weights. The weights are its
   * initializers, so ONNX Runtime can pre-pack them (blocked convolutions on the CPU) and nothing
   * crosses the boundary but the images: faster than runEvalStep for validation. The session is
   * built on first use and dropped when the weights change.
   */
  async runInference(x: Float32Array, rows: number): Promise<Float32Array> {
    this.inference ??= createDeviceSession(decodeModel(this.exportModelForInferencing()), this.sessionOptions());
    const session = await this.inference;
    const out = await session.run({ input: tensor('float32', x, [rows, ...this.imageShape]) });
    return out['logits']!.data as Float32Array;
  }

  /** Number of parameter elements (trainable only, or all). */
  getParametersSize(trainableOnly = true): number {
    let n = 0;
    for (const [name, shape] of this.shapes) if (!trainableOnly || !this.opts.frozen.has(name)) n += sizeOf(shape);
    return n;
  }

  /** Parameters in graph order, concatenated into one buffer. */
  getContiguousParameters(trainableOnly = true): Float32Array {
    const out = new Float32Array(this.getParametersSize(trainableOnly));
    let off = 0;
    for (const [name] of this.shapes) {
      if (trainableOnly && this.opts.frozen.has(name)) continue;
      const p = this.params.get(name)!;
      out.set(p, off);
      off += p.length;
    }
    return out;
  }

  /** Inverse of getContiguousParameters. */
  loadParametersBuffer(buf: Float32Array, trainableOnly = true): void {
    const size = this.getParametersSize(trainableOnly);
    if (buf.length !== size) throw new Error(`expected a buffer of ${size} parameters but received ${buf.length}`);
    let off = 0;
    for (const [name, shape] of this.shapes) {
      if (trainableOnly && this.opts.frozen.has(name)) continue;
      const len = sizeOf(shape);
      this.params.set(name, buf.slice(off, off + len));
      off += len;
    }
    this.dropInference();
  }

  /** ONNX bytes for inference: trained weights as initializers, no dropout, no auxiliary heads. */
  exportModelForInferencing(opset = 18): Uint8Array {
    const built = buildModel(this.config.model, { ...this.config.modelOptions, aux: false }, { training: false });
    return exportInferenceModel(built, this.params, { opset: opset === 17 ? 17 : 18 });
  }

  /** Ends ORT profiling (config.session.profile) on every compiled session; each writes its trace file. */
  async endProfiling(): Promise<void> {
    for (const c of this.sessions.values()) (await c).session.endProfiling();
  }

  async release(): Promise<void> {
    const inference = this.inference;
    this.inference = undefined;
    if (inference) await (await inference).release();
    for (const c of this.sessions.values()) await (await c).session.release();
    this.sessions.clear();
  }
}

/** The native update where the config allows it and the addon is built; null: the update runs as graphs. */
function nativeUpdate(config: TrainingConfig): NativeOptimizer | null {
  if (config.update === 'graph') return null;
  const providers = config.session?.providers ?? ['cpu'];
  const cpu = providers.every((p) => (typeof p === 'string' ? p : p.name) === 'cpu');
  const native = cpu ? NativeOptimizer.create(config.optimizer, config.session?.threads ?? availableParallelism()) : null;
  if (!native && config.update === 'native') {
    throw expected(cpu ? 'build/native/optim.node (scripts/build-native, not disabled by ILSVRC_NATIVE_OPTIM=0)' : 'the cpu provider', 'the native optimizer update', cpu ? 'no addon' : providers);
  }
  // Without ORT's arena, the C heap keeps a step's freed memory for the next (retainFreedMemory).
  if (native && config.session?.arena !== true) native.retainFreedMemory();
  return native;
}

function num(t: OrtTensor | undefined): number {
  return Number((t?.data as Float32Array)[0]);
}

/** Stacks same-type arrays end to end (the K batches of one Loop run). */
function concat<T extends Float32Array | BigInt64Array>(parts: readonly T[], make: (n: number) => T): T {
  const out = make(parts.reduce((a, p) => a + p.length, 0));
  let off = 0;
  for (const p of parts) {
    (out as Float32Array).set(p as Float32Array, off);
    off += p.length;
  }
  return out;
}

const concatF32 = (parts: readonly Float32Array[]): Float32Array => concat(parts, (n) => new Float32Array(n));
const concatI64 = (parts: readonly BigInt64Array[]): BigInt64Array => concat(parts, (n) => new BigInt64Array(n));
