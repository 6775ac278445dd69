/** Thin helpers over onnxruntime-node: sessions with our defaults, and typed tensors. */
import ort from 'onnxruntime-node';
import type { DType, TypedArray } from '../graph/dtype.js';
import { UsageError } from '../util/errors.js';

export type OrtTensor = ort.Tensor;
export type OrtSession = ort.InferenceSession;

export interface SessionOptions {
  /** Threads for one op (ORT's intra-op pool); default: all cores. */
  threads?: number;
  /** Execution providers in order of preference (default: cpu). */
  providers?: ort.InferenceSession.ExecutionProviderConfig[];
  /** Extra session config entries (ORT config keys). */
  extra?: Record<string, string>;
  /** Writes ORT's per-node timings (Chrome trace JSON) to `<profile>_<date>.json`; end with session.endProfiling(). */
  profile?: string;
  /** ORT's memory-pattern planning: measured to cost ~340 MB on training graphs for no speed. */
  memPattern?: boolean;
  /** ORT's CPU arena keeps freed blocks for reuse (faster, higher peak RSS). */
  arena?: boolean;
}

export async function createSession(model: Uint8Array, o: SessionOptions = {}): Promise<OrtSession> {
  return ort.InferenceSession.create(model, {
    executionProviders: o.providers ?? ['cpu'],
    graphOptimizationLevel: 'all',
    // Sequential execution: "parallel" measured 2× slower for these graphs.
    executionMode: 'sequential',
    enableMemPattern: o.memPattern ?? false,
    enableCpuMemArena: o.arena ?? true,
    ...(o.threads ? { intraOpNumThreads: o.threads, interOpNumThreads: 1 } : {}),
    ...(o.profile ? { enableProfiling: true, profileFilePrefix: o.profile } : {}),
    extra: { session: { set_denormal_as_zero: '1' }, ...(o.extra ?? {}) } as unknown as Record<string, unknown>,
  } as ort.InferenceSession.SessionOptions);
}

/**
 * ONNX Runtime's complaint about a model from the user's file, as one line naming the file: the
 * source location and C++ signature that prefix its messages are dropped, the rest is kept.
 */
export function modelFileError(file: string, err: unknown): UsageError {
  const raw = err instanceof Error ? err.message : String(err);
  const text = raw
    .replace(/\[ONNXRuntimeError\][^\]]*\]?\s*:?\s*(\d+\s*:\s*)?(\w+\s*:\s*)?/g, '')
    .replace(/\S+\.(cc|h|cpp):\d+\s+/g, '')
    .replace(/^(\S+\s+)?[\w:<>,]+::\w+\([^)]*\)\s*(const\s*)?/, '')
    .replace(/\s+/g, ' ')
    .trim();
  const short = text.length > 300 ? `${text.slice(0, 297)}...` : text;
  return new UsageError(`Expected a model ONNX Runtime can run in ${file} but it reports: ${short}`);
}

/** A session over the model in the user's file `file`: what ONNX Runtime rejects is the user's to fix. */
export async function createSessionFromFile(model: Uint8Array, file: string, o: SessionOptions = {}): Promise<OrtSession> {
  try {
    return await createSession(model, o);
  } catch (e) {
    throw modelFileError(file, e);
  }
}

export function tensor(dtype: DType, data: TypedArray, shape: readonly number[]): OrtTensor {
  return new ort.Tensor(dtype, data as never, [...shape]);
}

export function scalar(v: number): OrtTensor {
  return new ort.Tensor('float32', new Float32Array([v]), []);
}
