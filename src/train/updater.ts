/**
 * Where an optimizer step's update happens. A TrainingSession runs steps and asks its Updater:
 * - NativeUpdater (the default on the CPU where scripts/build-native built native/optim.c): a run
 *   computes the gradients only — for large fully connected weights, their layers' inputs and output
 *   gradients, of which the update forms the gradient row by row — and native code updates the
 *   parameters and state in place (src/optim/native.ts). Parameters and state exist once
 *   (docs/memory.md). K steps are K such runs: nothing fuses, and nothing but the batches crosses
 *   into ONNX Runtime;
 * - GraphUpdater (other devices, or without the addon): forward, backward and update are one graph
 *   whose updated values come back as outputs, copied by onnxruntime-node into new arrays. K > 1
 *   steps run as one ONNX Loop (src/train/loop.ts), so that parameters and state cross the boundary
 *   once per K steps.
 * From the same gradients both give the same bits; training steps agree to rounding (the native
 * update sums large fully connected gradients in its own order).
 */
import { availableParallelism } from 'node:os';
import { NativeOptimizer, updatePath } from '../optim/native.js';
import { hyperValues, type OptimizerConfig } from '../optim/optimizer.js';
import { scalar, tensor, type OrtTensor } from '../runtime/ort.js';
import { expected } from '../util/errors.js';
import { gradName } from './graphs.js';
import { at, runStepGraph, type TrainStep } from './graph-step.js';
import { metricsOf, output, runGradients, type Compile, type Weights } from './session-state.js';
import type { StepMetrics, TrainingConfig } from './session-types.js';

export type { TrainStep };

export interface Updater {
  readonly where: 'native' | 'graph';
  /** One optimizer step per entry, in order; each step's loss and hit counts. */
  runSteps(steps: readonly TrainStep[]): Promise<StepMetrics[]>;
  /** One optimizer step from these gradients by parameter name (the mean of accumulated ones); it may free them. */
  applyGradients(grads: ReadonlyMap<string, Float32Array>, lr: number): Promise<void>;
  /** Frees a gradient nobody reads any more: the native heap takes it back now, else the garbage collector does. */
  discard(g: Float32Array): void;
}

export class NativeUpdater implements Updater {
  readonly where = 'native';

  constructor(
    private readonly native: NativeOptimizer,
    private readonly w: Weights,
    private readonly compile: Compile,
  ) {}

  async runSteps(steps: readonly TrainStep[]): Promise<StepMetrics[]> {
    const out: StepMetrics[] = [];
    for (const s of steps) out.push(await this.step(s));
    return out;
  }

  /**
   * One step from the "outer" gradient graph: fully connected weights are updated from their layers'
   * inputs and output gradients (NativeOptimizer.stepOuter), every other parameter from its gradient.
   */
  private async step({ batch, lr }: TrainStep): Promise<StepMetrics> {
    const { tg, out } = await runGradients(this.compile, this.w, batch, 'outer');
    const metrics = metricsOf(out, batch);
    for (const o of tg.outer) {
      const [dy, x] = [output(out, o.dy), output(out, o.x)];
      this.native.stepOuter(this.w.param(o.param.name), dy, x, this.w.statesOf(o.param.name), lr, this.w.step + 1);
      this.native.release(dy);
      this.native.release(x);
    }
    const factored = new Set(tg.outer.map((o) => o.param));
    const rest = tg.trainable.filter((p) => !factored.has(p)).map((p) => [p.name, output(out, gradName(p.name))] as const);
    this.applyInPlace(rest, lr);
    return metrics;
  }

  async applyGradients(grads: ReadonlyMap<string, Float32Array>, lr: number): Promise<void> {
    this.applyInPlace(
      this.w.trainable.map((name) => [name, gradientOf(grads, name)] as const),
      lr,
    );
  }

  /**
   * One optimizer step in place: each gradient is applied as soon as it is read and its memory
   * freed at once, not at the next garbage collection (which could come after the next step's peak).
   */
  private applyInPlace(grads: Iterable<readonly [string, Float32Array]>, lr: number): void {
    for (const [name, g] of grads) {
      this.native.step(this.w.param(name), g, this.w.statesOf(name), lr, this.w.step + 1, this.w.isBias(name));
      this.native.release(g);
    }
    this.w.step++;
  }

  discard(g: Float32Array): void {
    this.native.release(g);
  }
}

export class GraphUpdater implements Updater {
  readonly where = 'graph';

  constructor(
    private readonly optimizer: OptimizerConfig,
    private readonly w: Weights,
    private readonly compile: Compile,
    /** The batch the update graph is keyed by (it has no batch axis). */
    private readonly batch: number,
  ) {}

  /** K = 1: the fused step graph; K > 1: the same step K times in one ONNX Loop run. */
  async runSteps(steps: readonly TrainStep[]): Promise<StepMetrics[]> {
    const [first] = steps;
    if (!first) return [];
    const { tg, session } = await this.compile(steps.length === 1 ? 'step' : 'loop', first.batch.labels.length);
    return runStepGraph(session, tg, this.optimizer, this.w, steps);
  }

  async applyGradients(grads: ReadonlyMap<string, Float32Array>, lr: number): Promise<void> {
    const { tg, session } = await this.compile('update', this.batch);
    const feeds: Record<string, OrtTensor> = {};
    this.w.feed(tg, feeds, true);
    for (const p of tg.trainable) feeds[gradName(p.name)] = tensor('float32', gradientOf(grads, p.name), p.value.shape);
    const values = hyperValues(this.optimizer, lr, this.w.step + 1);
    tg.hyper.forEach((h, j) => (feeds[h] = scalar(at(values, j))));
    const out = await session.run(feeds);
    this.w.adopt(tg, out);
    this.w.step++;
  }

  discard(): void {}
}

/** The update for a session: native where the config and the build allow it (updatePath), else the graphs. */
export function nativeOptimizerFor(config: TrainingConfig): NativeOptimizer | null {
  const providers = config.session?.providers ?? ['cpu'];
  const cpu = providers.every((p) => (typeof p === 'string' ? p : p.name) === 'cpu');
  const native =
    updatePath(cpu, config.update) === 'native'
      ? NativeOptimizer.create(config.optimizer, config.session?.threads ?? availableParallelism())
      : null;
  if (!native && config.update === 'native') {
    throw expected(
      cpu ? 'build/native/optim.node (scripts/build-native, not disabled by ILSVRC_NATIVE_OPTIM=0)' : 'the cpu provider',
      'the native optimizer update',
      cpu ? 'no addon' : providers,
    );
  }
  // Without ORT's arena, the C heap keeps a step's freed memory for the next (retainFreedMemory).
  if (native && config.session?.arena !== true) native.retainFreedMemory();
  return native;
}

function gradientOf(grads: ReadonlyMap<string, Float32Array>, name: string): Float32Array {
  const g = grads.get(name);
  if (!g) throw new Error(`no gradient for ${name}`);
  return g;
}
