/**
 * What every part of a training session shares: the weights it trains (parameters, optimizer state,
 * step count, dropout stream) and how a batch and those weights become the feeds of one of its graphs.
 */
import { sizeOf } from '../graph/dtype.js';
import type { Param } from '../graph/graph.js';
import { tensor, type OrtSession, type OrtTensor } from '../runtime/ort.js';
import { Rng } from '../util/rng.js';
import { gradName, nextName, stateName, type GraphKind, type TrainGraph } from './graphs.js';
import type { StepBatch, StepMetrics, TrainingState } from './session-types.js';

/** One graph of the session, compiled for one batch size. */
export interface Compiled {
  tg: TrainGraph;
  session: OrtSession;
}

/** The session's graph of a kind ('loop': K fused steps in an ONNX Loop) for a batch size, compiled once. */
export type Compile = (kind: GraphKind | 'loop', batch: number) => Promise<Compiled>;

/**
 * Parameters (buffers among them: Param.buffer) and optimizer state by name, the optimizer steps
 * taken and the dropout-mask stream.
 * The arrays are the session's own: the native update changes them in place, the graph update
 * replaces them with its outputs (adopt).
 */
export class Weights {
  readonly params: Map<string, Float32Array>;
  readonly states: Map<string, Float32Array>;
  /** Optimizer steps taken so far. */
  step: number;
  private readonly rng: Rng;
  /** Every parameter's shape, in graph order. */
  readonly shapes: ReadonlyMap<string, readonly number[]>;
  readonly frozen: ReadonlySet<string>;
  /** The parameters the optimizer updates, in graph order. */
  readonly trainable: readonly string[];
  private readonly biases: ReadonlySet<string>;

  /** `suffixes`: the state arrays the optimizer keeps per parameter (stateSuffixes); missing ones start at zero. */
  constructor(
    params: readonly Param[],
    frozen: ReadonlySet<string>,
    private readonly suffixes: readonly string[],
    state: TrainingState,
  ) {
    this.shapes = new Map(params.map((p) => [p.name, p.value.shape]));
    this.biases = new Set(params.filter((p) => p.isBias).map((p) => p.name));
    // Buffers are never trained: for the optimizer and the trainable-only views they are frozen.
    this.frozen = new Set([...frozen, ...params.filter((p) => p.buffer).map((p) => p.name)]);
    this.trainable = [...this.shapes.keys()].filter((n) => !this.frozen.has(n));
    this.params = state.params;
    this.states = state.states;
    this.step = state.step;
    this.rng = Rng.fromState(state.rng);
    for (const name of this.trainable) {
      for (const s of suffixes) {
        const key = stateName(name, s);
        if (!this.states.has(key)) this.states.set(key, new Float32Array(sizeOf(this.shapes.get(name) ?? [])));
      }
    }
  }

  get rngState(): number {
    return this.rng.state;
  }

  /** Everything needed to continue bit-identically: the live arrays (copyState keeps a copy). */
  snapshot(): TrainingState {
    return { params: this.params, states: this.states, step: this.step, rng: this.rng.state };
  }

  param(name: string): Float32Array {
    return present(this.params.get(name), `parameter ${name}`);
  }

  state(name: string): Float32Array {
    return present(this.states.get(name), `optimizer state ${name}`);
  }

  /** A parameter's optimizer state arrays, in stateSuffixes order. */
  statesOf(param: string): Float32Array[] {
    return this.suffixes.map((s) => this.state(stateName(param, s)));
  }

  isBias(name: string): boolean {
    return this.biases.has(name);
  }

  /** A dropout mask drawn from the session's stream (the draws' order is part of the result). */
  mask(shape: readonly number[], rate: number): Float32Array {
    return this.rng.fillMask(new Float32Array(sizeOf(shape)), rate, 1 / (1 - rate));
  }

  /** The graph's parameters as feeds, and its optimizer state inputs when it updates. */
  feed(tg: TrainGraph, feeds: Record<string, OrtTensor>, withStates: boolean): void {
    for (const p of tg.params) feeds[p.name] = tensor('float32', this.param(p.name), p.value.shape);
    if (withStates)
      for (const s of tg.states) feeds[s] = tensor('float32', this.state(s), this.shapes.get(s.slice(0, s.lastIndexOf('.'))) ?? []);
  }

  /** Takes the updated parameters, buffers and state ("<name>.next") of a graph's run as the session's arrays. */
  adopt(tg: TrainGraph, out: Record<string, OrtTensor>): void {
    for (const p of tg.trainable) this.params.set(p.name, output(out, nextName(p.name)));
    for (const s of tg.states) this.states.set(s, output(out, nextName(s)));
    this.adoptBuffers(tg, out);
  }

  /** Takes the buffers' next values (running statistics) of a training run, copied into the session's arrays. */
  adoptBuffers(tg: TrainGraph, out: Record<string, OrtTensor>): void {
    for (const b of tg.buffers) this.param(b.name).set(output(out, nextName(b.name)));
  }

  /** Number of parameter elements (trainable only, or all). */
  size(trainableOnly: boolean): number {
    let n = 0;
    for (const [name, shape] of this.shapes) if (!trainableOnly || !this.frozen.has(name)) n += sizeOf(shape);
    return n;
  }

