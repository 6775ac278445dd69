/**
 * A TrainingSession on a worker thread. onnxruntime's `session.run` blocks its thread for a whole
 * step (seconds for a large model), so on the main thread the loader's prefetch, the progress bar
 * and signal handlers would all stall. Here the main thread keeps ticking: calls are messages,
 * batches are transferred (their ArrayBuffers move, no copy), results come back as messages.
 *
 * `LocalSession` is the same interface in-process (tests, and a fallback where workers are unwanted).
 */
import { Worker } from 'node:worker_threads';
import { UsageError } from '../util/errors.js';
import { TrainingSession, type StepBatch, type StepMetrics, type TrainingConfig, type TrainingState } from './training-session.js';

export type EvalMetrics = StepMetrics & { logits: Float32Array };

/** What the trainer needs of a session, wherever it runs. */
export interface SessionHandle {
  runFusedSteps(batches: readonly StepBatch[], lrs: readonly number[]): Promise<StepMetrics[]>;
  runTrainStep(batch: StepBatch): Promise<StepMetrics>;
  runOptimizerStep(lr: number): Promise<void>;
  runEvalStep(batch: StepBatch): Promise<EvalMetrics>;
  /** Logits through an inference model of the current weights (TrainingSession.runInference). */
  runInference(x: Float32Array, rows: number): Promise<Float32Array>;
  /** A copy of parameters, optimizer state, step and dropout PRNG state. */
  snapshot(): Promise<TrainingState>;
  exportModel(opset?: 17 | 18): Promise<Uint8Array>;
  release(): Promise<void>;
}

/** Request names and their arguments/results: one table, so both ends agree. */
interface Calls {
  create: { args: [TrainingConfig, Partial<TrainingState> | undefined]; result: null };
  runFusedSteps: { args: [StepBatch[], number[]]; result: StepMetrics[] };
  runTrainStep: { args: [StepBatch]; result: StepMetrics };
  runOptimizerStep: { args: [number]; result: null };
  runEvalStep: { args: [StepBatch]; result: EvalMetrics };
  runInference: { args: [Float32Array, number]; result: Float32Array };
  snapshot: { args: []; result: TrainingState };
  exportModel: { args: [17 | 18]; result: Uint8Array };
  release: { args: []; result: null };
}
export type CallName = keyof Calls;
export interface Request<K extends CallName = CallName> {
  id: number;
  op: K;
  args: Calls[K]['args'];
}
export type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; name: string; message: string; stack?: string };

/** The ArrayBuffers a batch can give away (not SharedArrayBuffers, which are shared anyway). */
export function transferables(batches: readonly StepBatch[]): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  for (const b of batches) {
    for (const a of [b.x, b.labels]) if (a.buffer instanceof ArrayBuffer && a.byteLength === a.buffer.byteLength) out.add(a.buffer);
  }
  return [...out];
}

export class WorkerSession implements SessionHandle {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private failed: Error | undefined;

  private constructor(private readonly worker: Worker) {
    worker.on('message', (r: Reply) => {
      const p = this.pending.get(r.id);
      if (!p) return;
      this.pending.delete(r.id);
      if (r.ok) p.resolve(r.value);
      else {
        const e = r.name === 'UsageError' ? new UsageError(r.message) : new Error(r.message);
        if (r.stack !== undefined && r.name !== 'UsageError') e.stack = r.stack;
        p.reject(e);
      }
    });
    const fail = (e: Error): void => {
      this.failed = e;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`training worker exited (code ${code})`)));
  }

  /** Starts the worker and creates the session there. */
  static async create(config: TrainingConfig, state?: Partial<TrainingState>): Promise<WorkerSession> {
    const w = new WorkerSession(new Worker(new URL('./worker-session-entry.js', import.meta.url)));
    try {
      await w.call('create', [config, state], []);
    } catch (e) {
      await w.worker.terminate();
      throw e;
    }
    return w;
  }

  private call<K extends CallName>(op: K, args: Calls[K]['args'], transfer: ArrayBuffer[]): Promise<Calls[K]['result']> {
    if (this.failed) return Promise.reject(this.failed);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      const req: Request<K> = { id, op, args };
      this.worker.postMessage(req, transfer);
    });
  }

  /** The batches' buffers are transferred: the caller must not use them afterwards. */
  runFusedSteps(batches: readonly StepBatch[], lrs: readonly number[]): Promise<StepMetrics[]> {
    return this.call('runFusedSteps', [[...batches], [...lrs]], transferables(batches));
  }

  runTrainStep(batch: StepBatch): Promise<StepMetrics> {
    return this.call('runTrainStep', [batch], transferables([batch]));
  }

  async runOptimizerStep(lr: number): Promise<void> {
    await this.call('runOptimizerStep', [lr], []);
  }

  runEvalStep(batch: StepBatch): Promise<EvalMetrics> {
    return this.call('runEvalStep', [batch], transferables([batch]));
  }

  /** The images' buffer is transferred: the caller must not use it afterwards. */
  runInference(x: Float32Array, rows: number): Promise<Float32Array> {
    return this.call('runInference', [x, rows], transferables([{ x, labels: new Int32Array(0) }]));
  }

  snapshot(): Promise<TrainingState> {
    return this.call('snapshot', [], []);
  }

  exportModel(opset: 17 | 18 = 18): Promise<Uint8Array> {
    return this.call('exportModel', [opset], []);
  }

  async release(): Promise<void> {
    try {
      if (!this.failed) await this.call('release', [], []);
    } finally {
      await this.worker.terminate();
    }
  }
}

/** The same interface over an in-process TrainingSession. */
export class LocalSession implements SessionHandle {
  private constructor(readonly session: TrainingSession) {}

  static async create(config: TrainingConfig, state?: Partial<TrainingState>): Promise<LocalSession> {
    return new LocalSession(await TrainingSession.create(config, state));
  }

  runFusedSteps(batches: readonly StepBatch[], lrs: readonly number[]): Promise<StepMetrics[]> {
    return this.session.runFusedSteps(batches, lrs);
  }
  runTrainStep(batch: StepBatch): Promise<StepMetrics> {
    return this.session.runTrainStep(batch);
  }
  runOptimizerStep(lr: number): Promise<void> {
    return this.session.runOptimizerStep(lr);
  }
  runEvalStep(batch: StepBatch): Promise<EvalMetrics> {
    return this.session.runEvalStep(batch);
  }
  runInference(x: Float32Array, rows: number): Promise<Float32Array> {
    return this.session.runInference(x, rows);
  }
  async snapshot(): Promise<TrainingState> {
    return copyState(this.session.snapshot());
  }
  async exportModel(opset: 17 | 18 = 18): Promise<Uint8Array> {
    return this.session.exportModelForInferencing(opset);
  }
  release(): Promise<void> {
    return this.session.release();
  }
}

/** A deep copy, so later steps cannot change a snapshot being written. */
export function copyState(s: TrainingState): TrainingState {
  const copy = (m: ReadonlyMap<string, Float32Array>) => new Map([...m].map(([k, v]) => [k, v.slice()] as const));
  return { params: copy(s.params), states: copy(s.states), step: s.step, rng: s.rng };
}

/** A session on a worker thread (the default) or in this thread. */
export function openSession(config: TrainingConfig, state: Partial<TrainingState> | undefined, o: { worker: boolean }): Promise<SessionHandle> {
  return o.worker ? WorkerSession.create(config, state) : LocalSession.create(config, state);
}
