/**
 * A TrainingSession on a worker thread. onnxruntime's `session.run` blocks its thread for a whole
 * step (seconds for a large model), so on the main thread the loader's prefetch, the progress bar
 * and signal handlers would all stall. Here the main thread keeps ticking: calls are messages,
 * batches are transferred (their ArrayBuffers move, no copy), results come back as messages.
 *
 * `LocalSession` is the same interface in-process (tests, and a fallback where workers are unwanted).
 * Both, and the worker's dispatcher (worker-session-entry.ts), are generated from SESSION_METHODS:
 * a new call is one line there.
 */
import { Worker } from 'node:worker_threads';
import { UsageError } from '../util/errors.js';
import { TrainingSession, type StepBatch, type StepMetrics, type TrainingConfig, type TrainingState } from './training-session.js';

type EvalMetrics = StepMetrics & { logits: Float32Array };

/** One call a session answers, wherever it runs. */
interface Method<A extends unknown[], R> {
  run(s: TrainingSession, ...args: A): Promise<R>;
  /** Buffers of the arguments to move to the worker instead of copying: the caller must not use them afterwards. */
  send?: (...args: A) => ArrayBuffer[];
  /** In the worker: the result as posted back, and the buffers it gives away (default: a structured clone). */
  reply?: (r: R) => { value: R; transfer: ArrayBuffer[] };
  /** In this thread: the result made the caller's own, as the worker's structured clone makes it. */
  own?: (r: R) => R;
}

function method<A extends unknown[], R>(
  run: (s: TrainingSession, ...args: A) => Promise<R>,
  o: Omit<Method<A, R>, 'run'> = {},
): Method<A, R> {
  return { run, ...o };
}

/** A copy owning its whole buffer, which is moved to the caller (the original may be a view of a larger one, as ORT's outputs can be). */
function giveAway(a: Float32Array): { value: Float32Array; transfer: ArrayBuffer[] };
function giveAway(a: Uint8Array): { value: Uint8Array; transfer: ArrayBuffer[] };
function giveAway(a: Float32Array | Uint8Array): { value: Float32Array | Uint8Array; transfer: ArrayBuffer[] } {
  const own = a.slice();
  return { value: own, transfer: [own.buffer] };
}

/** What the trainer calls on a session: the worker client, LocalSession and the dispatcher are generated from it. */
export const SESSION_METHODS = {
  runSteps: method((s, batches: readonly StepBatch[], lrs: readonly number[]) => s.runSteps(batches, lrs), {
    send: (batches) => transferables(batches),
  }),
  runTrainStep: method((s, batch: StepBatch) => s.runTrainStep(batch), { send: (batch) => transferables([batch]) }),
  runOptimizerStep: method((s, lr: number) => s.runOptimizerStep(lr)),
  runEvalStep: method((s, batch: StepBatch): Promise<EvalMetrics> => s.runEvalStep(batch), {
    send: (batch) => transferables([batch]),
    reply: (r) => {
      const { value: logits, transfer } = giveAway(r.logits);
      return { value: { ...r, logits }, transfer };
    },
  }),
  /** Logits through an inference model of the current weights (TrainingSession.runInference). */
  runInference: method((s, x: Float32Array, rows: number) => s.runInference(x, rows), {
    send: (x) => transferables([{ x, labels: new Int32Array(0) }]),
    reply: (logits) => giveAway(logits),
  }),
  /** A copy of parameters, optimizer state, step and dropout PRNG state. */
  snapshot: method(async (s) => s.snapshot(), { own: copyState }),
  exportModel: method(async (s, opset: 17 | 18 = 18) => s.exportModelForInferencing(opset), { reply: (bytes) => giveAway(bytes) }),
} as const;

type Table = typeof SESSION_METHODS;
type MethodName = keyof Table;
type ArgsOf = { [K in MethodName]: Table[K] extends Method<infer A, infer _R> ? A : never };
type ResultOf = { [K in MethodName]: Table[K] extends Method<infer _A, infer R> ? R : never };
/** The table with each entry's types apart, so that one generic function can serve every entry. */
const TABLE: { [K in MethodName]: Method<ArgsOf[K], ResultOf[K]> } = SESSION_METHODS;
export const METHOD_NAMES = Object.keys(SESSION_METHODS) as MethodName[];

type SessionCalls = { [K in MethodName]: (...args: ArgsOf[K]) => Promise<ResultOf[K]> };

/** What the trainer needs of a session, wherever it runs. */
export interface SessionHandle extends SessionCalls {
  release(): Promise<void>;
}