  /** Parameters in graph order, concatenated into one buffer. */
  contiguous(trainableOnly: boolean): Float32Array {
    const out = new Float32Array(this.size(trainableOnly));
    let off = 0;
    for (const [name] of this.shapes) {
      if (trainableOnly && this.frozen.has(name)) continue;
      const p = this.param(name);
      out.set(p, off);
      off += p.length;
    }
    return out;
  }

  /** Inverse of contiguous. */
  load(buf: Float32Array, trainableOnly: boolean): void {
    const size = this.size(trainableOnly);
    if (buf.length !== size) throw new Error(`expected a buffer of ${size} parameters but received ${buf.length}`);
    let off = 0;
    for (const [name, shape] of this.shapes) {
      if (trainableOnly && this.frozen.has(name)) continue;
      const len = sizeOf(shape);
      this.params.set(name, buf.slice(off, off + len));
      off += len;
    }
  }
}

function present<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new Error(`the session has no ${what}`);
  return v;
}

/** A float32 output of a run; a missing one is a bug in the graph it came from. */
export function output(out: Record<string, OrtTensor>, name: string): Float32Array {
  const data = out[name]?.data;
  if (!(data instanceof Float32Array)) throw new Error(`the run returned no float32 output ${name}`);
  return data;
}

/** One image's NCHW shape as the graph was built for its batch (graphs with a model have one). */
export function inputShape(tg: TrainGraph): readonly number[] {
  if (!tg.built) throw new Error(`the ${tg.kind} graph takes no images`);
  return tg.built.input.shape;
}

export function labels64(l: Int32Array | BigInt64Array): BigInt64Array {
  return l instanceof BigInt64Array ? l : BigInt64Array.from(l, (v) => BigInt(v));
}

/** Rows that count in the metrics: a negative label marks an unreadable image, which the loss ignores. */
export function validRows(b: StepBatch): number {
  let n = 0;
  for (const l of b.labels) if (l >= 0) n++;
  return n;
}

/** Loss and hit counts of a one-batch run. */
export function metricsOf(out: Record<string, OrtTensor>, batch: StepBatch): StepMetrics {
  const first = (name: string): number => output(out, name)[0] ?? NaN;
  return { loss: first('loss'), top1: first('top1'), top5: first('top5'), n: validRows(batch) };
}

/** Images and labels of one batch as feeds (dropout masks, where the graph has them, are drawn by the caller). */
export function batchFeeds(tg: TrainGraph, batch: StepBatch): Record<string, OrtTensor> {
  const n = batch.labels.length;
  return { input: tensor('float32', batch.x, inputShape(tg)), labels: tensor('int64', labels64(batch.labels), [n]) };
}

/**
 * Forward and backward on one batch (dropout masks drawn here): loss, hit counts and the gradients,
 * as "<name>.grad" outputs, and from the "outer" graph fully connected layers' X and dY instead.
 */
export async function runGradients(
  compile: Compile,
  w: Weights,
  batch: StepBatch,
  kind: 'grad' | 'outer',
): Promise<{ tg: TrainGraph; out: Record<string, OrtTensor> }> {
  const { tg, session } = await compile(kind, batch.labels.length);
  const feeds = batchFeeds(tg, batch);
  for (const m of tg.masks) feeds[m.name] = tensor('float32', w.mask(m.shape, m.rate), m.shape);
  w.feed(tg, feeds, false);
  const out = await session.run(feeds);
  w.adoptBuffers(tg, out);
  return { tg, out };
}

/** The sum of gradients over micro-batches (gradient accumulation), whose mean one optimizer step applies. */
export class GradientSum {
  private sums = new Map<string, Float32Array>();
  private count = 0;

  /** Adds a gradient run's outputs; `discard` frees each gradient once it is added into the sum. */
  add(tg: TrainGraph, out: Record<string, OrtTensor>, discard: (g: Float32Array) => void): void {
    for (const p of tg.trainable) {
      const g = output(out, gradName(p.name));
      const acc = this.sums.get(p.name);
      if (!acc) this.sums.set(p.name, g);
      else {
        for (let i = 0; i < acc.length; i++) acc[i]! += g[i]!;
        discard(g);
      }
    }
    this.count++;
  }

  /** The mean of the gradients added, computed in place: each parameter's, by name. */
  mean(): ReadonlyMap<string, Float32Array> {
    if (this.count === 0) throw new Error('runOptimizerStep needs gradients: call runTrainStep first');
    const count = this.count;
    if (count > 1) for (const g of this.sums.values()) for (let i = 0; i < g.length; i++) g[i]! /= count;
    this.count = 1;
    return this.sums;
  }

  /** Forgets the sum (the next add starts a new one). */
  clear(): void {
    this.sums = new Map();
    this.count = 0;
  }
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

export const concatF32 = (parts: readonly Float32Array[]): Float32Array => concat(parts, (n) => new Float32Array(n));
export const concatI64 = (parts: readonly BigInt64Array[]): BigInt64Array => concat(parts, (n) => new BigInt64Array(n));
