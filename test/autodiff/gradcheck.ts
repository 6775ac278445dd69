/**
 * Finite-difference gradient checks: builds f(inputs) as a graph, asks autodiff for the gradient of
 * L = Σ f(x)·r (r a fixed random tensor) and compares it with central differences of L computed by
 * running the forward graph in onnxruntime, element by element.
 */
import assert from 'node:assert/strict';
import { gradients } from '../../src/autodiff/grad.js';
import { sizeOf, type DType } from '../../src/graph/dtype.js';
import { Graph, type Value } from '../../src/graph/graph.js';
import { toModel } from '../../src/graph/serialize.js';
import { encodeModel, type ModelProto } from '../../src/onnx/proto.js';
import { identity, mul } from '../../src/ops/elementwise.js';
import { reduceSum } from '../../src/ops/shape.js';
import { composites, DEFAULT_TABLE, lower } from '../../src/runtime/lower/index.js';
import { createSession, tensor } from '../../src/runtime/ort.js';
import { Rng } from '../../src/util/rng.js';

export interface CheckInput {
  shape: readonly number[];
  /** Values; default U(−1, 1). Use well-separated values near kinks (max pooling, ReLU). */
  data?: number[];
  /** Whether to check this input's gradient (default true). */
  check?: boolean;
}

export interface CheckOptions {
  dtype: DType;
  eps?: number;
  rtol?: number;
  atol?: number;
  seed?: number;
  /** Check at most this many elements per input (chosen at random). */
  maxElements?: number;
  /** The NCHWc block the composites are lowered for (default 0: the forms every provider takes). */
  block?: number;
  /** Sees the lowered model before it runs. */
  inspect?: (model: ModelProto) => void;
}

/** Op types seen in checked forward graphs (the meta-test reads this). */
export const covered = new Set<string>();
/** Composite ops (ai.ilsvrc) the checked gradients were built of, lowered and run. */
export const coveredComposites = new Set<string>();

type Arr = Float32Array | Float64Array;

export async function gradcheck(
  build: (...xs: Value[]) => Value,
  inputs: readonly CheckInput[],
  opts: CheckOptions,
): Promise<{ maxError: number }> {
  const { dtype } = opts;
  const eps = opts.eps ?? (dtype === 'float64' ? 1e-6 : 1e-2);
  const rtol = opts.rtol ?? (dtype === 'float64' ? 1e-5 : 2e-2);
  const atol = opts.atol ?? (dtype === 'float64' ? 1e-8 : 2e-3);
  const rng = new Rng(opts.seed ?? 7);
  const make = (n: number): Arr => (dtype === 'float64' ? new Float64Array(n) : new Float32Array(n));

  const g = new Graph('check');
  const xs = inputs.map((c, i) => g.input(`x${i}`, dtype, c.shape));
  const y = build(...xs);
  const forwardOps = g.nodes.map((n) => n.op);
  const r = make(y.size);
  for (let i = 0; i < r.length; i++) r[i] = rng.uniform(-1, 1);
  const loss = reduceSum(
    mul(y, g.constant(r, y.shape, dtype)),
    y.shape.map((_, i) => i),
  );
  g.output(loss, 'loss');
  const wrt = xs.filter((_, i) => inputs[i]!.check !== false);
  const grads = gradients(loss, wrt);
  for (const op of forwardOps) covered.add(op);
  wrt.forEach((x, i) => {
    const d = grads.get(x);
    assert.ok(d, `no gradient for input ${i}`);
    g.output(d.name === undefined && d.kind === 'node' ? d : identity(d), `grad${xs.indexOf(x)}`);
  });

  const built = toModel(g);
  for (const op of composites(built)) coveredComposites.add(op);
  const model = lower(built, DEFAULT_TABLE, { block: opts.block ?? 0 });
  opts.inspect?.(model);
  const session = await createSession(encodeModel(model), { threads: 1 });
  const data = inputs.map((c) => {
    const a = make(sizeOf(c.shape));
    for (let i = 0; i < a.length; i++) a[i] = c.data?.[i] ?? rng.uniform(-1, 1);
    return a;
  });
  const feeds = () => Object.fromEntries(data.map((a, i) => [`x${i}`, tensor(dtype, a, inputs[i]!.shape)]));
  const base = await session.run(feeds());
  const lossAt = async () => Number((await session.run(feeds())).loss!.data[0]);

  let maxError = 0;
  for (const x of wrt) {
    const i = xs.indexOf(x);
    const a = data[i]!;
    const analytic = base[`grad${i}`]!.data as Arr;
    const idx = Array.from({ length: a.length }, (_, k) => k);
    const picked = opts.maxElements && a.length > opts.maxElements ? rng.shuffle(idx).slice(0, opts.maxElements) : idx;
    for (const k of picked) {
      const orig = a[k]!;
      a[k] = orig + eps;
      const up = await lossAt();
      a[k] = orig - eps;
      const down = await lossAt();
      a[k] = orig;
      const numeric = (up - down) / (2 * eps);
      const got = analytic[k]!;
      const err = Math.abs(numeric - got);
      maxError = Math.max(maxError, err / (atol + rtol * Math.abs(numeric)));
      assert.ok(
        err <= atol + rtol * Math.abs(numeric),
        `input ${i} element ${k}: autodiff ${got} vs finite difference ${numeric} (|Δ| ${err.toExponential(2)})`,
      );
    }
  }
  await session.release();
  return { maxError };
}

/** n distinct values spaced by `gap`, shuffled: no ties, no kinks within a small eps. */
export function separated(n: number, seed = 3, gap = 0.05): number[] {
  const rng = new Rng(seed);
  const vals = Array.from({ length: n }, (_, i) => (i - n / 2) * gap + 0.01);
  return rng.shuffle(vals);
}