type Invoke = <K extends MethodName>(op: K, args: ArgsOf[K], transfer: ArrayBuffer[]) => Promise<ResultOf[K]>;

/** Every table method over `invoke`, which carries a call to the session. */
function generate(invoke: Invoke): SessionCalls {
  const one = <K extends MethodName>(op: K) => {
    const m: Method<ArgsOf[K], ResultOf[K]> = TABLE[op];
    return (...args: ArgsOf[K]): Promise<ResultOf[K]> => invoke(op, args, m.send?.(...args) ?? []);
  };
  // Built from the table's own keys, so every method is there: what the type says.
  const calls = Object.fromEntries(METHOD_NAMES.map((op) => [op, one(op)])) as SessionCalls;
  return calls;
}

/** The worker's side of a call: runs it on the session and says what to post back. */
export async function answer<K extends MethodName>(
  s: TrainingSession,
  op: K,
  args: ArgsOf[K],
): Promise<{ value: ResultOf[K]; transfer: ArrayBuffer[] }> {
  const m: Method<ArgsOf[K], ResultOf[K]> = TABLE[op];
  const r = await m.run(s, ...args);
  return m.reply ? m.reply(r) : { value: r, transfer: [] };
}

/** The messages to the worker: a table call, or the session's creation and release. */
export type Request =
  | { id: number; op: 'create'; args: [TrainingConfig, Partial<TrainingState> | undefined] }
  | { id: number; op: 'release'; args: [] }
  | MethodRequest<MethodName>;
interface MethodRequest<K extends MethodName> {
  id: number;
  op: K;
  args: ArgsOf[K];
}
export type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; name: string; message: string; stack?: string };

/** The ArrayBuffers a batch can give away (not SharedArrayBuffers, which are shared anyway). */
function transferables(batches: readonly StepBatch[]): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  for (const b of batches) {
    for (const a of [b.x, b.labels]) if (a.buffer instanceof ArrayBuffer && a.byteLength === a.buffer.byteLength) out.add(a.buffer);
  }
  return [...out];
}

export interface WorkerSession extends SessionHandle {}

export class WorkerSession {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private failed: Error | undefined;

  private constructor(private readonly worker: Worker) {
    Object.assign(
      this,
      generate(<K extends MethodName>(op: K, args: ArgsOf[K], transfer: ArrayBuffer[]) => {
        const req: MethodRequest<K> = { id: this.nextId++, op, args };
        return this.post<ResultOf[K]>(req, transfer);
      }),
    );
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
      await w.post({ id: w.nextId++, op: 'create', args: [config, state] }, []);
    } catch (e) {
      await w.worker.terminate();
      throw e;
    }
    return w;
  }

  /** Posts a request; its reply's value, which the worker made of the type the request's method returns. */
  private post<T>(req: Request, transfer: ArrayBuffer[]): Promise<T> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise<T>((resolve, reject) => {
      this.pending.set(req.id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage(req, transfer);
    });
  }

  async release(): Promise<void> {
    try {
      if (!this.failed) await this.post({ id: this.nextId++, op: 'release', args: [] }, []);
    } finally {
      await this.worker.terminate();
    }
  }
}

export interface LocalSession extends SessionHandle {}

/** The same interface over an in-process TrainingSession. */
export class LocalSession {
  private constructor(readonly session: TrainingSession) {
    Object.assign(
      this,
      generate(async (op, args) => {
        const m: Method<ArgsOf[typeof op], ResultOf[typeof op]> = TABLE[op];
        const r = await m.run(session, ...args);
        return m.own ? m.own(r) : r;
      }),
    );
  }

  static async create(config: TrainingConfig, state?: Partial<TrainingState>): Promise<LocalSession> {
    return new LocalSession(await TrainingSession.create(config, state));
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

/** A deep copy, so later steps cannot change a snapshot being written. */
function copyState(s: TrainingState): TrainingState {
  const copy = (m: ReadonlyMap<string, Float32Array>) => new Map([...m].map(([k, v]) => [k, v.slice()] as const));
  return { params: copy(s.params), states: copy(s.states), step: s.step, rng: s.rng };
}

/** A session on a worker thread (the default) or in this thread. */
export function openSession(
  config: TrainingConfig,
  state: Partial<TrainingState> | undefined,
  o: { worker: boolean },
): Promise<SessionHandle> {
  return o.worker ? WorkerSession.create(config, state) : LocalSession.create(config, state);
}
